"""The real clients against a live server: the Langfuse SDK (v2) and the OpenTelemetry OTLP/HTTP
exporter receive the quota's 429, retry, and store everything once an operator raises the plan —
nothing is lost at the limit (a 403 would have been dropped by both)."""

from __future__ import annotations

import os
import threading
import time

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from billing import limits
from billing.services import subscription_set
from ingest.stages import price as costs
from tests.billing.support import clear_rejection_counters, make_plan, subscribe
from tests.clients import SdkUnavailable, run_sdk_script, sdk_python
from traces.models import Observation, Trace

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

SDK_SCRIPT = """
from langfuse import Langfuse
lf = Langfuse(flush_at=100, flush_interval=0.2, max_retries=12)
trace = lf.trace(id="quota-trace", name="at-the-limit")
trace.generation(id="quota-gen", name="llm", model="m")
lf.flush()
lf.shutdown()
print("flushed")
"""


@pytest.fixture(autouse=True)
def _fresh(monkeypatch, settings):
    monkeypatch.setattr(costs, "_pricing", lambda: None)
    settings.BILLING_QUOTA_RETRY_AFTER_SECONDS = 1
    limits.invalidate()
    clear_rejection_counters()
    yield
    limits.invalidate()


@pytest.fixture(scope="module")
def langfuse_v2():
    try:
        return sdk_python("langfuse-v2", "langfuse==2.60.*")
    except SdkUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"langfuse v2 SDK could not be installed: {exc}")


def _refused_requests() -> int:
    from billing import enforcement

    raw = enforcement._client().hgetall(enforcement.REJECTED_KEY)
    return sum(int(v) for k, v in raw.items() if k.decode().endswith("|requests"))


def _raise_after_refusals(organization, superuser, count: int = 1, timeout: float = 30) -> int:
    """Wait until the client has been refused `count` times, then move the organization to a bigger
    plan (committed, as an operator would); returns the refusals seen."""
    deadline = time.monotonic() + timeout
    while _refused_requests() < count:
        assert time.monotonic() < deadline, "the client was never refused"
        time.sleep(0.05)
    seen = _refused_requests()
    subscription_set(organization=organization, plan=make_plan(included_units=1_000), actor=superuser)
    return seen


def _in_thread(target):
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = target()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_the_langfuse_sdk_retries_the_429_and_succeeds_once_the_plan_is_raised(
    live_server, langfuse_v2, organization, project, api_key, superuser
):
    subscribe(organization, make_plan(included_units=0))
    env = {"LANGFUSE_HOST": live_server.url, "LANGFUSE_PUBLIC_KEY": api_key.public,
           "LANGFUSE_SECRET_KEY": api_key.secret}
    thread, outcome = _in_thread(lambda: run_sdk_script(langfuse_v2, SDK_SCRIPT, env=env, timeout=120))
    refusals = _raise_after_refusals(organization, superuser)
    thread.join(150)
    assert "error" not in outcome, outcome.get("error")
    assert "flushed" in outcome["value"]
    assert refusals >= 1
    assert Trace.objects.for_project(project).filter(id="quota-trace").exists()
    assert Observation.objects.for_project(project).filter(id="quota-gen").exists()


@pytest.mark.parametrize("route", ["/api/public/otel/v1/traces", "/v1/traces"])
def test_the_otlp_exporter_retries_the_429_and_succeeds_once_the_plan_is_raised(
    live_server, organization, project, api_key, superuser, route
):
    subscribe(organization, make_plan(included_units=0))
    exporter = OTLPSpanExporter(endpoint=live_server.url + route, headers={"Authorization": api_key.basic},
                                timeout=30)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    def export():
        with provider.get_tracer("quota").start_as_current_span("llm-call") as span:
            return format(span.get_span_context().trace_id, "032x")

    thread, outcome = _in_thread(export)
    refusals = _raise_after_refusals(organization, superuser)
    thread.join(60)
    provider.shutdown()
    assert "error" not in outcome, outcome.get("error")
    assert refusals >= 1
    assert Trace.objects.for_project(project).filter(id=outcome["value"]).exists()
    assert Observation.objects.for_project(project).filter(trace_id=outcome["value"]).count() == 1
