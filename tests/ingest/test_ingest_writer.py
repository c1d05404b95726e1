"""The shared writer: merge rules, derived fields, placeholders, regions, failure handling."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.db import OperationalError, connections

from ingest import rollups, writer
from ingest.stages import price as costs
from ingest.writer import InvalidRecord, StorageUnavailable, write_records
from scores.models import Score
from traces.models import Observation, Trace

T0 = datetime(2026, 11, 26, 19, 42, 27, tzinfo=dt_timezone.utc)


def write(project, traces=(), observations=(), scores=()):
    write_records(project=project, traces=list(traces), observations=list(observations), scores=list(scores))


def trace_of(project, trace_id):
    return Trace.objects.for_project(project).get(id=trace_id)


def obs_of(project, obs_id):
    return Observation.objects.for_project(project).get(id=obs_id)


@pytest.fixture
def no_catalog(monkeypatch):
    monkeypatch.setattr(costs, "_pricing", lambda: None)


@pytest.fixture
def fake_catalog(monkeypatch):
    """A catalog that knows one model: $1 per input token, $2 per output token."""
    calls = []

    class Pricing:
        @staticmethod
        def compute_costs(items, *, project_id):
            calls.append(items)
            out = []
            for model, usage, _at in items:
                if model != "priced-model":
                    out.append(None)
                    continue
                tokens_in, tokens_out = usage["input"] or 0, usage["output"] or 0
                out.append(
                    {
                        "input_cost": Decimal(tokens_in),
                        "output_cost": Decimal(2 * tokens_out),
                        "total_cost": Decimal(tokens_in + 2 * tokens_out),
                        "details": {"input": tokens_in, "output": 2 * tokens_out},
                    }
                )
            return out

    monkeypatch.setattr(costs, "_pricing", lambda: Pricing)
    return calls


def test_it_stores_every_trace_field(project):
    write(
        project,
        traces=[
            {
                "id": "t1",
                "name": "my-trace",
                "timestamp": T0,
                "user_id": "user-42",
                "session_id": "sess-7",
                "environment": "staging",
                "release": "rel-1",
                "version": "v9",
                "tags": ["b", "a", "a"],
                "metadata": {"tenant": "acme"},
                "input": {"q": "hi"},
                "output": "done",
                "public": True,
            }
        ],
    )
    trace = trace_of(project, "t1")
    assert (trace.name, trace.timestamp, trace.user_id, trace.session_id) == (
        "my-trace",
        T0,
        "user-42",
        "sess-7",
    )
    assert (trace.environment, trace.release, trace.version, trace.public) == ("staging", "rel-1", "v9", True)
    assert trace.tags == ["a", "b"]
    assert trace.metadata == {"tenant": "acme"}
    assert trace.input == {"q": "hi"}
    assert trace.output == "done"


def test_update_after_create_merges_and_absent_keys_never_clear(project):
    write(
        project,
        traces=[
            {
                "id": "t1",
                "name": "first",
                "timestamp": T0,
                "user_id": "u1",
                "metadata": {"a": {"x": 1, "y": 2}, "keep": True},
                "tags": ["t1"],
                "environment": "staging",
            }
        ],
    )
    write(
        project,
        traces=[
            {
                "id": "t1",
                "output": {"a": "done"},
                "metadata": {"a": {"y": 3, "z": 4}},
                "tags": ["t2", "t1"],
                "timestamp": T0 + timedelta(seconds=5),
                "environment": "production",
                "user_id": None,
            }
        ],
    )
    trace = trace_of(project, "t1")
    assert trace.name == "first"
    assert trace.user_id == "u1"
    assert trace.output == {"a": "done"}
    assert trace.metadata == {"a": {"x": 1, "y": 3, "z": 4}, "keep": True}
    assert trace.tags == ["t1", "t2"]
    assert trace.timestamp == T0
    assert trace.environment == "staging"


def test_create_after_update_keeps_the_update_and_takes_the_earlier_start(project, no_catalog):
    write(
        project,
        observations=[
            {
                "id": "o1",
                "trace_id": "t1",
                "output": "late",
                "end_time": T0 + timedelta(seconds=9),
                "start_time": T0 + timedelta(seconds=9),
            }
        ],
    )
    write(
        project,
        observations=[
            {
                "id": "o1",
                "trace_id": "t1",
                "type": "GENERATION",
                "name": "llm",
                "start_time": T0,
                "input": "early",
                "environment": "staging",
            }
        ],
    )
    obs = obs_of(project, "o1")
    assert (obs.type, obs.name, obs.input, obs.output) == ("GENERATION", "llm", "early", "late")
    assert obs.start_time == T0
    assert obs.end_time == T0 + timedelta(seconds=9)
    assert obs.environment == "staging"


def test_replaying_the_same_records_is_idempotent(project, no_catalog):
    batch = dict(
        traces=[{"id": "t1", "name": "n", "tags": ["x"], "metadata": {"m": [1, 2]}, "timestamp": T0}],
        observations=[
            {"id": "o1", "trace_id": "t1", "start_time": T0, "metadata": {"k": "v"}, "input_tokens": 3}
        ],
        scores=[{"id": "s1", "trace_id": "t1", "name": "quality", "value": 0.5}],
    )
    write(project, **batch)
    first = (
        Trace.objects.for_project(project).values().get(),
        Observation.objects.for_project(project).values().get(),
        Score.objects.for_project(project).values().get(),
    )
    write(project, **batch)
    second = (
        Trace.objects.for_project(project).values().get(),
        Observation.objects.for_project(project).values().get(),
        Score.objects.for_project(project).values().get(),
    )
    for a, b in zip(first, second):
        a.pop("updated_at"), b.pop("updated_at")
        assert a == b


def test_same_id_twice_in_one_batch_is_merged_in_order(project, no_catalog):
    write(
        project,
        observations=[
            {"id": "o1", "trace_id": "t1", "name": "a", "start_time": T0, "metadata": {"a": 1}},
            {"id": "o1", "trace_id": "t1", "name": "b", "metadata": {"b": 2}, "output": "x"},
            {"id": "o1", "trace_id": "t1", "output": "y", "level": "ERROR", "status_message": "boom"},
        ],
    )
    obs = obs_of(project, "o1")
    assert (obs.name, obs.output, obs.level, obs.status_message) == ("b", "y", "ERROR", "boom")
    assert obs.metadata == {"a": 1, "b": 2}
    assert obs.status == "error"


def test_an_observation_creates_a_placeholder_trace_that_a_later_trace_create_fills(project, no_catalog):
    write(
        project,
        observations=[
            {"id": "o1", "trace_id": "t1", "start_time": T0 + timedelta(seconds=1), "environment": "staging"}
        ],
    )
    placeholder = trace_of(project, "t1")
    assert placeholder.timestamp == T0 + timedelta(seconds=1)
    assert placeholder.environment == "staging"
    write(project, traces=[{"id": "t1", "name": "real", "timestamp": T0, "user_id": "u"}])
    trace = trace_of(project, "t1")
    assert (trace.name, trace.user_id, trace.timestamp) == ("real", "u", T0)


def test_a_placeholder_never_changes_an_existing_trace(project, no_catalog):
    write(
        project,
        traces=[{"id": "t1", "name": "real", "timestamp": T0 + timedelta(seconds=5), "environment": "prod"}],
    )
    write(project, observations=[{"id": "o1", "trace_id": "t1", "start_time": T0, "environment": "staging"}])
    trace = trace_of(project, "t1")
    assert (trace.timestamp, trace.environment) == (T0 + timedelta(seconds=5), "prod")


def test_it_derives_total_tokens_and_keeps_a_sent_total(project, no_catalog):
    write(
        project,
        observations=[
            {
                "id": "o1",
                "trace_id": "t",
                "input_tokens": 10,
                "cached_input_tokens": 3,
                "output_tokens": 5,
                "reasoning_tokens": 2,
            },
            {"id": "o2", "trace_id": "t", "input_tokens": 10, "output_tokens": 5, "total_tokens": 99},
        ],
    )
    assert obs_of(project, "o1").total_tokens == 20
    assert obs_of(project, "o2").total_tokens == 99
    write(project, observations=[{"id": "o1", "trace_id": "t", "output_tokens": 15}])
    assert obs_of(project, "o1").total_tokens == 30


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({}, "success"),
        ({"level": "ERROR"}, "error"),
        ({"error_type": "ValueError"}, "error"),
        ({"finish_reason": "content_filter"}, "refused"),
        ({"finish_reason": "refusal"}, "refused"),
        ({"finish_reason": "stop"}, "success"),
        ({"level": "ERROR", "status": "refused"}, "refused"),
    ],
)
def test_it_derives_status(project, no_catalog, fields, status):
    write(project, observations=[{"id": "o1", "trace_id": "t", **fields}])
    assert obs_of(project, "o1").status == status


def test_a_later_error_level_turns_a_stored_observation_into_an_error(project, no_catalog):
    write(project, observations=[{"id": "o1", "trace_id": "t", "name": "call"}])
    assert obs_of(project, "o1").status == "success"
    write(
        project,
        observations=[{"id": "o1", "trace_id": "t", "level": "ERROR", "status_message": "rate limited"}],
    )
    obs = obs_of(project, "o1")
    assert (obs.status, obs.status_message, obs.name) == ("error", "rate limited", "call")


def test_client_cost_wins_over_the_catalog(project, fake_catalog):
    write(
        project,
        observations=[
            {
                "id": "o1",
                "trace_id": "t",
                "model": "priced-model",
                "input_tokens": 10,
                "output_tokens": 5,
                "cost_details": {"input": 0.01},
            }
        ],
    )
    obs = obs_of(project, "o1")
    assert obs.cost_source == "client"
    assert obs.input_cost == Decimal("0.01")
    assert obs.total_cost == Decimal("0.01")
    assert obs.cost_details == {"input": 0.01}


def test_catalog_cost_when_the_client_sent_none(project, fake_catalog):
    write(
        project,
        observations=[
            {"id": "o1", "trace_id": "t", "model": "priced-model", "input_tokens": 10, "output_tokens": 5},
            {"id": "o2", "trace_id": "t", "model": "unknown-model", "input_tokens": 10, "output_tokens": 5},
            {"id": "o3", "trace_id": "t", "name": "no model"},
        ],
    )
    priced = obs_of(project, "o1")
    assert (priced.cost_source, priced.input_cost, priced.output_cost, priced.total_cost) == (
        "catalog",
        Decimal(10),
        Decimal(10),
        Decimal(20),
    )
    assert priced.cost_details["total"] == 20
    for unpriced in (obs_of(project, "o2"), obs_of(project, "o3")):
        assert (unpriced.cost_source, unpriced.total_cost) == ("none", None)
    assert len(fake_catalog) == 1  # one catalog call for the whole batch


def test_usage_sent_after_the_model_is_priced_on_merge(project, fake_catalog):
    write(
        project, observations=[{"id": "o1", "trace_id": "t", "model": "priced-model", "type": "GENERATION"}]
    )
    assert obs_of(project, "o1").cost_source == "none"
    write(project, observations=[{"id": "o1", "trace_id": "t", "input_tokens": 3, "output_tokens": 4}])
    obs = obs_of(project, "o1")
    assert (obs.cost_source, obs.total_cost, obs.total_tokens) == ("catalog", Decimal(11), 7)


def test_a_client_cost_is_not_replaced_by_later_usage(project, fake_catalog):
    write(project, observations=[{"id": "o1", "trace_id": "t", "model": "priced-model", "total_cost": 0.5}])
    write(project, observations=[{"id": "o1", "trace_id": "t", "input_tokens": 3, "output_tokens": 4}])
    obs = obs_of(project, "o1")
    assert (obs.cost_source, obs.total_cost) == ("client", Decimal("0.5"))


def test_end_before_start_is_clamped(project, no_catalog):
    write(
        project,
        observations=[{"id": "o1", "trace_id": "t", "start_time": T0, "end_time": T0 - timedelta(seconds=1)}],
    )
    assert obs_of(project, "o1").end_time == T0


def test_nul_characters_are_stored_instead_of_failing_the_batch(project, no_catalog):
    write(project, traces=[{"id": "t1", "name": "a\x00b", "input": {"text": "x\x00y"}}])
    trace = trace_of(project, "t1")
    assert trace.name == "a\ufffdb"
    assert trace.input == {"text": "x\ufffdy"}


def test_overlong_text_is_truncated_and_overlong_ids_are_refused(project):
    write(project, traces=[{"id": "t1", "name": "n" * 5000}])
    assert len(trace_of(project, "t1").name) == 1000
    with pytest.raises(InvalidRecord):
        write(project, traces=[{"id": "x" * 201}])
    with pytest.raises(InvalidRecord):
        write(project, traces=[{"id": "t2", "not_a_field": 1}])


def test_scores_merge_and_keep_their_first_timestamp(project):
    write(
        project,
        scores=[
            {
                "id": "s1",
                "trace_id": "t1",
                "name": "quality",
                "value": 0.5,
                "timestamp": T0,
                "metadata": {"a": 1},
            }
        ],
    )
    write(
        project,
        scores=[
            {
                "id": "s1",
                "name": "quality",
                "value": 0.9,
                "comment": "better",
                "timestamp": T0 + timedelta(hours=1),
                "metadata": {"b": 2},
            }
        ],
    )
    score = Score.objects.for_project(project).get(id="s1")
    assert (score.value, score.comment, score.timestamp, score.trace_id) == (0.9, "better", T0, "t1")
    assert score.metadata == {"a": 1, "b": 2}


def test_eu_rows_land_only_in_the_eu_database_and_never_in_another_project(
    project, far_project, no_catalog
):
    assert (project.region, far_project.region) == ("eu", "us")
    write(
        project,
        traces=[{"id": "shared-id", "name": "eu"}],
        observations=[{"id": "o1", "trace_id": "shared-id"}],
        scores=[{"id": "s1", "name": "q", "value": 1}],
    )
    write(far_project, traces=[{"id": "shared-id", "name": "us"}])
    rows = {}
    for alias in ("region_eu", "region_us"):
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT project_id::text, name FROM traces_trace WHERE id = 'shared-id'")
            rows[alias] = cursor.fetchall()
            cursor.execute("SELECT count(*) FROM traces_observation")
            rows[alias + "-obs"] = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM feedback_score")
            rows[alias + "-scores"] = cursor.fetchone()[0]
    assert rows["region_eu"] == [(str(project.id), "eu")]
    assert rows["region_us"] == [(str(far_project.id), "us")]
    assert (rows["region_eu-obs"], rows["region_us-obs"]) == (1, 0)
    assert (rows["region_eu-scores"], rows["region_us-scores"]) == (1, 0)


def test_a_database_that_is_down_raises_storage_unavailable(project, monkeypatch):
    class DeadConnection:
        def cursor(self):
            raise OperationalError("connection refused")

    monkeypatch.setattr(writer, "data_connection", lambda project: DeadConnection())
    with pytest.raises(StorageUnavailable):
        write(project, traces=[{"id": "t1"}])


def test_query_count_does_not_grow_with_the_batch(project, fake_catalog, queries_everywhere):
    def batch(n, offset):
        return dict(
            traces=[{"id": f"t{offset + i}", "name": "n"} for i in range(n)],
            observations=[
                {
                    "id": f"o{offset + i}",
                    "trace_id": f"t{offset + i}",
                    "model": "priced-model",
                    "input_tokens": 1,
                    "output_tokens": 1,
                }
                for i in range(n)
            ],
            scores=[{"id": f"s{offset + i}", "name": "q", "value": 1} for i in range(n)],
        )

    write(project, **batch(50, 0))  # half of the next batch already exists: both paths run
    with queries_everywhere() as small:
        write(project, **batch(2, 49))
    with queries_everywhere() as large:
        write(project, **batch(100, 0))
    # Counted in every database (the writes go to the region's): savepoint + (insert, update) x 3
    # tables + one fix statement + release, whatever the batch size; plus the monitoring rollups'
    # constant number of statements (`ingest.rollups.MAX_STATEMENTS`, and `MAX_SCORE_STATEMENTS` since
    # the batch holds scores too).
    assert len(large) <= len(small) <= 10 + rollups.MAX_STATEMENTS + rollups.MAX_SCORE_STATEMENTS
    assert Observation.objects.for_project(project).count() == 100


@pytest.fixture
def real_catalog():
    from pricing import pricing
    from pricing.models import ModelPrice, PriceSource

    pricing.reset_local_cache()
    ModelPrice.objects.create(
        provider="openai",
        model_name="gpt-4o-mini",
        match_pattern=r"^(openai/)?gpt-4o-mini$",
        effective_from=T0 - timedelta(days=30),
        input_price=Decimal("0.15"),
        cached_input_price=Decimal("0.075"),
        output_price=Decimal("0.60"),
        source=PriceSource.CATALOG,
    )
    yield
    pricing.reset_local_cache()


def test_the_billing_catalog_prices_each_token_kind(project, real_catalog):
    write(
        project,
        observations=[
            {
                "id": "o1",
                "trace_id": "t",
                "model": "gpt-4o-mini",
                "start_time": T0,
                "input_tokens": 1_000_000,
                "cached_input_tokens": 1_000_000,
                "output_tokens": 1_000_000,
            }
        ],
    )
    obs = obs_of(project, "o1")
    assert obs.cost_source == "catalog"
    assert obs.input_cost == Decimal("0.225")  # 0.15 fresh + 0.075 cached
    assert obs.output_cost == Decimal("0.6")
    assert obs.total_cost == Decimal("0.825")
    assert obs.cost_details == {"input": 0.15, "cached_input": 0.075, "output": 0.6, "total": 0.825}


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_concurrent_writers_to_the_same_rows_lose_nothing(project, no_catalog):
    """Parallel requests for one trace (the common OTLP/SDK case): no error, no lost field."""
    import threading

    from django.db import connections as conns

    errors = []

    def work(n):
        try:
            for round_ in range(5):
                ids = [f"o{i}" for i in range(20)]
                if n % 2:
                    ids.reverse()
                write(
                    project,
                    traces=[{"id": "t-shared", "tags": [f"w{n}"], "metadata": {f"w{n}": round_}}],
                    observations=[
                        {"id": i, "trace_id": "t-shared", "metadata": {f"w{n}": round_}} for i in ids
                    ],
                )
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            conns.close_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    trace = trace_of(project, "t-shared")
    assert trace.tags == ["w0", "w1", "w2", "w3"]
    assert trace.metadata == {"w0": 4, "w1": 4, "w2": 4, "w3": 4}
    for observation in Observation.objects.for_project(project):
        assert observation.metadata == {"w0": 4, "w1": 4, "w2": 4, "w3": 4}


def test_a_later_client_cost_replaces_the_earlier_one_as_a_whole(project, fake_catalog):
    write(
        project,
        observations=[
            {"id": "o1", "trace_id": "t", "model": "priced-model", "input_tokens": 1, "output_tokens": 1}
        ],
    )
    assert obs_of(project, "o1").output_cost == Decimal(2)
    write(project, observations=[{"id": "o1", "trace_id": "t", "cost_details": {"total": 0.5}}])
    obs = obs_of(project, "o1")
    assert (obs.cost_source, obs.input_cost, obs.output_cost, obs.total_cost, obs.cost_details) == (
        "client",
        None,
        None,
        Decimal("0.5"),
        {"total": 0.5},
    )
    write(
        project,
        observations=[
            {"id": "o2", "trace_id": "t", "input_cost": 1, "output_cost": 2},
            {"id": "o2", "trace_id": "t", "total_cost": 7},
        ],
    )
    obs = obs_of(project, "o2")
    assert (obs.input_cost, obs.output_cost, obs.total_cost) == (None, None, Decimal(7))


def test_a_scores_trace_is_set_once(project):
    write(project, scores=[{"id": "s1", "session_id": "sess", "name": "q", "value": 1}])
    write(project, scores=[{"id": "s1", "trace_id": "t1", "name": "q", "value": 1}])
    write(project, scores=[{"id": "s1", "trace_id": "t2", "name": "q", "value": 1}])
    assert Score.objects.for_project(project).get(id="s1").trace_id == "t1"


def test_out_of_range_numbers_are_refused_as_invalid_records(project):
    for bad in ({"input_tokens": 2**63}, {"total_cost": Decimal("1e12")}, {"prompt_version": 2**31},
                {"output_tokens": "12"}):
        with pytest.raises(InvalidRecord):
            write(project, observations=[{"id": "o1", "trace_id": "t", **bad}])
    assert not Observation.objects.for_project(project).exists()


def test_a_score_update_that_arrives_first_is_stored(project):
    write(project, scores=[{"id": "s1", "trace_id": "t", "comment": "early"}])
    write(project, scores=[{"id": "s1", "trace_id": "t", "name": "quality", "value": 0.5}])
    score = Score.objects.for_project(project).get(id="s1")
    assert (score.name, score.value, score.comment) == ("quality", 0.5, "early")


def test_integral_float_token_counts_are_stored_as_integers(project, no_catalog):
    write(project, observations=[{"id": "o1", "trace_id": "t", "input_tokens": 12.0, "output_tokens": 3}])
    assert (obs_of(project, "o1").input_tokens, obs_of(project, "o1").total_tokens) == (12, 15)
    with pytest.raises(InvalidRecord):
        write(project, observations=[{"id": "o2", "trace_id": "t", "input_tokens": 1.5}])


def test_two_projects_in_one_region_never_merge_rows_with_the_same_id(project, organization, no_catalog):
    from tests.factories import ProjectFactory

    neighbour = ProjectFactory(organization=organization, name="neighbour", region="eu")
    batch = dict(traces=[{"id": "t1", "name": "mine", "tags": ["a"]}],
                 observations=[{"id": "o1", "trace_id": "t1", "name": "mine"}],
                 scores=[{"id": "s1", "trace_id": "t1", "name": "mine", "value": 1}])
    write(project, **batch)
    write(neighbour, traces=[{"id": "t1", "name": "theirs", "tags": ["b"]}],
          observations=[{"id": "o1", "trace_id": "t1", "name": "theirs"}],
          scores=[{"id": "s1", "trace_id": "t1", "name": "theirs", "value": 2}])
    write(neighbour, traces=[{"id": "t1", "metadata": {"x": 1}}])
    mine = trace_of(project, "t1")
    assert (mine.name, mine.tags, mine.metadata) == ("mine", ["a"], {})
    assert obs_of(project, "o1").name == "mine"
    assert Score.objects.for_project(project).get(id="s1").value == 1
    assert trace_of(neighbour, "t1").metadata == {"x": 1}


def test_first_write_fields_keep_their_first_value_when_one_batch_disagrees(project, no_catalog):
    """Records with the same id are collapsed in memory before any SQL runs, so the first-write rules
    must hold there too, not only against a stored row (the SDKs batch a create with its updates)."""
    write(
        project,
        traces=[
            {"id": "t1", "environment": "default"},  # "default" is not a first value: the next one is
            {"id": "t1", "environment": "staging", "name": "first"},
            {"id": "t1", "environment": "prod", "name": "second"},
        ],
        observations=[
            {"id": "o1", "trace_id": "t1", "start_time": T0, "environment": "staging", "name": "first"},
            {"id": "o1", "trace_id": "t2", "environment": "prod", "name": "second"},
        ],
        scores=[
            {"id": "s1", "trace_id": "t1", "name": "q", "value": 1, "timestamp": T0, "environment": "staging"},
            {
                "id": "s1",
                "trace_id": "t2",
                "name": "q",
                "value": 2,
                "timestamp": T0 + timedelta(hours=1),
                "environment": "prod",
            },
        ],
    )
    trace, obs = trace_of(project, "t1"), obs_of(project, "o1")
    score = Score.objects.for_project(project).get(id="s1")
    kept = {
        "trace.environment": trace.environment,
        "observation.trace_id": obs.trace_id,
        "observation.environment": obs.environment,
        "score.trace_id": score.trace_id,
        "score.timestamp": score.timestamp,
        "score.environment": score.environment,
    }
    assert kept == {
        "trace.environment": "staging",
        "observation.trace_id": "t1",
        "observation.environment": "staging",
        "score.trace_id": "t1",
        "score.timestamp": T0,
        "score.environment": "staging",
    }
    # Fields without a first-write rule take the last value sent.
    assert (trace.name, obs.name, score.value) == ("second", "second", 2)
    # The observation never belonged to t2, so no placeholder trace is made for it.
    assert not Trace.objects.for_project(project).filter(id="t2").exists()
