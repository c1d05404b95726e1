"""The OTLP mapper probes only the candidate keys a span carries (`_Families.only`, `langfuse`,
learned once per key list) and reassembles flattened lists from a layout learned once per key list
(`messages.pop_indexed`). Each shortcut must answer what the rule it stands for answers: probing every
candidate of every convention, and parsing every key of every span."""

import random
from datetime import UTC, datetime

import orjson
import pytest

from bench import bench_ingest
from ingest.adapters.otel import mapping, usage
from ingest.adapters.otel import messages as msg
from ingest.adapters.otel.decode import Scope, SpanData, SpanEvent, decode_protobuf
from ingest.adapters.otel.testing import make_request
from ingest.rules.conventions import USAGE_ATTRIBUTE_NAMES

# Every candidate list the mapper narrows with `only`.
CANDIDATES = [
    mapping.MODEL_KEYS,
    mapping.RESPONSE_MODEL_KEYS,
    mapping.MODEL_PARAMETER_KEYS,
    mapping._MODEL_FIELD_KEYS,
    mapping._PROMPT_KEYS,
    mapping._FINISH_REASON_KEYS,
    mapping._COMPLETION_START_KEYS,
    mapping.USER_ID_KEYS,
    mapping.SESSION_ID_KEYS,
    mapping.TAGS_KEYS,
    USAGE_ATTRIBUTE_NAMES,
    usage.USAGE_KEYS,
    usage.COST_KEYS,
]

# Keys the mapper reads beside the candidates, so the spans below exercise every field around them.
OTHER_KEYS = [
    "langfuse.internal.as_root", "langfuse.internal.is_app_root", "langfuse.release", "langfuse.version",
    "langfuse.environment", "langfuse.trace.name", "langfuse.trace.public", "langfuse.public",
    "langfuse.trace.metadata", "langfuse.trace.metadata.k", "langfuse.trace.input", "langfuse.trace.output",
    "langfuse.observation.type", "langfuse.observation.metadata", "langfuse.metadata.k",
    "langfuse.observation.input", "langfuse.observation.output", "langfuse.observation.status_message",
    "langfuse.observation.level", "langfuse.observation.prompt.version", "langfuse.prompt.version",
    "langfuse.experiment.id", "langfuse.experiment.name", "langfuse.experiment.item.root_observation_id",
    "langfuse.experiment.metadata.k", "openinference.span.kind", "gen_ai.operation.name", "error.type",
    "lookglass.status", "prompt.id", "metadata", "input.value", "output.value", "gen_ai.tool.name",
    "gen_ai.tool.call.id", "llm.token_count.prompt_details.audio", "llm.cost.prompt", "llm.cost.total",
    "llm.cost.completion_details.reasoning", "gen_ai.request.temperature", "deployment.environment.name",
    "llm.input_messages.0.message.role", "llm.input_messages.0.message.content",
    "llm.output_messages.0.message.role", "llm.output_messages.0.message.content",
    # Spelled out, not taken from the lists above: a key left out of a gate's list must still be sent.
    "gen_ai.prompt.name", "langfuse.prompt.name", "langfuse.observation.prompt.name",
    "llm.prompt_template.template", "llm.prompt_template.variables", "llm.prompt_template.version",
    "langfuse.observation.usage_details", "langfuse.observation.cost_details", "gen_ai.usage.cost",
    "langfuse.observation.completion_start_time", "gen_ai.response.time_to_first_chunk",
    "ai.response.msToFirstChunk", "gen_ai.usage.input_tokens", "llm.token_count.prompt", "llm.model_name",
    "gen_ai.request.model", "gen_ai.response.model", "llm.invocation_parameters", "llm.finish_reason",
    "gen_ai.response.finish_reasons", "user.id", "session.id", "tag.tags", "langfuse.trace.tags",
]
ALL_KEYS = sorted({key for keys in CANDIDATES for key in keys} | set(OTHER_KEYS))
VALUES = [
    "", "x", "0", "12", 3, 7, 0, 2.5, True, False, "true", '{"a": 1}', '["stop"]', '{"model": "m"}',
    ["stop"], ["content_filter", "stop"], "content_filter", "error", "ERROR", "success", "v2", "2",
    "2026-12-01T00:00:00Z", '{"input": 5, "total": 9}', "chat", "LLM", "TOOL", "generation", "span", "production", -1, 10**30,
]


class _EveryCandidate(mapping._Families):
    """The rule the narrowing stands for: every candidate of every convention probed on every span."""

    __slots__ = ()

    def __init__(self, attrs):
        super().__init__(attrs)
        self.langfuse = True
        self.only = _Every()


class _Every(dict):
    def __missing__(self, candidates):
        return tuple(candidates)


def _span(rng: random.Random, index: int) -> SpanData:
    attributes = {key: rng.choice(VALUES) for key in rng.sample(ALL_KEYS, rng.randint(0, 24))}
    events = []
    if rng.random() < 0.2:
        events.append(SpanEvent(name="first token stream event", time_unix_nano=1_764_590_400_500_000_000,
                                attributes={}))
    return SpanData(
        trace_id=f"{index // 3:032x}", span_id=f"{index + 1:016x}", parent_span_id="" if index % 3 == 0 else
        f"{index:016x}", name=f"span {index}", kind=1, start_time_unix_nano=1_764_590_400_000_000_000,
        end_time_unix_nano=1_764_590_401_000_000_000, attributes=attributes, events=events, links=[],
        status_code=rng.choice([0, 1, 2]), status_message=rng.choice(["", "boom"]),
        resource={"service.name": "s"} if rng.random() < 0.5 else {"deployment.environment": "staging"},
        scope=Scope(name=rng.choice(["x", "langfuse-sdk"]), version=rng.choice(["", "5.1.0", "3.2"])),
    )


def _bench_spans() -> list[SpanData]:
    spans = []
    for profile in ("openinference", "genai"):
        turns = bench_ingest._turns(random.Random(3), 4, datetime(2026, 12, 1, tzinfo=UTC))
        build = bench_ingest.openinference_spans if profile == "openinference" else bench_ingest.genai_spans
        request = make_request([span for turn in turns for span in build(turn)])
        spans += decode_protobuf(request.SerializeToString()).spans
    return spans


def _mapped(spans) -> bytes:
    batch = mapping.map_spans(spans, received_at=datetime(2026, 12, 1, 13, tzinfo=UTC))
    return orjson.dumps(
        [batch.traces, batch.observations, batch.scores, batch.rejected, batch.experiments],
        default=repr, option=orjson.OPT_NON_STR_KEYS,
    )


def test_the_present_candidates_are_what_probing_every_candidate_finds():
    rng = random.Random(7)
    for _ in range(300):
        attrs = {key: 1 for key in rng.sample(ALL_KEYS, rng.randint(0, 40))}
        if rng.random() < 0.3:
            mapping._FAMILIES_OF.clear()
        for families in (mapping._families_of(attrs), mapping._families_of(attrs), mapping._Families(attrs)):
            assert families.langfuse == any(key.startswith("langfuse.") for key in attrs)
            for candidates in CANDIDATES:
                assert families.only[candidates] == tuple(key for key in candidates if key in attrs)


def test_narrowed_probes_map_every_span_as_probing_every_candidate(monkeypatch):
    """Random spans over every candidate key and the keys around them, and the bench's own spans."""
    rng = random.Random(11)
    corpora = [[_span(rng, index) for index in range(start, start + 30)] for start in range(0, 1800, 30)]
    # Every key alone, with every value: a key missing from a gate's list shows on its own.
    alone = [_span(rng, index) for index in range(len(ALL_KEYS) * len(VALUES))]
    for span, (key, value) in zip(alone, [(key, value) for key in ALL_KEYS for value in VALUES], strict=True):
        span.attributes = {key: value}
    corpora += [alone[start:start + 30] for start in range(0, len(alone), 30)]
    corpora.append(_bench_spans())
    narrowed = [_mapped(spans) for spans in corpora]
    assert all(isinstance(value, tuple) and not value for value in vars_of(mapping._NO_EVENTS))
    monkeypatch.setattr(mapping, "_families_of", _EveryCandidate)
    assert [_mapped(spans) for spans in corpora] == narrowed


def vars_of(events) -> list:
    return [events.exceptions, events.input_messages, events.choices, events.evaluations, events.other]


def test_the_bounded_families_cache_starts_over_and_stays_right():
    mapping._FAMILIES_OF.clear()
    for index in range(1100):
        attrs = {f"k{index}": 1, "user.id": "u"}
        assert mapping._families_of(attrs).only[mapping.USER_ID_KEYS] == ("user.id",)
    assert len(mapping._FAMILIES_OF) <= 1024
    many = {f"k{index}": 1 for index in range(200)}
    assert mapping._families_of(many).keys == {}
    assert tuple(many) not in mapping._FAMILIES_OF  # long key lists are not kept
    long_keys = {"user.id": "u", "x" * 9000: 1}
    assert mapping._families_of(long_keys).only[mapping.USER_ID_KEYS] == ("user.id",)
    assert tuple(long_keys) not in mapping._FAMILIES_OF  # nor long keys


def _pop_indexed_by_parsing(attrs: dict, prefix: str) -> list[dict]:
    """What `pop_indexed` answers, by its definition: every key parsed, on every call."""
    groups: dict[int, dict] = {}
    for key in [k for k in attrs if k.startswith(prefix)]:
        head, sep, rest = key[len(prefix):].partition(".")
        if not sep or not head.isdigit() or int(head) > msg.MAX_INDEX:
            continue
        groups.setdefault(int(head), {})[rest] = attrs.pop(key)
    return [groups[index] for index in sorted(groups)]


INDEXED_KEYS = [
    "p.0.role", "p.0.content", "p.1.role", "p.00.role", "p.3.content", "p.10.role", "p.2", "p.x.role",
    "p.255.a", "p.256.a", "p.10000.a", "p.10001.a", "p.0.tool_calls.0.id", "p..a", "p.", "q.0.role", "p.1.a.b",
]


@pytest.mark.parametrize("seed", range(3))
def test_learned_layouts_reassemble_what_parsing_every_key_does(seed):
    rng = random.Random(seed)
    for _ in range(300):
        keys = rng.sample(INDEXED_KEYS, rng.randint(0, len(INDEXED_KEYS)))
        attrs = {key: rng.randint(0, 9) for key in keys}
        if rng.random() < 0.3:
            msg._LAYOUTS.clear()
        expected_attrs = dict(attrs)
        expected = _pop_indexed_by_parsing(expected_attrs, "p.")
        for given in (None, [k for k in attrs if k.startswith("p.")]):
            left = dict(attrs)
            got = msg.pop_indexed(left, "p.", given)
            assert [list(group.items()) for group in got] == [list(group.items()) for group in expected]
            assert list(left.items()) == list(expected_attrs.items())


def test_an_index_that_is_no_number_fails_as_parsing_it_does():
    with pytest.raises(ValueError):
        _pop_indexed_by_parsing({"p.².a": 1}, "p.")
    for _ in range(2):  # not learned: it fails again
        with pytest.raises(ValueError):
            msg.pop_indexed({"p.².a": 1}, "p.")


def test_the_layout_cache_is_bounded():
    msg._LAYOUTS.clear()
    for index in range(2100):
        assert msg.pop_indexed({f"p.{index}.a": 1}, "p.") == [{"a": 1}]
    assert len(msg._LAYOUTS) <= 2048
    long = {f"p.{index}.a": index for index in range(300)}
    assert msg.pop_indexed(dict(long), "p.") == [{"a": index} for index in range(300)]
    assert ("p.", tuple(long)) not in msg._LAYOUTS
    wide = {"p.0." + "a" * 17000: 1}
    assert msg.pop_indexed(dict(wide), "p.") == [{"a" * 17000: 1}]
    assert ("p.", tuple(wide)) not in msg._LAYOUTS


COUNT_VALUES = [0, 1, 7, -1, 2**63 - 1, 2**63, 2**70, True, False, None, 3.0, 3.5, "12", " 4 ", "x", "", [], {}]


def test_the_plain_int_path_of_to_count_is_what_to_int_answers():
    from ingest.rules.values import to_count, to_int

    for value in COUNT_VALUES:
        for maximum in (2**63 - 1, 2**31 - 1, 5):
            number = to_int(value)
            expected = number if number is not None and 0 <= number <= maximum else None
            assert to_count(value, maximum=maximum) == expected
            assert type(to_count(value, maximum=maximum)) is type(expected)


def test_without_subtracts_the_parts_as_its_sum_does():
    from ingest.rules.usage import without

    parts = [None, 0, 1, 5, 50, 400]
    for count in (0, 3, 10, 395):
        for first in parts:
            for second in parts:
                remaining = count - sum(p or 0 for p in (first, second))
                assert without(count, first, second) == (remaining if remaining >= 0 else count)
                assert without(count, first) == (count - (first or 0) if count - (first or 0) >= 0 else count)
