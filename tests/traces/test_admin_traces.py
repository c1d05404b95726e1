"""Trace pages of the console: the cross-project, cross-region list and a trace's detail."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scores.models import Score
from tenancy.models import Role
from tenancy.regions import region_database
from tests.factories import ProjectFactory
from tests.tenancy.test_http_kit import DEEP_TOKEN
from traces.models import Observation, Trace

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LIST_URL = "/admin/traces/"


def detail_url(project, trace_id):
    return reverse("admin:traces_trace_detail", args=[project.id, trace_id])


def make_trace(project, trace_id, *, at=T0, observations=(), **fields):
    trace = Trace.objects.for_project(project).create(id=trace_id, timestamp=at, **fields)
    Observation.objects.for_project(project).bulk_create(
        [
            Observation(
                id=f"{trace_id}-o{i}", trace_id=trace_id, start_time=at + timedelta(seconds=o.pop("start", 0)),
                end_time=at + timedelta(seconds=o.pop("end", 1)), **o,
            )
            for i, o in enumerate(dict(o) for o in observations)
        ]
    )
    return trace


def row_ids(response) -> list[str]:
    return [row.trace.id for row in response.context["rows"]]


@pytest.fixture
def us_project(organization):
    return ProjectFactory(organization=organization, name="us-bot", region="us")


@pytest.fixture
def viewer(client, organization, member_of):
    user = member_of(organization, Role.VIEWER)
    client.force_login(user)
    return user


# --- list ---------------------------------------------------------------------------------------


def test_the_list_merges_the_members_projects_across_regions_newest_first(
    client, viewer, project, us_project, other_project
):
    make_trace(project, "eu-old", at=T0 - timedelta(minutes=5))
    make_trace(us_project, "us-new", at=T0)
    make_trace(project, "eu-mid", at=T0 - timedelta(minutes=1))
    make_trace(other_project, "globex-secret", at=T0 + timedelta(minutes=1), name="globex-secret-name")

    response = client.get(LIST_URL)

    assert response.status_code == 200
    assert row_ids(response) == ["us-new", "eu-mid", "eu-old"]
    assert b"globex-secret" not in response.content
    assert [row.project for row in response.context["rows"]] == [us_project, project, project]


def test_the_list_shows_aggregates_of_each_trace(client, viewer, project):
    make_trace(
        project, "t1", name="chat",
        user_id="u-1", session_id="s-1",
        observations=[
            {"type": "AGENT", "name": "agent", "start": 0, "end": 10},
            {"type": "GENERATION", "model": "gpt-4o", "total_tokens": 100, "total_cost": Decimal("0.0012"),
             "start": 1, "end": 4},
            {"type": "GENERATION", "model": "claude-sonnet", "total_tokens": 50, "total_cost": Decimal("0.0003"),
             "start": 5, "end": 12, "status": "refused"},
        ],
    )

    row = client.get(LIST_URL).context["rows"][0]

    assert row.observation_count == 3
    assert row.total_tokens == 150
    assert row.total_cost == Decimal("0.0015")
    assert row.latency_ms == 12_000
    assert row.models == ["claude-sonnet", "gpt-4o"]
    assert row.status == "refused"


@pytest.fixture
def filter_traces(project, us_project):
    make_trace(project, "plain", at=T0, user_id="alice", session_id="s1", environment="production",
               observations=[{"model": "gpt-4o"}])
    make_trace(project, "broken", at=T0 - timedelta(hours=1), user_id="bob", session_id="s1",
               observations=[{"model": "gpt-4o"}, {"status": "error"}, {"status": "refused"}])
    make_trace(us_project, "refusal", at=T0 - timedelta(hours=2), user_id="alice", session_id="s2",
               environment="staging", observations=[{"model": "claude-sonnet", "status": "refused"}])
    make_trace(us_project, "empty", at=T0 - timedelta(days=2), user_id="carol")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"user_id": "alice"}, ["plain", "refusal"]),
        ({"session_id": "s1"}, ["plain", "broken"]),
        ({"status": "error"}, ["broken"]),
        ({"status": "refused"}, ["refusal"]),
        ({"status": "success"}, ["plain", "empty"]),
        ({"model": "gpt-4o"}, ["plain", "broken"]),
        ({"model": "claude-sonnet"}, ["refusal"]),
        ({"environment": "staging"}, ["refusal"]),
        ({"since": "2026-03-01T10:30", "until": "2026-03-01T11:30"}, ["broken"]),
        ({"since": "2026-02-28T00:00"}, ["plain", "broken", "refusal"]),
        ({"user_id": "alice", "status": "refused"}, ["refusal"]),
    ],
)
def test_the_list_filters(client, viewer, filter_traces, query, expected):
    response = client.get(LIST_URL, query)
    assert response.status_code == 200
    assert row_ids(response) == expected


def test_the_project_filter_narrows_to_one_project(client, viewer, filter_traces, us_project):
    response = client.get(LIST_URL, {"project": str(us_project.id)})
    assert row_ids(response) == ["refusal", "empty"]


def test_filtering_by_another_tenants_project_is_refused(client, viewer, other_project):
    make_trace(other_project, "globex-secret")
    response = client.get(LIST_URL, {"project": str(other_project.id)})
    assert response.status_code == 400
    assert response.context["rows"] == []
    assert b"globex-secret" not in response.content


@pytest.mark.parametrize(
    "query",
    [{"after": "not-a-cursor"}, {"before": DEEP_TOKEN}, {"since": "yesterday"}, {"status": "bogus"},
     {"since": "2026-03-02T00:00", "until": "2026-03-01T00:00"}],
)
def test_bad_filter_input_is_a_400_not_a_500(client, viewer, query):
    assert client.get(LIST_URL, query).status_code == 400


def test_pages_walk_every_trace_once_across_regions(client, viewer, organization, project, us_project, monkeypatch):
    monkeypatch.setattr("traces.admin.PAGE_SIZE", 3)
    second_eu = ProjectFactory(organization=organization, name="eu-two", region="eu")
    expected = []
    for i in range(8):
        at = T0 - timedelta(minutes=i // 2)  # traces share timestamps, across projects and regions
        for p, prefix in ((project, "eu"), (second_eu, "eu2"), (us_project, "us")):
            make_trace(p, f"{prefix}-{i}", at=at)
            expected.append(f"{prefix}-{i}")
        make_trace(project, f"eu-{i}-twin", at=at)  # same project, same timestamp: the id breaks the tie
        expected.append(f"eu-{i}-twin")

    seen, pages, response = [], [], client.get(LIST_URL)
    while True:
        pages.append(response)
        seen += row_ids(response)
        if not response.context["older_url"]:
            break
        response = client.get(LIST_URL + response.context["older_url"])

    assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen)) == 32
    timestamps = [row.trace.timestamp for page in pages for row in page.context["rows"]]
    assert timestamps == sorted(timestamps, reverse=True)

    back = client.get(LIST_URL + pages[2].context["newer_url"])
    assert row_ids(back) == row_ids(pages[1])
    assert pages[0].context["newer_url"] is None


def test_the_list_costs_a_bounded_number_of_queries(
    client, viewer, organization, project, us_project, django_assert_max_num_queries
):
    second_eu = ProjectFactory(organization=organization, name="eu-two", region="eu")
    for p, prefix in ((project, "eu"), (second_eu, "eu2"), (us_project, "us")):
        for i in range(40):
            make_trace(p, f"{prefix}-{i}", at=T0 - timedelta(seconds=i),
                       observations=[{"model": "gpt-4o", "total_tokens": 10}, {"type": "SPAN"}, {"status": "error"}])

    regions = [connections[region_database("eu")], connections[region_database("us")]]
    with django_assert_max_num_queries(4), CaptureQueriesContext(regions[0]) as eu, \
            CaptureQueriesContext(regions[1]) as us:
        response = client.get(LIST_URL, {"status": "error"})

    assert len(response.context["rows"]) == 50
    assert all(row.observation_count == 3 for row in response.context["rows"])
    # One page query and one grouped aggregate query per region, whatever the page size.
    assert len(eu.captured_queries) == 2 and len(us.captured_queries) == 2


def test_a_superuser_sees_every_tenants_traces(client, superuser, project, other_project):
    make_trace(project, "acme-trace")
    make_trace(other_project, "globex-trace", at=T0 - timedelta(minutes=1))
    client.force_login(superuser)
    assert row_ids(client.get(LIST_URL)) == ["acme-trace", "globex-trace"]


def test_the_index_links_to_the_trace_list(client, viewer):
    assert f'href="{LIST_URL}"'.encode() in client.get("/admin/").content


def test_the_trace_pages_need_a_console_login(client, project):
    make_trace(project, "t1")
    assert client.get(LIST_URL).status_code == 302
    assert client.get(detail_url(project, "t1")).status_code == 302


# --- detail -------------------------------------------------------------------------------------


@pytest.fixture
def agent_trace(project):
    trace = make_trace(project, "agent-run", name="support answer", user_id="u-7", metadata={"tier": "gold"},
                       input={"question": "refund?"})
    Observation.objects.for_project(project).bulk_create(
        [
            Observation(id="root", trace_id="agent-run", type="AGENT", name="agent", start_time=T0,
                        end_time=T0 + timedelta(seconds=10)),
            Observation(
                id="llm", trace_id="agent-run", parent_observation_id="root", type="GENERATION", name="plan",
                model="gpt-4o", start_time=T0 + timedelta(seconds=1), end_time=T0 + timedelta(seconds=4),
                completion_start_time=T0 + timedelta(seconds=1, milliseconds=250),
                input=[{"role": "system", "content": "You are helpful."},
                       {"role": "user", "content": [{"type": "text", "text": "Where is my <b>refund</b>?"}]}],
                output={"role": "assistant", "content": "Let me look that up."},
                tool_calls=[{"id": "call_1", "name": "lookup_order", "arguments": {"order": "A-17"}}],
                input_tokens=120, cached_input_tokens=30, cache_write_tokens=5, output_tokens=40,
                reasoning_tokens=12, total_tokens=207, total_cost=Decimal("0.0021"),
                metadata={"attempt": 2, "nested": {"k": "v"}},
            ),
            Observation(
                id="tool", trace_id="agent-run", parent_observation_id="root", type="TOOL", name="lookup_order",
                tool_name="lookup_order", tool_call_id="call_1", start_time=T0 + timedelta(seconds=4),
                end_time=T0 + timedelta(seconds=6), input={"order": "A-17"}, output={"status": "shipped"},
            ),
            Observation(
                id="db", trace_id="agent-run", parent_observation_id="tool", type="SPAN", name="sql",
                start_time=T0 + timedelta(seconds=4), end_time=T0 + timedelta(seconds=5), status="error",
                error_type="TimeoutError", error_message="statement timeout",
            ),
        ]
    )
    Score.objects.for_project(project).bulk_create(
        [
            Score(id="s1", trace_id="agent-run", name="helpfulness", value=0.8, source="ANNOTATION",
                  comment="good tone"),
            Score(id="s2", trace_id="agent-run", name="label", string_value="refund", data_type="CATEGORICAL"),
            Score(id="s3", trace_id="other-trace", name="not-mine", value=1),
        ]
    )
    return trace


def test_the_detail_shows_the_observation_tree_with_timing(client, viewer, project, agent_trace):
    response = client.get(detail_url(project, "agent-run"))

    assert response.status_code == 200
    tree = response.context["tree"]
    assert [(row["obs"].id, row["depth"]) for row in tree] == [("root", 0), ("llm", 1), ("tool", 1), ("db", 2)]
    llm = tree[1]
    assert (llm["bar_offset"], llm["bar_width"]) == ("10.00", "30.00")
    assert llm["ttft"] == "250 ms" and llm["latency"] == "3.00 s"
    assert llm["tokens"] == [("input", 120), ("cached", 30), ("cache write", 5), ("output", 40),
                             ("reasoning", 12), ("total", 207)]
    content = response.content.decode()
    # The bar is placed by a rule under the page's CSP nonce (style="" attributes are refused).
    assert ".lg-row-2 .lg-bar { margin-left: 10.00%; width: 30.00%; }" in content
    assert ".lg-row-4 > .lg-indent { padding-left: 36px; }" in content
    assert 'class="lg-observation lg-row-2"' in content and "style=" not in content
    assert response.context["summary"]["status"] == "error"
    assert "TimeoutError" in content and "statement timeout" in content


def test_the_detail_renders_chat_messages_and_tool_calls_readably(client, viewer, project, agent_trace):
    response = client.get(detail_url(project, "agent-run"))
    content = response.content.decode()

    llm = response.context["tree"][1]
    assert [m["role"] for m in llm["input"]["messages"]] == ["system", "user"]
    assert 'class="lg-msg lg-msg-system"' in content and 'class="lg-msg lg-msg-user"' in content
    assert "You are helpful." in content
    # Message content is text, escaped, never markup.
    assert "Where is my &lt;b&gt;refund&lt;/b&gt;?" in content and "<b>refund</b>" not in content
    assert llm["output"]["messages"][0]["role"] == "assistant"
    assert llm["tool_calls"] == [{"id": "call_1", "name": "lookup_order", "arguments": '{\n  "order": "A-17"\n}'}]
    tool = response.context["tree"][2]
    assert tool["is_tool"] and tool["input"]["kind"] == "json" and '"shipped"' in tool["output"]["text"]
    assert "Arguments" in content and "Result" in content
    assert "&quot;attempt&quot;: 2" in content  # metadata as pretty JSON
    assert response.context["trace_metadata"] == '{\n  "tier": "gold"\n}'


def test_the_detail_lists_the_traces_scores(client, viewer, project, agent_trace):
    response = client.get(detail_url(project, "agent-run"))
    scores = [(s["score"].name, s["display_value"], s["score"].source, s["score"].comment)
              for s in response.context["scores"]]
    assert scores == [("helpfulness", "0.8", "ANNOTATION", "good tone"), ("label", "refund", "API", "")]
    assert b"not-mine" not in response.content


def test_openai_style_tool_calls_inside_messages_are_readable(client, viewer, project):
    make_trace(project, "t-openai", observations=[{
        "type": "GENERATION",
        "input": [
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "c9", "type": "function",
                             "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
            {"role": "tool", "tool_call_id": "c9", "content": "4°C"},
        ],
    }])
    response = client.get(detail_url(project, "t-openai"))
    messages = response.context["tree"][0]["input"]["messages"]
    assert messages[0]["tool_calls"] == [{"id": "c9", "name": "get_weather", "arguments": '{\n  "city": "Oslo"\n}'}]
    assert messages[1]["tool_call_id"] == "c9"
    assert "get_weather" in response.content.decode()


def test_another_tenants_trace_answers_404(client, viewer, project, other_project):
    make_trace(other_project, "globex-trace")
    assert client.get(detail_url(other_project, "globex-trace")).status_code == 404
    # Nor through one's own project id: the trace is looked up inside that project only.
    assert client.get(detail_url(project, "globex-trace")).status_code == 404
    assert client.get(detail_url(project, "missing")).status_code == 404
