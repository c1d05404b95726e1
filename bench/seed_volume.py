"""A reproducible volume of telemetry, loaded through the ingest API: `make seed-volume`.

Reads (and dashboards, the console, privacy) are measured on data the way it arrives, not on rows
inserted behind the API's back: every trace, observation and score goes through `POST /v1/traces`
(OTLP/HTTP protobuf, GenAI semantic conventions) or `POST /api/public/ingestion` (Langfuse batch),
and prompts through `POST /api/public/v2/prompts`.

Default volume (SCALE=1): 200,000 traces of 5 observations (1M observations), over the 30 days that
end at --end (default: today 00:00 UTC), 2,000 users, 20,000 sessions (a session is ~10 consecutive
traces of one user), ~70,000 scores. SCALE=10 gives the issue's 10M. Per trace: a root CHAIN named
after the use case, a RETRIEVER, a first GENERATION (linked to a prompt version for two use cases), a
TOOL and a second GENERATION. Half the traces are sent as Langfuse batches, half as OTLP; the OTLP half
carries a response model (`gpt-4o-mini` answered by `gpt-4o-mini-2024-07-18`). About 3% of
generations fail (level ERROR / span status ERROR), 1.5% are refused (finish reason content_filter
or an OpenAI `refusal` message). Trace metadata carries `feature` (the rollups' default feature key),
tags come from a small vocabulary, 10% of traces are in `staging`.

Reproducible: everything (ids included) derives from --seed and the trace's index, so two runs with
the same --seed, --scale and --end send the same requests, and a second run upserts the same rows
(no duplicates). --start/--stop load a slice of the trace indexes (resume, or grow a volume).

Usage (see README, "Reads at volume"):
    make seed-volume                       # 1M observations into the `volume`/`volume` project
    make seed-volume SCALE=0.05            # 50k observations
    make seed-volume ARGS="--project-keys pk-lf-…:sk-lf-… --base http://127.0.0.1:8000"
Without --base the script starts gunicorn on the durable embedded stack as `make bench-ingest` does;
without --project-keys it creates (or reuses by name) the project with `manage.py create_project`.
The keys and project id are written to .data/seed-volume.json (bench/bench_reads.py reads it).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server import free_port, prepare_environment, start_gunicorn, wait_ready  # noqa: E402

STATE_FILE = ROOT / ".data" / "seed-volume.json"
TRACES_PER_SCALE = 200_000
USERS_PER_SCALE = 2_000
SESSIONS_PER_SCALE = 20_000
DAYS = 30
OBSERVATIONS_PER_TRACE = 5
TRACES_PER_REQUEST = 20  # 100 observations per request, as the SDKs batch them

# Use cases: trace name, feature, weight, prompt name (first generation linked when set).
USE_CASES = (
    ("support-chat", "support", 35, "support-system"),
    ("rag-answer", "knowledge-base", 25, "rag-answer"),
    ("summarize-ticket", "ticket-summary", 15, None),
    ("classify-intent", "routing", 12, None),
    ("agent-run", "agent", 8, None),
    ("translate-reply", "translation", 5, None),
)
PROMPT_VERSIONS = {"support-system": 4, "rag-answer": 3}
# (requested model, response model on OTLP traces, weight)
MODELS = (
    ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", 45),
    ("gpt-4o", "gpt-4o-2024-08-06", 20),
    ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet-20241022", 15),
    ("claude-3-5-haiku-20241022", "claude-3-5-haiku-20241022", 10),
    ("gemini-1.5-flash", "gemini-1.5-flash-002", 9),
    ("o3-mini", "o3-mini-2025-01-31", 1),
)
TAGS = ("web", "mobile", "api", "vip", "beta", "experiment-a", "experiment-b", "eu", "us", "free", "pro")
TOOLS = ("lookup_order", "search_kb", "create_ticket", "get_weather", "convert_currency")
ERROR_RATE = 0.03
REFUSAL_RATE = 0.015
SCORED_SHARE = 0.35

_WORDS = (
    "the a to of and in for is on that with as your this it be are can by from or will you at we not "
    "order refund account invoice shipping delivery address payment card subscription plan upgrade "
    "cancel password login error message customer support ticket policy warranty product return "
    "please thanks could would should summary answer question context document retrieved section "
    "according price discount coupon tracking number package status estimated arrival business days"
).split()


def _weighted(rng: random.Random, items):
    return rng.choices(items, weights=[item[-2] if len(item) == 4 else item[-1] for item in items])[0]


def _text(rng: random.Random, low: int, high: int) -> str:
    words, size, target = [], 0, rng.randint(low, high)
    while size < target:
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words).capitalize() + "."


def _hex(seed: int, index: int, salt: str, size: int) -> str:
    return hashlib.blake2b(f"{seed}:{index}:{salt}".encode(), digest_size=size // 2).hexdigest()


class Volume:
    """The traces of one volume, each one a pure function of (seed, index)."""

    def __init__(self, *, seed: int, scale: float, end: datetime):
        self.seed = seed
        self.traces = max(1, round(TRACES_PER_SCALE * scale))
        self.users = max(1, round(USERS_PER_SCALE * scale))
        self.sessions = max(1, round(SESSIONS_PER_SCALE * scale))
        self.end = end
        self.start = end - timedelta(days=DAYS)
        self.step = timedelta(days=DAYS) / self.traces

    def trace(self, index: int) -> dict:
        rng = random.Random(f"{self.seed}:{index}")
        session = index * self.sessions // self.traces
        # A session belongs to one user; a few users have many sessions (a skewed, Zipf-like choice).
        user = int(self.users * random.Random(f"{self.seed}:s{session}").random() ** 2.5)
        name, feature, _, prompt = _weighted(rng, USE_CASES)
        t0 = self.start + self.step * index + timedelta(milliseconds=rng.randint(0, 900))
        tags = sorted(set(rng.sample(TAGS, rng.randint(1, 3))))
        trace = {
            "index": index,
            "protocol": "langfuse" if index % 2 == 0 else "otlp",
            "id": _hex(self.seed, index, "trace", 32),
            "name": name,
            "timestamp": t0,
            "user_id": f"user-{user:05d}",
            "session_id": f"session-{session:06d}",
            "environment": "staging" if rng.random() < 0.1 else "production",
            "release": f"2026.11.{rng.randint(0, 9)}",
            "tags": tags,
            "metadata": {"feature": feature, "channel": tags[0], "tenant": f"acme-{user % 37}"},
            "question": _text(rng, 60, 200),
            "observations": [],
            "scores": [],
        }
        span = lambda n: _hex(self.seed, index, f"span{n}", 16)  # noqa: E731
        root = span(0)
        clock = t0
        observations = trace["observations"]

        def add(kind: str, obs_name: str, ms: int, **extra) -> dict:
            nonlocal clock
            start = clock + timedelta(milliseconds=rng.randint(1, 20))
            observation = {
                "id": span(len(observations)), "type": kind, "name": obs_name, "start": start,
                "end": start + timedelta(milliseconds=ms), "parent": root if observations else None, **extra,
            }
            observations.append(observation)
            if observations[0] is not observation:
                clock = observation["end"]
            return observation

        top = add("CHAIN", name, 0)
        add("RETRIEVER", "vector-search", rng.randint(20, 200),
            output=[{"id": f"doc-{rng.randint(1, 50_000)}", "score": round(rng.random(), 3)} for _ in range(3)])
        for number in (1, 2):
            model, response_model, _ = _weighted(rng, MODELS)
            roll = rng.random()
            status = "error" if roll < ERROR_RATE else "refused" if roll < ERROR_RATE + REFUSAL_RATE else "success"
            prompt_tokens = rng.randint(300, 2500)
            link = {}
            if number == 1 and prompt:
                # Newer prompt versions take over as the month goes by.
                versions = PROMPT_VERSIONS[prompt]
                age = (t0 - self.start) / timedelta(days=DAYS)
                link = {"prompt_name": prompt,
                        "prompt_version": max(1, min(versions, int(age * versions) + rng.choice((0, 0, 0, 1))))}
            add("GENERATION", "chat" if number == 1 else "chat-final", rng.randint(300, 4000),
                model=model, response_model=response_model, status=status,
                input_tokens=prompt_tokens, cached_tokens=rng.choice((0, 0, 0, 256, 1024)),
                output_tokens=0 if status == "error" else rng.randint(20, 600),
                ttft=rng.randint(150, 900), answer="" if status != "success" else _text(rng, 80, 400),
                **link)
            if number == 1:
                tool = rng.choice(TOOLS)
                add("TOOL", tool, rng.randint(5, 300), tool_name=tool,
                    input={"query": _text(rng, 10, 40)}, output={"ok": True, "rows": rng.randint(0, 20)})
        top["end"] = clock + timedelta(milliseconds=rng.randint(1, 10))
        if rng.random() < SCORED_SHARE:
            trace["scores"].append({"id": _hex(self.seed, index, "fb", 32), "name": "user-feedback",
                                    "value": 0 if rng.random() < 0.18 else 1, "dataType": "BOOLEAN",
                                    "traceId": trace["id"]})
        if rng.random() < SCORED_SHARE:
            generation = observations[2]
            trace["scores"].append({"id": _hex(self.seed, index, "eval", 32), "name": "helpfulness",
                                    "value": round(rng.random(), 3), "dataType": "NUMERIC",
                                    "traceId": trace["id"], "observationId": generation["id"]})
        return trace


# --- payloads --------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def langfuse_events(trace: dict) -> list[dict]:
    sent = _iso(trace["observations"][0]["end"])
    events = [{
        "id": _hex(0, trace["index"], trace["id"] + "ev-trace", 32), "type": "trace-create", "timestamp": sent,
        "body": {
            "id": trace["id"], "name": trace["name"], "timestamp": _iso(trace["timestamp"]),
            "userId": trace["user_id"], "sessionId": trace["session_id"], "release": trace["release"],
            "tags": trace["tags"], "metadata": trace["metadata"], "environment": trace["environment"],
            "input": {"question": trace["question"]},
        },
    }]
    for o in trace["observations"]:
        body = {
            "id": o["id"], "traceId": trace["id"], "parentObservationId": o["parent"], "name": o["name"],
            "startTime": _iso(o["start"]), "endTime": _iso(o["end"]), "environment": trace["environment"],
        }
        if o["type"] == "GENERATION":
            body |= {
                "model": o["model"], "modelParameters": {"temperature": 0.2},
                "completionStartTime": _iso(o["start"] + timedelta(milliseconds=o["ttft"])),
                "input": [{"role": "user", "content": trace["question"]}],
                "usageDetails": {"prompt_tokens": o["input_tokens"], "completion_tokens": o["output_tokens"],
                                 "prompt_tokens_details": {"cached_tokens": o["cached_tokens"]}},
            }
            if o.get("prompt_name"):
                body |= {"promptName": o["prompt_name"], "promptVersion": o["prompt_version"]}
            if o["status"] == "error":
                body |= {"level": "ERROR", "statusMessage": "RateLimitError: 429 Too Many Requests"}
            elif o["status"] == "refused":
                body["output"] = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
            else:
                body["output"] = {"role": "assistant", "content": o["answer"]}
            kind = "generation-create"
        else:
            body["metadata"] = {"kind": o["type"].lower()}
            for key in ("input", "output"):
                if key in o:
                    body[key] = o[key]
            kind = "span-create"
        events.append({"id": _hex(0, trace["index"], o["id"] + "ev", 32), "type": kind, "timestamp": sent,
                       "body": body})
    return events


def score_events(trace: dict) -> list[dict]:
    sent = _iso(trace["observations"][0]["end"] + timedelta(seconds=30))
    return [{"id": _hex(0, trace["index"], s["id"] + "ev", 32), "type": "score-create", "timestamp": sent,
             "body": {**s, "environment": trace["environment"]}} for s in trace["scores"]]


def otlp_spans(trace: dict) -> list:
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    from ingest.adapters.otel.testing import make_span

    def nanos(moment: datetime) -> int:
        return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000

    spans = []
    for o in trace["observations"]:
        attributes: dict = {"langfuse.environment": trace["environment"]}
        status = None
        if o["parent"] is None:
            attributes |= {
                "langfuse.trace.name": trace["name"], "langfuse.user.id": trace["user_id"],
                "langfuse.session.id": trace["session_id"], "langfuse.trace.tags": trace["tags"],
                "langfuse.release": trace["release"],
                "langfuse.trace.input": json.dumps({"question": trace["question"]}),
                **{f"langfuse.trace.metadata.{k}": v for k, v in trace["metadata"].items()},
                "langfuse.observation.type": "chain",
            }
            kind, name = Span.SPAN_KIND_INTERNAL, o["name"]
        elif o["type"] == "GENERATION":
            finish = "content_filter" if o["status"] == "refused" else "stop"
            attributes |= {
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": o["model"], "gen_ai.response.model": o["response_model"],
                "gen_ai.request.temperature": 0.2,
                "gen_ai.usage.input_tokens": o["input_tokens"] + o["cached_tokens"],
                "gen_ai.usage.output_tokens": o["output_tokens"],
                "gen_ai.input.messages": json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": trace["question"]}]}]),
            }
            if o["cached_tokens"]:
                attributes["gen_ai.usage.cache_read.input_tokens"] = o["cached_tokens"]
            if o["status"] != "error":
                attributes["gen_ai.response.finish_reasons"] = [finish]
                attributes["gen_ai.output.messages"] = json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": o["answer"]}],
                      "finish_reason": finish}])
            else:
                status = (2, "RateLimitError: 429 Too Many Requests")
                attributes["error.type"] = "RateLimitError"
            if o.get("prompt_name"):
                attributes["langfuse.observation.prompt.name"] = o["prompt_name"]
                attributes["langfuse.observation.prompt.version"] = o["prompt_version"]
            kind, name = Span.SPAN_KIND_CLIENT, f"chat {o['model']}"
        else:
            attributes["langfuse.observation.type"] = o["type"].lower()
            if o["type"] == "TOOL":
                attributes |= {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": o["tool_name"]}
            for key in ("input", "output"):
                if key in o:
                    attributes[f"langfuse.observation.{key}"] = json.dumps(o[key])
            kind, name = Span.SPAN_KIND_INTERNAL, o["name"]
        spans.append(make_span(
            trace_id=trace["id"], span_id=o["id"], parent_span_id=o["parent"], name=name, kind=kind,
            start_ns=nanos(o["start"]), end_ns=nanos(o["end"]), attributes=attributes, status=status,
        ))
    return spans


def requests_for(volume: Volume, indexes: range) -> list[tuple[str, bytes]]:
    """One OTLP export for the OTLP half of these traces, one Langfuse batch for the rest and every score."""
    import orjson

    from ingest.adapters.otel.testing import make_request

    traces = [volume.trace(i) for i in indexes]
    spans, events = [], []
    for trace in traces:
        if trace["protocol"] == "otlp":
            spans += otlp_spans(trace)
        else:
            events += langfuse_events(trace)
    for trace in traces:
        events += score_events(trace)
    out = []
    if spans:
        resource = {"service.name": "support-bot", "service.version": "2026.11",
                    "telemetry.sdk.language": "python", "telemetry.sdk.name": "opentelemetry"}
        request = make_request(spans, resource=resource, scope_name="opentelemetry.instrumentation.openai_v2",
                               scope_version="2.2b0")
        out.append(("otlp", request.SerializeToString()))
    if events:
        out.append(("langfuse", orjson.dumps({"batch": events, "metadata": {"sdk_name": "python"}})))
    return out


# --- sending -------------------------------------------------------------------------------------


def _post(client, base: str, auth: str, protocol: str, body: bytes) -> None:
    import httpx

    url, content_type = (
        (f"{base}/v1/traces", "application/x-protobuf") if protocol == "otlp"
        else (f"{base}/api/public/ingestion", "application/json")
    )
    for attempt in range(8):
        try:
            response = client.post(url, content=body, headers={"Authorization": auth, "Content-Type": content_type})
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code in (200, 207):
                if protocol == "langfuse" and response.json().get("errors"):
                    raise SystemExit(f"ingestion refused events: {str(response.json()['errors'])[:500]}")
                return
            problem = f"HTTP {response.status_code}: {response.text[:300]}"
            if response.status_code not in (429, 500, 502, 503, 504):
                raise SystemExit(f"{url}: {problem}")
            time.sleep(float(response.headers.get("Retry-After") or 0))
        time.sleep(min(2**attempt * 0.2, 5))
    raise SystemExit(f"{url}: gave up after retries: {problem}")


def sender(spec: dict, worker: int, progress) -> None:
    import httpx

    volume = Volume(seed=spec["seed"], scale=spec["scale"], end=datetime.fromisoformat(spec["end"]))
    with httpx.Client(timeout=120) as client:
        for chunk_start in range(spec["start"] + worker * TRACES_PER_REQUEST, spec["stop"],
                                 TRACES_PER_REQUEST * spec["senders"]):
            indexes = range(chunk_start, min(chunk_start + TRACES_PER_REQUEST, spec["stop"]))
            for protocol, body in requests_for(volume, indexes):
                _post(client, spec["base"], spec["auth"], protocol, body)
            progress.put(len(indexes))


def ensure_prompts(base: str, auth: str) -> None:
    """The prompt versions generations link to, created through the prompts API once (idempotent)."""
    import httpx

    headers = {"Authorization": auth}
    with httpx.Client(timeout=30) as client:
        for name, versions in PROMPT_VERSIONS.items():
            for version in range(1, versions + 1):
                got = client.get(f"{base}/api/public/v2/prompts/{name}", params={"version": version}, headers=headers)
                if got.status_code == 200:
                    continue
                body = {"name": name, "type": "text", "prompt": f"You are the {name} assistant (v{version}). "
                        "Answer {{question}} briefly.", "labels": ["production"] if version == versions else [],
                        "commitMessage": f"v{version}"}
                made = client.post(f"{base}/api/public/v2/prompts", json=body, headers=headers)
                if made.status_code not in (200, 201):
                    raise SystemExit(f"creating prompt {name} v{version}: HTTP {made.status_code} {made.text[:300]}")


def manage(*args: str) -> str:
    proc = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=os.environ.copy(),
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def analyze(project_id: str, region: str) -> None:
    """Fresh planner statistics (and visibility map) after a bulk load, as autovacuum would give later."""
    import django

    django.setup()
    from django.db import connections

    from tenancy.regions import region_database

    connection = connections[region_database(region)]
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) traces_trace, traces_observation, feedback_score")
    connection.close()


def main() -> int:
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=float(os.environ.get("SCALE") or 1),
                        help="1 = 1M observations (200k traces); 10 = 10M (env SCALE)")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SEED") or 13), help="RNG seed (env SEED)")
    parser.add_argument("--end", default=None,
                        help="ISO time the 30 days end at (default: today 00:00 UTC; pin it for identical runs)")
    parser.add_argument("--base", default=None, help="a running server (default: start gunicorn here)")
    parser.add_argument("--project-keys", default=None, help="PUBLIC:SECRET of an existing project")
    parser.add_argument("--org", default="volume", help="organization to create the project in (no --project-keys)")
    parser.add_argument("--project", default="volume", help="project name to create (no --project-keys)")
    parser.add_argument("--senders", type=int, default=4, help="sender processes (keep-alive connections)")
    parser.add_argument("--start", type=int, default=0, help="first trace index to send (resume)")
    parser.add_argument("--stop", type=int, default=None, help="trace index to stop before (default: all)")
    parser.add_argument("--no-analyze", action="store_true", help="skip VACUUM ANALYZE after the load")
    args = parser.parse_args()

    end = (datetime.fromisoformat(args.end.replace("Z", "+00:00")) if args.end
           else datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0))
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    volume = Volume(seed=args.seed, scale=args.scale, end=end)
    stop = min(args.stop if args.stop is not None else volume.traces, volume.traces)

    prepare_environment()
    project_id = region = None
    if args.project_keys:
        public, _, secret = args.project_keys.partition(":")
        if not secret:
            raise SystemExit("--project-keys is PUBLIC:SECRET")
    else:
        manage("migrate_all")
        manage("load_model_prices")
        created = json.loads(manage("create_project", "--org", args.org, "--project", args.project,
                                    "--note", "make seed-volume", "--json"))
        public, secret = created["public_key"], created["secret_key"]
        project_id, region = created["project_id"], created["region"]
    auth = "Basic " + base64.b64encode(f"{public}:{secret}".encode()).decode()

    server = None
    base = args.base
    if base is None:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log_fd, log_name = tempfile.mkstemp(prefix="seed-volume-gunicorn-", suffix=".log")
        server = start_gunicorn(port, workers=os.environ.get("WEB_CONCURRENCY") or "2",
                                threads=os.environ.get("WEB_THREADS") or "4", stderr=log_fd)
        os.close(log_fd)
    try:
        if server is not None:
            wait_ready(base, server)
        ensure_prompts(base, auth)
        spec = {"seed": args.seed, "scale": args.scale, "end": end.isoformat(), "start": args.start, "stop": stop,
                "senders": args.senders, "base": base, "auth": auth}
        total = max(0, stop - args.start)
        print(f"seed-volume: traces {args.start:,}..{stop:,} of {volume.traces:,} "
              f"(~{total * OBSERVATIONS_PER_TRACE:,} observations), seed {args.seed}, "
              f"{volume.start:%Y-%m-%d} .. {end:%Y-%m-%d %H:%M} UTC, {volume.users:,} users, "
              f"{volume.sessions:,} sessions -> {base}", flush=True)
        progress = multiprocessing.Queue()
        workers = [multiprocessing.Process(target=sender, args=(spec, w, progress), daemon=True)
                   for w in range(args.senders)]
        t0 = time.monotonic()
        for w in workers:
            w.start()
        done, last = 0, t0
        while done < total:
            try:
                done += progress.get(timeout=5)
            except Exception:  # queue.Empty: check that the senders are still alive
                if not any(w.is_alive() for w in workers):
                    break
            if time.monotonic() - last > 15 or done >= total:
                last = time.monotonic()
                rate = done * OBSERVATIONS_PER_TRACE / (last - t0)
                print(f"  {done:,}/{total:,} traces, {rate:,.0f} observations/s", flush=True)
        for w in workers:
            w.join()
        if any(w.exitcode for w in workers) or done < total:
            raise SystemExit(f"seed-volume: a sender failed ({done:,}/{total:,} traces sent)")
        elapsed = time.monotonic() - t0
        print(f"seed-volume: {total:,} traces / {total * OBSERVATIONS_PER_TRACE:,} observations in "
              f"{elapsed:,.0f} s ({total * OBSERVATIONS_PER_TRACE / max(elapsed, 1e-9):,.0f} observations/s)")
    finally:
        if server is not None:
            try:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(server.pid, signal.SIGKILL)
    if project_id and not args.no_analyze:
        analyze(project_id, region)
    STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
    STATE_FILE.write_text(json.dumps({
        "public_key": public, "secret_key": secret, "project_id": project_id, "region": region,
        "scale": args.scale, "seed": args.seed, "end": end.isoformat(), "traces": volume.traces,
        "users": volume.users, "sessions": volume.sessions,
    }, indent=2))
    print(f"seed-volume: keys and parameters in {STATE_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
