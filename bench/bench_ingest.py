"""Trace ingestion throughput and latency against the server as production runs it: `make bench-ingest`.

A benchmark, not a test: it prints figures and fails only when a request fails. `make bench-ingest`
starts the embedded *durable* stack (`python -m config.devstack exec -- …`, the `.data/pg` cluster of
`make run`, with fsync and synchronous_commit on — so it cannot run while `make run` is up), and this
script:

1. migrates, loads the model price catalog and creates the `bench`/`bench` project with a fresh key
   (`manage.py create_project --json`); deletes the project's rows from earlier runs and vacuums;
2. measures, in this process and one thread, the CPU each step costs per 100 spans (parsing, OTLP
   decoding and mapping, the writer's Python, the PostgreSQL backend);
3. starts gunicorn as `make run` does (`config.wsgi:application`, gthread, BENCH_WORKERS workers ×
   BENCH_THREADS threads, DEBUG off, DB pool on, access log on) on a free loopback port;
4. phase 1, throughput: BENCH_CONCURRENCY requests in flight (closed loop) until BENCH_BATCHES batches
   of 100 spans are sent; `spans/s queryable` is the span count divided by the time from the first
   request until `SELECT count(*)` on the region database returns every span (polled every second and
   as soon as the last response is in; the endpoints answer after COMMIT, so the two nearly coincide);
5. phase 2, latency: an open loop at BENCH_RATE spans/s (default: half of phase 1's queryable rate)
   for BENCH_PHASE2_SECONDS; latency counts from the *scheduled* send time, so a request that waits
   for a free connection is charged for it (no coordinated omission);
6. prints the summary, checks that every span was stored and priced from the catalog, stops gunicorn
   and deletes the rows again.

Payloads are built up front in the load-generator process, with fresh ids: 100 generation spans per
request, 1–2 KB of chat messages each; alternately a Langfuse batch (`POST /api/public/ingestion`,
100 `generation-create` + 20 `trace-create` events, as the v2 SDK sends them) and an OTLP/HTTP
protobuf export (`POST /v1/traces`, 100 GenAI-semconv `chat` spans, 5 per trace). The load generator
is one asyncio process (httpx) on the same CPUs as gunicorn and PostgreSQL; its CPU time is printed.
Peak RSS per web worker is each worker's VmHWM (Linux /proc).

Knobs: BENCH_WORKERS, BENCH_THREADS (default WEB_CONCURRENCY/WEB_THREADS or 2 × 4), BENCH_CONCURRENCY
(default workers × threads), BENCH_BATCHES (600), BENCH_RATE, BENCH_PHASE2_SECONDS (20),
BENCH_MAX_SECONDS (180, per phase), BENCH_QUIET_WAIT (seconds to wait for a load average below 1
before starting; 0), BENCH_PROFILE=dir (py-spy, GIL-holding samples of each worker during phase 1, as
collapsed stacks; needs `.venv/bin/pip install py-spy`), BENCH_REDACT=1 (PII redaction on for the run),
BENCH_BILLING=1 (the bench organization on a plan with a hard quota and both rate limits, all far above
what the run uses, so every request pays the whole billing check; off, it is on the unlimited default).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server import free_port, percentile, prepare_environment, start_gunicorn, wait_ready  # noqa: E402

SPANS_PER_BATCH = 100
SPANS_PER_TRACE = 5
WORKERS = os.environ.get("BENCH_WORKERS") or os.environ.get("WEB_CONCURRENCY") or "2"
THREADS = os.environ.get("BENCH_THREADS") or os.environ.get("WEB_THREADS") or "4"
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY") or int(WORKERS) * int(THREADS))  # one per server thread
BATCHES = int(os.environ.get("BENCH_BATCHES", "600"))  # phase 1: 60,000 spans
WARMUP_BATCHES = int(os.environ.get("BENCH_WARMUP_BATCHES", "16"))
PHASE2_SECONDS = float(os.environ.get("BENCH_PHASE2_SECONDS", "20"))
RATE = float(os.environ.get("BENCH_RATE") or 0)  # phase 2 spans/s; 0 = half of phase 1
MAX_SECONDS = float(os.environ.get("BENCH_MAX_SECONDS", "180"))  # hard cap per phase
PROFILE = Path(os.environ["BENCH_PROFILE"]) if os.environ.get("BENCH_PROFILE") else None  # py-spy output
QUIET_WAIT = float(os.environ.get("BENCH_QUIET_WAIT", "0"))
# BENCH_REDACT=1: the bench project's PII redaction policy is on (every detector, mask) for the run,
# to measure what redaction adds to ingestion; it is switched off again afterwards.
REDACT = os.environ.get("BENCH_REDACT", "0").lower() in {"1", "true", "yes"}  # wait up to this long for load average < 1
BILLING = os.environ.get("BENCH_BILLING", "0").lower() in {"1", "true", "yes"}
# BENCH_SAMPLING=1: the bench project's sampling policy is on (10% share, traces settle after 1 minute)
# and the decision job runs every 5 s beside the server for the whole run (monitoring.sampling).
SAMPLING = os.environ.get("BENCH_SAMPLING", "0").lower() in {"1", "true", "yes"}
PHASE2_CONNECTIONS = 64
POLL_SECONDS = 1.0

TARGET_QUERYABLE = 5000
TARGET_P99_MS = 250
TARGET_RSS_MB = 300

MODELS = ("gpt-4o-mini", "gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet-20241022")
_VOCABULARY = (
    "the a to of and in for is on that with as your this it be are can by from or will you at we not "
    "order refund account invoice shipping delivery address payment card subscription plan upgrade "
    "cancel password login error message customer support ticket policy warranty product return "
    "please thanks could would should summary answer question context document retrieved section "
    "according price discount coupon tracking number package status estimated arrival business days "
    "contact email phone team manager escalation resolved pending update confirm verify identity "
    "model assistant response helpful concise accurate information available request details"
)
WORDS = _VOCABULARY.split()


# --- payloads (built in the load-generator process, before any clock starts) --------------------


def _text(rng: random.Random, low: int, high: int) -> str:
    target = rng.randint(low, high)
    words: list[str] = []
    size = 0
    while size < target:
        word = rng.choice(WORDS)
        words.append(word)
        size += len(word) + 1
    sentence = " ".join(words)
    return sentence[0].upper() + sentence[1:] + "."


@dataclass
class _Span:
    trace_id: str  # 32 hex
    span_id: str  # 16 hex
    parent: str | None
    start: datetime
    end: datetime
    model: str
    system: str
    user: str
    answer: str
    input_tokens: int
    cached_tokens: int
    output_tokens: int


def _spans(rng: random.Random, count: int, t0: datetime) -> list[_Span]:
    out = []
    trace_id = span_id_root = ""
    for i in range(count):
        start = t0 + timedelta(milliseconds=37 * i)
        if i % SPANS_PER_TRACE == 0:
            trace_id = uuid.UUID(int=rng.getrandbits(128)).hex
            span_id_root = f"{rng.getrandbits(64) | 1:016x}"
            span_id, parent = span_id_root, None
        else:
            span_id, parent = f"{rng.getrandbits(64) | 1:016x}", span_id_root
        system, user, answer = _text(rng, 250, 450), _text(rng, 400, 900), _text(rng, 250, 600)
        input_tokens = (len(system) + len(user)) // 4
        out.append(
            _Span(
                trace_id=trace_id,
                span_id=span_id,
                parent=parent,
                start=start,
                end=start + timedelta(milliseconds=rng.randint(300, 2500)),
                model=rng.choice(MODELS),
                system=system,
                user=user,
                answer=answer,
                input_tokens=input_tokens,
                cached_tokens=rng.choice((0, 0, 128, 256)),
                output_tokens=len(answer) // 4,
            )
        )
    return out


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def langfuse_body(spans: list[_Span], rng: random.Random) -> bytes:
    """What the Langfuse v2 SDK sends: envelopes with uuid ids, generation bodies with OpenAI usage."""
    import orjson

    events = []
    for span in spans:
        sent = _iso(span.end)
        if span.parent is None:
            events.append(
                {
                    "id": str(uuid.UUID(int=rng.getrandbits(128))),
                    "type": "trace-create",
                    "timestamp": sent,
                    "body": {
                        "id": span.trace_id,
                        "name": "support-chat",
                        "timestamp": _iso(span.start),
                        "userId": f"user-{rng.randint(1, 5000)}",
                        "sessionId": f"session-{rng.randint(1, 2000)}",
                        "release": "2026.11.3",
                        "tags": ["support", "bench"],
                        "metadata": {"tenant": "acme", "channel": "web"},
                        "input": {"question": span.user[:120]},
                        "environment": "production",
                    },
                }
            )
        prompt_tokens = span.input_tokens + span.cached_tokens
        events.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128))),
                "type": "generation-create",
                "timestamp": sent,
                "body": {
                    "id": span.span_id,
                    "traceId": span.trace_id,
                    "parentObservationId": span.parent,
                    "name": "chat-completion",
                    "startTime": _iso(span.start),
                    "completionStartTime": _iso(span.start + timedelta(milliseconds=180)),
                    "endTime": _iso(span.end),
                    "model": span.model,
                    "modelParameters": {"temperature": 0.2, "max_tokens": 512},
                    "input": [
                        {"role": "system", "content": span.system},
                        {"role": "user", "content": span.user},
                    ],
                    "output": {"role": "assistant", "content": span.answer},
                    "usageDetails": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": span.output_tokens,
                        "total_tokens": prompt_tokens + span.output_tokens,
                        "prompt_tokens_details": {"cached_tokens": span.cached_tokens},
                    },
                    "metadata": {"request_id": f"req-{rng.getrandbits(48):012x}"},
                    "environment": "production",
                },
            }
        )
    return orjson.dumps({"batch": events, "metadata": {"sdk_name": "python", "sdk_version": "2.60.0"}})


def otlp_body(spans: list[_Span], rng: random.Random) -> bytes:
    """What an OpenTelemetry GenAI instrumentation exports: one resource, one scope, `chat` spans."""
    import orjson
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    from ingest.adapters.otel.testing import make_request, make_span

    def nanos(moment: datetime) -> int:
        return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000

    built = []
    for span in spans:
        prompt_tokens = span.input_tokens + span.cached_tokens
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": span.model,
            "gen_ai.request.temperature": 0.2,
            "gen_ai.request.max_tokens": 512,
            "gen_ai.response.model": span.model,
            "gen_ai.response.id": f"chatcmpl-{rng.getrandbits(64):016x}",
            "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.usage.input_tokens": prompt_tokens,
            "gen_ai.usage.output_tokens": span.output_tokens,
            "gen_ai.input.messages": orjson.dumps(
                [
                    {"role": "system", "parts": [{"type": "text", "content": span.system}]},
                    {"role": "user", "parts": [{"type": "text", "content": span.user}]},
                ]
            ).decode(),
            "gen_ai.output.messages": orjson.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [{"type": "text", "content": span.answer}],
                        "finish_reason": "stop",
                    }
                ]
            ).decode(),
            "server.address": "api.openai.com",
            "server.port": 443,
        }
        if span.cached_tokens:
            attributes["gen_ai.usage.cache_read.input_tokens"] = span.cached_tokens
        built.append(
            make_span(
                trace_id=span.trace_id,
                span_id=span.span_id,
                parent_span_id=span.parent,
                name=f"chat {span.model}",
                kind=Span.SPAN_KIND_CLIENT,
                start_ns=nanos(span.start),
                end_ns=nanos(span.end),
                attributes=attributes,
            )
        )
    request = make_request(
        built,
        resource={
            "service.name": "support-bot",
            "service.version": "2026.11.3",
            "deployment.environment.name": "production",
            "telemetry.sdk.language": "python",
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.version": "1.38.0",
        },
        scope_name="opentelemetry.instrumentation.openai_v2",
        scope_version="2.2b0",
    )
    return request.SerializeToString()


@dataclass
class Batch:
    protocol: str  # "langfuse" | "otlp"
    body: bytes
    spans: int
    message_bytes: int


def build_batches(count: int, seed: int) -> list[Batch]:
    """`count` batches alternating Langfuse and OTLP, each with its own fresh ids."""
    rng = random.Random(seed)
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    out = []
    for index in range(count):
        spans = _spans(rng, SPANS_PER_BATCH, t0 + timedelta(seconds=4 * index))
        message_bytes = sum(len(s.system) + len(s.user) + len(s.answer) for s in spans)
        if index % 2 == 0:
            out.append(Batch("langfuse", langfuse_body(spans, rng), len(spans), message_bytes))
        else:
            out.append(Batch("otlp", otlp_body(spans, rng), len(spans), message_bytes))
    return out


# --- the load generator (a child process) --------------------------------------------------------


@dataclass
class Sample:
    protocol: str
    scheduled: float  # time.monotonic() (system-wide on Linux, so comparable across processes)
    started: float
    finished: float
    spans: int
    ok: bool
    detail: str = ""


def _check(protocol: str, response, spans: int) -> tuple[bool, str]:
    if protocol == "langfuse":
        if response.status_code != 207:
            return False, f"HTTP {response.status_code}: {response.text[:300]}"
        payload = response.json()
        if payload.get("errors"):
            return False, f"207 with errors: {str(payload['errors'])[:300]}"
        if len(payload.get("successes", ())) != spans + spans // SPANS_PER_TRACE:
            return False, f"207 with {len(payload.get('successes', ()))} successes"
        return True, ""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    if response.status_code != 200:
        return False, f"HTTP {response.status_code}: {response.content[:300]!r}"
    answer = ExportTraceServiceResponse.FromString(response.content)
    if answer.partial_success.rejected_spans:
        return (
            False,
            f"{answer.partial_success.rejected_spans} rejected: {answer.partial_success.error_message}",
        )
    return True, ""


async def _send(client, base: str, auth: str, batch: Batch, scheduled: float) -> Sample:
    import httpx

    if batch.protocol == "langfuse":
        url, content_type = f"{base}/api/public/ingestion", "application/json"
    else:
        url, content_type = f"{base}/v1/traces", "application/x-protobuf"
    started = time.monotonic()
    try:
        response = await client.post(
            url, content=batch.body, headers={"Authorization": auth, "Content-Type": content_type}
        )
        finished = time.monotonic()
        ok, detail = _check(batch.protocol, response, batch.spans)
    except httpx.HTTPError as exc:
        finished = time.monotonic()
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return Sample(batch.protocol, scheduled, started, finished, batch.spans, ok, detail)


async def _closed_loop(base, auth, batches, concurrency, deadline) -> list[Sample]:
    import httpx

    samples: list[Sample] = []
    pending = iter(batches)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker():
            for batch in pending:
                if time.monotonic() > deadline:
                    return
                now = time.monotonic()
                samples.append(await _send(client, base, auth, batch, now))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples


async def _open_loop(base, auth, batches, rate_spans, deadline) -> list[Sample]:
    import httpx

    interval = SPANS_PER_BATCH / rate_spans
    limits = httpx.Limits(max_connections=PHASE2_CONNECTIONS, max_keepalive_connections=PHASE2_CONNECTIONS)
    tasks = []
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        t0 = time.monotonic()
        for index, batch in enumerate(batches):
            scheduled = t0 + index * interval
            if scheduled > deadline:
                break
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_send(client, base, auth, batch, scheduled)))
        return list(await asyncio.gather(*tasks))


def load_generator(spec: dict, ready, go, done, results) -> None:
    """Child process: build the bodies, wait for `go`, send them, report the samples."""
    batches = build_batches(spec["batches"], spec["seed"])
    results.put(
        {
            "kind": "built",
            "spans": sum(b.spans for b in batches),
            "body_bytes": {
                p: sum(len(b.body) for b in batches if b.protocol == p) for p in ("langfuse", "otlp")
            },
            "message_bytes": sum(b.message_bytes for b in batches),
        }
    )
    ready.set()
    go.wait()
    cpu0 = time.process_time()
    deadline = time.monotonic() + spec["max_seconds"]
    if spec["mode"] == "closed":
        samples = asyncio.run(
            _closed_loop(spec["base"], spec["auth"], batches, spec["concurrency"], deadline)
        )
    else:
        samples = asyncio.run(_open_loop(spec["base"], spec["auth"], batches, spec["rate"], deadline))
    done.set()
    results.put(
        {"kind": "samples", "samples": [s.__dict__ for s in samples], "cpu": time.process_time() - cpu0}
    )


# --- the server ----------------------------------------------------------------------------------


def set_redaction(project_id: str, enabled: bool) -> None:
    code = (
        "from tenancy.models import Project; from privacy.services import redaction_policy_update; "
        f"redaction_policy_update(project=Project.objects.get(pk='{project_id}'), actor=None, enabled={enabled})"
    )
    manage("shell", "-c", code)


def set_sampling(project_id: str, enabled: bool) -> None:
    code = (
        "from tenancy.models import Project; from monitoring.sampling import policy_update; "
        f"policy_update(project=Project.objects.get(pk='{project_id}'), actor=None, enabled={enabled}, "
        "keep_share=0.1, settle_minutes=1)"
    )
    manage("shell", "-c", code)


def start_sampler(region: str) -> subprocess.Popen:
    code = (
        "import time\nfrom monitoring.sampling import decide_region\n"
        f"while True:\n    decide_region('{region}')\n    time.sleep(5)\n"
    )
    return subprocess.Popen([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=os.environ.copy(),
                            stdout=subprocess.DEVNULL, start_new_session=True)


def set_billing(project_id: str, enabled: bool) -> None:
    code = (
        "from tenancy.models import Project; from billing.models import Plan, Subscription; "
        f"org = Project.objects.get(pk='{project_id}').organization; "
        "Subscription.objects.filter(organization=org).delete(); "
        + (
            "plan, _ = Plan.objects.update_or_create(name='bench-billing', defaults=dict("
            "included_units=10**12, extra_unit_price=None, ingest_rate_per_second=100_000, "
            "key_rate_per_second=100_000, soft_limit_share=1.0)); "
            "Subscription.objects.create(organization=org, plan=plan)"
            if enabled
            else "pass"
        )
    )
    manage("shell", "-c", code)


def manage(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "manage.py", *args],
        check=False,
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def worker_pids(master: int) -> list[int]:
    try:
        text = Path(f"/proc/{master}/task/{master}/children").read_text()
    except OSError:
        return []
    return [int(pid) for pid in text.split()]


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_seconds(pid: int, *, with_reaped_children: bool = False) -> float:
    """User + system CPU of a process (and of its exited, reaped children), from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if with_reaped_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _postmaster_pid() -> int | None:
    """The embedded cluster's postmaster, when the stack runs one (not with an external DATABASE_URL)."""
    if "54329" not in os.environ.get("DATABASE_URL", "") and not os.environ.get("EMBEDDED_PG_PORT"):
        return None
    try:
        pid = int((ROOT / ".data" / "pg" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def cpu_snapshot(gunicorn_master: int) -> dict[str, float]:
    """CPU seconds used so far by the web server and by PostgreSQL (every backend and helper)."""
    web = _cpu_seconds(gunicorn_master) + sum(_cpu_seconds(p) for p in _children(gunicorn_master))
    out = {"web": web}
    postmaster = _postmaster_pid()
    if postmaster is not None:
        out["postgres"] = _cpu_seconds(postmaster, with_reaped_children=True) + sum(
            _cpu_seconds(p) for p in _children(postmaster)
        )
    return out


def start_profilers(pids: list[int], directory: Path) -> list[subprocess.Popen]:
    """py-spy on each web worker (BENCH_PROFILE=dir): collapsed stacks, for flame graphs or grep."""
    directory.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    return [
        subprocess.Popen(
            [
                str(spy),
                "record",
                "--pid",
                str(pid),
                "--rate",
                "250",
                "--format",
                "raw",
                "--nonblocking",
                "--gil",
                "--output",
                str(directory / f"worker-{pid}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in pids
    ]


def stop_profilers(profilers: list[subprocess.Popen]) -> None:
    for proc in profilers:
        proc.send_signal(signal.SIGINT)
    for proc in profilers:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- the region database -------------------------------------------------------------------------


class Region:
    """Counting and cleaning the bench project's rows, with the same settings the server uses."""

    def __init__(self, project_id: str, region: str):
        import django

        django.setup()
        from django.db import connections

        from tenancy.regions import region_database

        # The settings' logging config would print every httpx request of the readiness probe.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self.project_id = project_id
        self.connection = connections[region_database(region)]

    def count(self, *, catalog_only: bool = False) -> int:
        sql = "SELECT count(*) FROM traces_observation WHERE project_id = %s"
        if catalog_only:
            sql += " AND cost_source = 'catalog'"
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [self.project_id])
            return cursor.fetchone()[0]

    def clean(self) -> None:
        """Delete the bench project's rows and vacuum, so that no run pays for the previous one's
        dead tuples (autovacuum would otherwise start in the middle of the next measurement)."""
        tables = ("traces_observation", "traces_trace", "feedback_score")
        with self.connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"DELETE FROM {table} WHERE project_id = %s", [self.project_id])
            cursor.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")

    def durability(self) -> str:
        with self.connection.cursor() as cursor:
            values = []
            for name in ("fsync", "synchronous_commit", "full_page_writes"):
                cursor.execute(f"SHOW {name}")
                values.append(f"{name}={cursor.fetchone()[0]}")
        return ", ".join(values)

    def close(self) -> None:
        self.connection.close()


# --- where the time goes, in one process ---------------------------------------------------------


def breakdown(project_id: str, region: Region, batches: int = 20) -> dict[str, float]:
    """CPU ms per 100 spans of each step, measured in this process, one thread, no HTTP: Langfuse
    JSON parsing and validation, OTLP protobuf decoding and mapping, the writer's Python (merging,
    derivations, catalog prices, the JSON document) and the PostgreSQL backend executing its
    statements (read from /proc, so only with a local server). The rows are deleted afterwards."""
    import orjson
    from django.utils import timezone

    from ingest.adapters.langfuse import parse_batch
    from ingest.adapters.otel.decode import decode_protobuf
    from ingest.adapters.otel.mapping import map_decoded
    from ingest.writer import write_records
    from tenancy.models import Project

    project = Project.objects.get(id=project_id)
    built = build_batches(2 * batches + 2, seed=4)
    langfuse = [b.body for b in built if b.protocol == "langfuse"]
    otlp = [b.body for b in built if b.protocol == "otlp"]

    def parse(body):
        return parse_batch(orjson.loads(body)["batch"])

    def decode(body):
        return map_decoded(decode_protobuf(body), received_at=timezone.now())

    write_records(project=project, **_records(parse(langfuse.pop())))  # warm: price snapshot, connection
    write_records(project=project, **_records(decode(otlp.pop())))
    with region.connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    out = {}
    started = time.process_time()
    parsed = [parse(body) for body in langfuse]
    out["langfuse parse"] = (time.process_time() - started) * 1000 / len(langfuse)
    started = time.process_time()
    mapped = [decode(body) for body in otlp]
    out["otlp decode+map"] = (time.process_time() - started) * 1000 / len(otlp)
    records = [_records(batch) for batch in parsed + mapped]
    backend_before = _cpu_seconds(backend)
    started, wall = time.process_time(), time.perf_counter()
    for batch in records:
        write_records(project=project, **batch)
    out["writer python"] = (time.process_time() - started) * 1000 / len(records)
    out["writer wall"] = (time.perf_counter() - wall) * 1000 / len(records)
    if Path(f"/proc/{backend}").exists():
        out["postgres"] = (_cpu_seconds(backend) - backend_before) * 1000 / len(records)
    region.clean()
    return out


def _records(batch) -> dict:
    return {"traces": batch.traces, "observations": batch.observations, "scores": batch.scores}


# --- a phase -------------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    name: str
    samples: list[Sample]
    spans_sent: int
    spans_expected: int
    first_send: float
    last_response: float
    queryable_at: float | None
    client_cpu: float
    built: dict = field(default_factory=dict)
    rate: float | None = None  # open loop: the offered load, spans/s
    cpu: dict = field(default_factory=dict)  # CPU seconds used during the phase: web, postgres

    @property
    def ok_spans(self) -> int:
        return sum(s.spans for s in self.samples if s.ok)

    @property
    def failures(self) -> list[Sample]:
        return [s for s in self.samples if not s.ok]

    @property
    def accepted_rate(self) -> float:
        return self.ok_spans / max(self.last_response - self.first_send, 1e-9)

    @property
    def queryable_rate(self) -> float | None:
        if self.queryable_at is None:
            return None
        return self.spans_expected / max(self.queryable_at - self.first_send, 1e-9)

    def latencies_ms(self, protocol: str | None = None, *, from_scheduled: bool) -> list[float]:
        return sorted(
            (s.finished - (s.scheduled if from_scheduled else s.started)) * 1000
            for s in self.samples
            if protocol is None or s.protocol == protocol
        )


def run_phase(
    name: str, spec: dict, region: Region, master: int, rss_peak: dict, profile: Path | None = None
) -> PhaseResult:
    ctx = multiprocessing.get_context("spawn")
    ready, go, done, results = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
    child = ctx.Process(target=load_generator, args=(spec, ready, go, done, results), daemon=True)
    child.start()
    built = results.get(timeout=600)
    if not ready.wait(timeout=600):
        raise SystemExit(f"{name}: the load generator did not get ready")
    baseline = region.count()
    expected = baseline + built["spans"]
    profilers = start_profilers(worker_pids(master), profile) if profile else []
    cpu_before = cpu_snapshot(master)
    start = time.monotonic()
    go.set()
    queryable_at = None
    hard_stop = start + spec["max_seconds"] + 60
    while time.monotonic() < hard_stop:
        finished = done.wait(timeout=POLL_SECONDS)
        for pid in worker_pids(master):
            rss_peak[pid] = max(rss_peak.get(pid, 0), _status_kb(pid, "VmRSS"))
        if region.count() >= expected:
            queryable_at = time.monotonic()
            break
        if finished:
            # Every response is in: keep polling briefly in case a row is not yet visible.
            grace = time.monotonic() + 10
            while time.monotonic() < grace:
                if region.count() >= expected:
                    queryable_at = time.monotonic()
                    break
                time.sleep(0.05)
            break
    cpu_after = cpu_snapshot(master)
    stop_profilers(profilers)
    report = results.get(timeout=120)
    child.join(timeout=30)
    samples = [Sample(**s) for s in report["samples"]]
    if not samples:
        raise SystemExit(f"{name}: no request was sent")
    return PhaseResult(
        name=name,
        samples=samples,
        spans_sent=sum(s.spans for s in samples),
        spans_expected=built["spans"],
        first_send=min(s.started for s in samples),
        last_response=max(s.finished for s in samples),
        queryable_at=queryable_at,
        client_cpu=report["cpu"],
        built=built,
        rate=spec.get("rate"),
        cpu={key: cpu_after[key] - cpu_before[key] for key in cpu_after},
    )


# --- main ----------------------------------------------------------------------------------------


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        mem_kb = 0
    return f"{os.cpu_count()} CPUs ({model}), {mem_kb / 2**20:.1f} GiB RAM"


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def wait_for_quiet(limit: float) -> None:
    """Other work on the machine skews every figure; give it up to `limit` seconds to finish."""
    deadline = time.monotonic() + limit
    while os.getloadavg()[0] >= 1.0 and time.monotonic() < deadline:
        time.sleep(5)


def main() -> int:
    # A plain `kill` must still stop gunicorn and delete the rows (the `finally` below).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if PROFILE and not Path(sys.executable).with_name("py-spy").exists():
        raise SystemExit("BENCH_PROFILE needs py-spy in the virtualenv: .venv/bin/pip install py-spy")
    prepare_environment()
    wait_for_quiet(QUIET_WAIT)
    load_before = load_average()
    manage("migrate_all")
    manage("load_model_prices")
    created = json.loads(
        manage(
            "create_project", "--org", "bench", "--project", "bench", "--note", "make bench-ingest", "--json"
        )
    )
    auth = "Basic " + base64.b64encode(f"{created['public_key']}:{created['secret_key']}".encode()).decode()
    if REDACT:
        set_redaction(created["project_id"], True)
    set_billing(created["project_id"], BILLING)
    if SAMPLING:
        set_sampling(created["project_id"], True)
    region = Region(created["project_id"], created["region"])
    region.clean()
    steps = breakdown(created["project_id"], region)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_fd, log_name = tempfile.mkstemp(prefix="bench-ingest-gunicorn-", suffix=".log")
    server = start_gunicorn(port, workers=WORKERS, threads=THREADS, stderr=log_fd, access_log=True)
    sampler = start_sampler(created["region"]) if SAMPLING else None
    os.close(log_fd)
    rss_peak: dict[int, int] = {}
    results: list[PhaseResult] = []
    failed = False
    try:
        wait_ready(base, server)
        common = {"base": base, "auth": auth, "max_seconds": MAX_SECONDS}
        # Warm-up: imports, price snapshot, pooled connections in every worker; not measured.
        warmup = run_phase(
            "warm-up",
            {**common, "mode": "closed", "batches": WARMUP_BATCHES, "concurrency": CONCURRENCY, "seed": 1},
            region,
            server.pid,
            rss_peak,
        )
        throughput = run_phase(
            "throughput",
            {**common, "mode": "closed", "batches": BATCHES, "concurrency": CONCURRENCY, "seed": 2},
            region,
            server.pid,
            rss_peak,
            PROFILE,
        )
        results.append(throughput)
        if warmup.failures:
            results.insert(0, warmup)  # reported below; the run fails
        rate = RATE or (throughput.queryable_rate or throughput.accepted_rate) / 2
        count = max(2, int(rate * PHASE2_SECONDS / SPANS_PER_BATCH))
        latency = run_phase(
            "latency",
            {**common, "mode": "open", "batches": count, "rate": rate, "seed": 3},
            region,
            server.pid,
            rss_peak,
        )
        results.append(latency)
        for pid in worker_pids(server.pid):
            rss_peak[pid] = max(rss_peak.get(pid, 0), _status_kb(pid, "VmHWM"))
        workers_now = worker_pids(server.pid)
        priced = region.count(catalog_only=True)
        stored = region.count()
        durability = region.durability()
    finally:
        if sampler is not None:
            os.killpg(sampler.pid, signal.SIGTERM)
            sampler.wait(timeout=30)
            set_sampling(created["project_id"], False)
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)
        try:
            region.clean()
        finally:
            region.close()
            if REDACT:
                set_redaction(created["project_id"], False)
            if BILLING:
                set_billing(created["project_id"], False)
    load_after = load_average()

    for r in results:
        failed = failed or bool(r.failures)
        for sample in r.failures[:5]:
            print(f"{r.name} failure ({sample.protocol}): {sample.detail}")
    if warmup.failures:
        results.pop(0)
    total_sent = sum(r.spans_sent for r in results)
    throughput, latency = results
    print()
    print(f"Trace ingestion benchmark — {machine()}")
    print(
        f"gunicorn gthread {WORKERS} workers × {THREADS} threads, DEBUG off, DB pool on; PostgreSQL "
        f"{durability}; PII redaction {'ON (all detectors, mask)' if REDACT else 'off'}; "
        f"billing {'ON (quota + rate limits checked)' if BILLING else 'off (unlimited default)'}; "
        f"sampling {'ON (10%, decision job every 5 s)' if SAMPLING else 'off'}; "
        f"load generator: 1 asyncio process (httpx) on the same CPUs; "
        f"load average before {load_before}, after {load_after}"
    )
    built = throughput.built
    print(
        f"spans: {SPANS_PER_BATCH} per request, {built['message_bytes'] / built['spans']:,.0f} B of messages "
        f"each; request bodies: Langfuse {built['body_bytes']['langfuse'] / (BATCHES - BATCHES // 2) / 1024:,.0f}"
        f" KiB, OTLP protobuf {built['body_bytes']['otlp'] / max(BATCHES // 2, 1) / 1024:,.0f} KiB"
    )
    print()
    rows = [("", "phase 1: throughput", "phase 2: latency")]
    rows.append(
        (
            "load",
            f"{CONCURRENCY} in flight (closed loop)",
            f"{latency.rate:,.0f} spans/s offered (open loop)",
        )
    )
    rows.append(("requests (failed)", *(f"{len(r.samples)} ({len(r.failures)})" for r in results)))
    rows.append(("spans sent", *(f"{r.spans_sent:,}" for r in results)))
    rows.append(("spans/s accepted", *(f"{r.accepted_rate:,.0f}" for r in results)))
    rows.append(
        (
            "spans/s queryable",
            *(f"{r.queryable_rate:,.0f}" if r.queryable_rate else "NOT all queryable" for r in results),
        )
    )
    for protocol in (None, "langfuse", "otlp"):
        label = "all" if protocol is None else protocol
        cells = []
        for r in results:
            lat = r.latencies_ms(protocol, from_scheduled=r is latency)
            cells.append(f"{percentile(lat, 0.5):,.0f} / {percentile(lat, 0.99):,.0f} / {lat[-1]:,.0f}")
        rows.append((f"latency ms p50/p99/max ({label})", *cells))
    rows.append(("wall time s", *(f"{r.last_response - r.first_send:.1f}" for r in results)))
    rows.append(
        (
            "CPU ms per 100 spans: web / postgres",
            *(
                f"{r.cpu['web'] * 1e5 / r.spans_sent:.1f} / "
                + (f"{r.cpu['postgres'] * 1e5 / r.spans_sent:.1f}" if "postgres" in r.cpu else "n/a")
                for r in results
            ),
        )
    )
    rows.append(
        (
            "CPU s: web / postgres / client",
            *(
                f"{r.cpu['web']:.1f} / {r.cpu['postgres']:.1f} / {r.client_cpu:.1f}"
                if "postgres" in r.cpu
                else f"{r.cpu['web']:.1f} / n/a / {r.client_cpu:.1f}"
                for r in results
            ),
        )
    )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
    print(
        "in one process, CPU ms per 100 spans: "
        + ", ".join(f"{name} {ms:.1f}" for name, ms in steps.items() if name != "writer wall")
        + f" (writer wall time {steps['writer wall']:.1f} ms, commit included)"
    )
    peaks = [rss_peak.get(pid, 0) / 1024 for pid in workers_now]
    print(
        "peak RSS per web worker (VmHWM): "
        + ", ".join(f"{mb:.0f} MB" for mb in peaks)
        + f"; spans stored {stored:,}, priced from the catalog {priced:,}"
    )
    if priced != stored or stored != total_sent + WARMUP_BATCHES * SPANS_PER_BATCH:
        print(
            f"MISMATCH: sent {total_sent + WARMUP_BATCHES * SPANS_PER_BATCH:,}, stored {stored:,}, priced {priced:,}"
        )
        failed = True
    p99 = percentile(latency.latencies_ms(from_scheduled=True), 0.99)
    checks = [
        (f"≥ {TARGET_QUERYABLE:,} spans/s queryable", (throughput.queryable_rate or 0) >= TARGET_QUERYABLE),
        (f"p99 < {TARGET_P99_MS} ms at {latency.rate:,.0f} spans/s", p99 < TARGET_P99_MS),
        (f"every web worker < {TARGET_RSS_MB} MB resident", bool(peaks) and max(peaks) < TARGET_RSS_MB),
    ]
    print("targets: " + "; ".join(f"{label}: {'met' if ok else 'NOT met'}" for label, ok in checks))
    if failed:
        print(f"gunicorn log: {log_name}")
    else:
        os.unlink(log_name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
