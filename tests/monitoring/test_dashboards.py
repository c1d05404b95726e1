"""The cost and quality dashboard (console page) and the selectors behind it: totals that match
the seeded calls, the 80/20 line, cache savings priced from the catalog, thumbs-down rate, zero-
filled series, the locally served chart library, and isolation (another organization's project is
absent)."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ingest import writer
from monitoring import selectors
from monitoring.dashboards import plotly_version
from pricing.models import ModelPrice
from tests.pages import off_host_assets


def gen(obs_id, trace_id, *, start, cost, latency_ms=1000, model="gpt-4o", **extra):
    return {
        "id": obs_id, "trace_id": trace_id, "type": "GENERATION", "start_time": start,
        "end_time": start + timedelta(milliseconds=latency_ms), "model": model,
        "total_cost": Decimal(cost), "cost_details": {"total": float(cost)}, **extra,
    }


@pytest.fixture
def seeded(project):
    # Two hours back, but never before today's midnight (UTC): the assertions read "today's" point,
    # and between 00:00 and 02:30 two hours back is yesterday.
    current = timezone.now()
    now = max(current.replace(minute=30) - timedelta(hours=2), current.replace(hour=0, minute=0, second=0, microsecond=0))
    ModelPrice.objects.create(project=project, provider="openai", model_name="cache-model", match_pattern="^cache-model$",
                              effective_from=timezone.now() - timedelta(days=30), input_price=Decimal("2"),
                              cached_input_price=Decimal("0.5"), output_price=Decimal("8"))
    traces = [
        {"id": "t-support", "name": "chat", "user_id": "alice", "metadata": {"feature": "support"}},
        {"id": "t-search", "name": "search", "user_id": "bob", "metadata": {"feature": "search"}},
        {"id": "t-summary", "name": "summarise", "user_id": "carol", "metadata": {"feature": "summary"}},
    ]
    calls = [
        gen("c1", "t-support", start=now, cost="40", latency_ms=800),
        gen("c2", "t-support", start=now - timedelta(days=1), cost="30", latency_ms=1200, status="error"),
        gen("c3", "t-search", start=now, cost="20", latency_ms=300, model="cache-model",
            cached_input_tokens=1_000_000, input_tokens=10),
        gen("c4", "t-summary", start=now, cost="6", latency_ms=5000, status="refused",
            completion_start_time=now + timedelta(milliseconds=400)),
        gen("c5", "t-summary", start=now, cost="4", latency_ms=6000),
    ]
    scores = [
        {"id": "f1", "trace_id": "t-support", "name": "thumbs", "value": 0, "data_type": "BOOLEAN", "source": "USER",
         "timestamp": now},
        {"id": "f2", "trace_id": "t-search", "name": "thumbs", "value": 1, "data_type": "BOOLEAN", "source": "USER",
         "timestamp": now},
        {"id": "f3", "trace_id": "t-summary", "name": "thumbs", "value": 1, "data_type": "BOOLEAN", "source": "USER",
         "timestamp": now},
        {"id": "f4", "trace_id": "t-summary", "name": "thumbs", "value": 1, "data_type": "BOOLEAN", "source": "USER",
         "timestamp": now - timedelta(days=1)},
    ]
    writer.write_records(project=project, traces=traces, observations=calls, scores=scores)
    return now


def test_series_are_zero_filled_and_sum_to_the_breakdown(project, seeded):
    quality = selectors.quality_series(project=project, days=7)
    assert len(quality["points"]) == 7
    assert sum(p["calls"] for p in quality["points"]) == 5
    assert sum(p["spend"] for p in quality["points"]) == Decimal(100)
    assert sum(p["errors"] for p in quality["points"]) == 1 and sum(p["refusals"] for p in quality["points"]) == 1
    empty = [p for p in quality["points"] if p["calls"] == 0]
    assert len(empty) == 5 and all(p["error_rate"] is None and p["latency_ms"]["p50"] is None for p in empty)
    today = quality["points"][-1]
    assert today["calls"] == 4 and today["refusal_rate"] == 0.25
    assert today["ttft_ms"]["p50"] == pytest.approx(400, rel=0.09)
    hourly = selectors.quality_series(project=project, days=1, granularity="hour")
    assert len(hourly["points"]) == 24 and sum(p["calls"] for p in hourly["points"]) == 4


def test_spend_series_by_feature_keeps_the_top_groups(project, seeded):
    series = selectors.spend_series_by(project=project, by="feature", days=7, top=2)
    names = [s["name"] for s in series["series"]]
    assert names == ["support", "search", "(other)"]
    assert sum(series["series"][2]["spend"]) == Decimal(10)


def test_cache_savings_price_cached_input_at_fresh_versus_cache_read_rates(project, seeded):
    cache = selectors.cache_savings(project=project, days=7)
    # 1M cached tokens of cache-model: 2 USD fresh, 0.5 USD paid, 1.5 saved.
    assert cache["total"]["cached_tokens"] == 1_000_000
    assert cache["total"]["fresh_cost"] == Decimal(2) and cache["total"]["paid"] == Decimal("0.5")
    assert cache["total"]["savings"] == Decimal("1.5")
    assert cache["models"][0]["model"] == "cache-model"


def test_thumbs_down_rate(project, seeded):
    thumbs = selectors.thumbs_series(project=project, days=7)
    assert thumbs["total"] == {"thumbs": 4, "down": 1, "up": 3, "thumbs_down_rate": 0.25}
    assert thumbs["points"][-1]["thumbs_down_rate"] == pytest.approx(1 / 3, abs=1e-6)


def _text(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', html)
    assert match, element_id
    return match.group(1).strip()


def test_the_page_renders_with_the_right_totals(client, owner, project, seeded):
    client.force_login(owner)
    response = client.get(f"/admin/monitoring/dashboard/?project={project.id}&days=7")
    assert response.status_code == 200
    html = response.content.decode()
    assert _text(html, "lg-total-spend") == "$100.00"
    assert _text(html, "lg-total-calls") == "5"
    assert _text(html, "lg-total-within-80") == "2 of 3"  # support 70 + search 20 ≥ 80%
    assert _text(html, "lg-error-rate") == "20%" and _text(html, "lg-refusal-rate") == "20%"
    assert _text(html, "lg-thumbs-down-rate") == "25%"
    assert _text(html, "lg-cache-savings") == "$1.50"
    features = re.findall(r'<tr class="lg-row[^"]*">\s*<td>([^<]+)</td>', html.split('id="lg-by-feature"')[1].split("</table>")[0])
    assert features == ["support", "search", "summary"]
    assert html.count("lg-pareto-line") >= 2  # the CSS rule and the row that closes the 80%
    assert 'id="lg-dashboard-data"' in html
    # The chart library is served by us (no CDN), from the pinned pip package.
    src = re.search(r'<script src="([^"]*plotly[^"]*)"', html).group(1)
    assert src.startswith("/admin/monitoring/assets/plotly-") and plotly_version() in src
    asset = client.get(src)
    assert asset.status_code == 200 and asset["Content-Type"] == "application/javascript"
    assert b"plotly" in b"".join(asset.streaming_content)[:2000].lower()
    assert off_host_assets(html) == []
    assert client.get("/admin/monitoring/assets/plotly-0.0.0.min.js").status_code == 404


@pytest.mark.parametrize("who", ["other_owner", "far_owner"])
def test_another_organization_cannot_open_the_project_s_dashboard(client, project, seeded, request, who):
    client.force_login(request.getfixturevalue(who))
    response = client.get(f"/admin/monitoring/dashboard/?project={project.id}")
    assert response.status_code == 404  # as absent as a project that does not exist
    assert "$100.00" not in response.content.decode()
    assert client.get("/admin/monitoring/dashboard/?project=00000000-0000-0000-0000-000000000000").status_code == 404
    own = client.get("/admin/monitoring/dashboard/")
    assert own.status_code == 200 and _text(own.content.decode(), "lg-total-calls") == "0"


def test_hourly_view_and_a_bad_window_answer(client, owner, project, seeded):
    client.force_login(owner)
    response = client.get(f"/admin/monitoring/dashboard/?project={project.id}&days=1&granularity=hour")
    assert response.status_code == 200
    assert response.context["charts"]["times"] and len(response.context["charts"]["times"]) == 24
    assert client.get(f"/admin/monitoring/dashboard/?project={project.id}&days=5").status_code == 400


def test_signed_out_visitors_are_sent_to_the_login(client, project):
    response = client.get(f"/admin/monitoring/dashboard/?project={project.id}")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
