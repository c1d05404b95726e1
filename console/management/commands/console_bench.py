"""Server time of the console's pages on a filled project.

    make bench-console ARGS="--traces 100000"            # through the real write path
    make bench-console ARGS="--observations 10000000"    # seeded with SQL (bench/console_volume.py)

`--traces N` fills a project (in its own organization) with N traces of one generation each, sent as
Langfuse batches through `ingest` (so indexes, rollups and scores are as in production; ~300 traces/s
on the 2-core reference machine). `--observations N` seeds project `console-sql-<N>` with SQL instead
(N / 5 traces of five observations over 30 days, text, sessions, thumbs, rollups: minutes, not hours;
resumed if stopped). Either way it then requests every console page several times with Django's
test client as a superuser and prints the median and worst server time of each (no network, no
browser). Re-running reuses the project's data.
"""

from __future__ import annotations

import os
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from django.conf import settings
from django.core.management.base import BaseCommand
from django.test import Client
from django.urls import reverse

from ingest.services import create_scores, ingest_langfuse_batch
from tenancy.models import Organization, Project, User

WORDS = ("refund invoice shipping delay password reset account billing upgrade cancel order tracking "
         "warranty discount coupon delivery address payment card declined subscription plan").split()
BATCH_TRACES = 250
DATASET_ITEMS = 500


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class Command(BaseCommand):
    help = "Fill a project through ingest and time every console page."

    def add_arguments(self, parser):
        parser.add_argument("--traces", type=int, default=20_000)
        parser.add_argument("--project", default="console-bench")
        parser.add_argument("--observations", type=int, default=0,
                            help="seed N observations with SQL (project console-sql-N) instead of --traces through ingest")
        parser.add_argument("--repeat", type=int, default=5)
        parser.add_argument("--queries", action="store_true",
                            help="after timing, print each page's slowest statements (one more request, captured)")
        parser.add_argument("--only", default="", help="time only the pages whose name contains this text")

    def handle(self, *args, traces: int, project: str, repeat: int, observations: int, queries: bool, only: str,
               **options):
        organization, _ = Organization.objects.get_or_create(name="Console bench")
        if observations:
            project = f"console-sql-{observations}"
        proj = Project.objects.filter(organization=organization, name=project).first() or Project.objects.create(
            organization=organization, name=project, region=settings.DEFAULT_REGION
        )
        if observations:
            from bench import console_volume
            from tenancy.dataplane import data_connection

            console_volume.seed(proj, data_connection(proj), observations=observations)
            traces, prefix = observations // 5, "t"
        else:
            self._fill(proj, traces)
            prefix = "bench-"
        dataset, runs, rule = self._judge(proj, min(traces, 2 * DATASET_ITEMS), prefix=prefix)
        user = User.objects.filter(email="console-bench@lookglass.local").first() or User.objects.create_superuser(
            email="console-bench@lookglass.local", password=uuid.uuid4().hex
        )
        # A host the deployment accepts (ALLOWED_HOSTS), not the test client's "testserver".
        client = Client(HTTP_HOST=(settings.ALLOWED_HOSTS or ["127.0.0.1"])[0].lstrip("."))
        client.force_login(user)
        base = f"/console/p/{proj.id}"
        pages = {
            "home": f"{base}/",
            "traces (newest)": f"{base}/traces/",
            "traces: search 'refund'": f"{base}/traces/?q=refund",
            "traces: search two words": f"{base}/traces/?q=password+reset",
            "traces: search rare word": f"{base}/traces/?q=needle-{traces // 2}",
            "traces: search 'refund' page 2": f"{base}/traces/?q=refund&page=2",
            "traces: search 'refund' of one user": f"{base}/traces/?q=refund&user=%22user-7%22",
            "traces: user prefix": f"{base}/traces/?user=user-1",
            "traces: sort by cost": f"{base}/traces/?order=-cost&since=" + quote(_iso(datetime.now(UTC) - timedelta(days=1))),
            "trace": f"{base}/traces/{prefix}{traces // 2}/",
            "sessions": f"{base}/sessions/",
            "session": f"{base}/sessions/session-7/",
            "users": f"{base}/users/",
            "user": f"{base}/users/user-7/",
            "prompts": f"{base}/prompts/",
            "review: thumbs-down": reverse("console:review", args=[proj.id]) + "?thumbs_down=on",
            "review: a trace in the queue": f"{base}/traces/{prefix}{traces // 2}/?review=" + quote("thumbs_down=on"),
            "dashboards (7 days)": f"{base}/dashboards/",
            "dashboards (30 days)": f"{base}/dashboards/?days=30",
            "dashboards (24 h by hour)": f"{base}/dashboards/?days=1&granularity=hour",
            "feedback (30 days)": f"{base}/feedback/",
            "alerts": f"{base}/alerts/",
            "usage": f"{base}/usage/",
            "datasets": f"{base}/datasets/",
            "dataset": f"{base}/datasets/{dataset.id}/",
            "run": f"{base}/datasets/{dataset.id}/runs/{runs[0].id}/",
            "runs side by side": f"{base}/datasets/{dataset.id}/compare/?baseline={runs[0].id}&candidate={runs[1].id}",
            "evaluators": f"{base}/evaluators/",
            "evaluation rule": f"{base}/evaluators/rules/{rule.id}/",
            "exports": f"{base}/exports/",
        }
        if observations:  # the SQL seed links calls to prompts (bench/console_volume.py)
            pages["prompt (7-day version metrics)"] = f"{base}/prompts/answer-0/"
            from traces.models import Observation

            newest = (Observation.objects.for_project(proj).filter(prompt_name="answer-0")
                      .order_by("-start_time").values_list("prompt_version", flat=True).first())
            pages["a prompt version's generations (7 days)"] = f"{base}/prompts/answer-0/generations?version={newest}"
        from monitoring.models import HourlyRollup

        rollups = HourlyRollup.objects.for_project(proj).count()
        shape = (f"{traces} traces, {observations} observations" if observations
                 else f"{traces} traces, {traces} generations")
        self.stdout.write(f"{shape}, {rollups} hourly rollup rows; {repeat} runs per page (ms: median, worst); "
                          f"load average {os.getloadavg()[0]:.1f}")
        for name, url in pages.items():
            if only and only not in name:
                continue
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - start) * 1000)
                assert response.status_code in (200, 302), (url, response.status_code)
            self.stdout.write(f"  {name:28s} {statistics.median(times):8.1f} {max(times):8.1f}")
            if queries:
                self._slowest(client, url)
        self.stdout.write(f"load average {os.getloadavg()[0]:.1f}")

    def _slowest(self, client, url: str) -> None:
        from contextlib import ExitStack

        from django.db import connections
        from django.test.utils import CaptureQueriesContext

        with ExitStack() as stack:
            captured = [stack.enter_context(CaptureQueriesContext(c)) for c in connections.all()]
            client.get(url)
        statements = sorted((q for c in captured for q in c.captured_queries), key=lambda q: -float(q["time"]))
        total = sum(float(q["time"]) for q in statements) * 1000
        self.stdout.write(f"      {len(statements)} statements, {total:.0f} ms in the database; slowest:")
        for q in statements[:3]:
            self.stdout.write(f"      {float(q['time']) * 1000:7.1f} ms  {q['sql'][:400]}")

    def _judge(self, project, traces: int, *, prefix: str):
        """A dataset of DATASET_ITEMS items run twice over the bench traces, with an `accuracy` score
        per run item, and an evaluation rule (through the evals services; kept between runs)."""
        from evals import eval_selectors, eval_services
        from evals import selectors as eval_reads
        from evals.services import dataset_item_upsert, dataset_upsert, run_item_create

        dataset = eval_reads.dataset_by_name(project=project, name="bench-qa")
        if dataset is None:
            dataset = dataset_upsert(project=project, fields={"name": "bench-qa"}, actor=None)
            items = traces // 2
            rng = random.Random(11)
            for i in range(items):
                dataset_item_upsert(project=project, dataset_name="bench-qa", item_id=f"item-{i}",
                                    fields={"input": {"question": f"q{i}"}, "expected_output": f"a{i}"})
            for run_index, run_name in enumerate(("baseline", "candidate")):
                scores = []
                for i in range(items):
                    trace_id = f"{prefix}{run_index * items + i}"
                    run_item_create(project=project, run_name=run_name, run_description=None, metadata=None,
                                    dataset_item_id=f"item-{i}", trace_id=trace_id, observation_id=None)
                    scores.append({"traceId": trace_id, "name": "accuracy", "value": rng.random(),
                                   "dataType": "NUMERIC"})
                create_scores(project=project, bodies=scores, public_only=True)
        runs = sorted(eval_reads.runs_of(project=project, dataset=dataset), key=lambda r: r.name)
        rule = next(iter(eval_selectors.rule_list(project=project)), None)
        if rule is None:
            evaluator = eval_services.evaluator_create(project=project, data={"name": "correctness",
                                                                              "template": "correctness"})
            rule = eval_services.rule_save(project=project, data={
                "name": "bench rule", "enabled": False, "target": "trace",
                "evaluatorAssignments": [{"evaluatorId": str(evaluator.pk)}]})
        return dataset, runs, rule

    def _fill(self, project, total: int) -> None:
        from traces.models import Trace

        have = Trace.objects.for_project(project).count()
        if have >= total:
            return
        rng = random.Random(7)
        now = datetime.now(UTC)
        started = time.perf_counter()
        for first in range(have, total, BATCH_TRACES):
            events, thumbs = [], []
            for i in range(first, min(first + BATCH_TRACES, total)):
                at = now - timedelta(seconds=(total - i) * 30)
                question = " ".join(rng.choices(WORDS, k=12))
                answer = " ".join(rng.choices(WORDS, k=30)) + f" needle-{i}"
                tid = f"bench-{i}"
                events.append({"id": uuid.uuid4().hex, "type": "trace-create", "timestamp": _iso(at), "body": {
                    "id": tid, "name": rng.choice(["chat", "search", "summarise"]), "timestamp": _iso(at),
                    "userId": f"user-{i % 1000}", "sessionId": f"session-{i % 5000}",
                    "input": [{"role": "user", "content": question}], "output": {"role": "assistant", "content": answer},
                    "tags": [rng.choice(["prod", "beta"])], "metadata": {"feature": rng.choice(WORDS)},
                }})
                events.append({"id": uuid.uuid4().hex, "type": "generation-create", "timestamp": _iso(at), "body": {
                    "id": f"{tid}-g", "traceId": tid, "name": "llm", "startTime": _iso(at),
                    "endTime": _iso(at + timedelta(milliseconds=rng.randint(200, 9000))),
                    "model": rng.choice(["gpt-4o-mini", "gpt-4o", "claude-3-haiku"]),
                    "input": [{"role": "user", "content": question}], "output": {"role": "assistant", "content": answer},
                    "usage": {"input": 40, "output": 90}, "costDetails": {"total": rng.random() / 100},
                    **({"level": "ERROR", "statusMessage": "timeout"} if rng.random() < 0.03 else {}),
                }})
                if rng.random() < 0.05:
                    thumbs.append({"traceId": tid, "name": "thumbs", "value": 0, "dataType": "BOOLEAN"})
            result = ingest_langfuse_batch(project=project, payload={"batch": events})
            if result.errors:
                raise SystemExit(f"ingest refused events: {result.errors[:3]}")
            if thumbs:
                create_scores(project=project, bodies=thumbs, public_only=True)
            if (first // BATCH_TRACES) % 40 == 0:
                self.stdout.write(f"  stored {first + BATCH_TRACES} traces ({time.perf_counter() - started:.0f} s)")
