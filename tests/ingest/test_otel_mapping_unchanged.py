"""The OTLP mapper's output on the benchmark's own requests stays exactly what it was (values, types and
key order: the stored JSON keeps the order) while its per-span work is cut down, and the per-key
caches behind that answer what the scans they replace answered, whatever keys a sender makes up.

The expected digests were taken from the mapper before the per-key caches (branch s7, b8ab8aa): the
SHA-256 of the mapped batches (traces, observations, scores, rejections, experiment links) as orjson
encodes them, for two requests of 30 spans per seed. A change to what the mapper produces for these
spans changes a digest; such a change is a deliberate one and updates them."""

import hashlib
import random
from datetime import UTC, datetime

import orjson
import pytest

from bench import bench_ingest
from ingest.adapters.otel import mapping
from ingest.adapters.otel.decode import decode_protobuf
from ingest.adapters.otel.mapping import map_decoded

EXPECTED = {
    "openinference": {
        0: "9b162782b38f802bb7e0c7648bf9ad33",
        1: "834c20e62a01f817d913d8cb16b9f8be",
        2: "9b7b0b6d15b9a4953cb6a2163dd09e25",
        3: "faa2dd905b225cae65721bcdb3027c70",
        4: "9eb5b98e73925f0fe856b58a6a9ac296",
        5: "968efb9946bc035a1900d85bea295d53",
        6: "4fb5952e8b4ec061a3ac58a4d79e2e48",
        7: "ebc132e90e89966fd88bc1ac621dd29c",
        8: "ec3c3e05de30449f7edc2dd7d67e0ece",
        9: "2e87f32ea4c5fe6f0fcbc1d1bc215b1c",
        10: "4273fb0b9fbfe364e6fa1e122bdd52a9",
        11: "feb3898de0932690dd7670f9fcb2cb00",
    },
    "genai": {
        0: "0b0124a7220b83569c8f8d218b02384b",
        1: "d4e5ac3097a21ee180cdd1913f2835a3",
        2: "74da096cd176a5d90e2b209b20265bb1",
        3: "6b80ac36912230a76fc8b77308593123",
        4: "ae334b8ad72503e06af03e3aa3e493dd",
        5: "f7477496c56b5972459c56d95f984c9c",
        6: "2d5a377f9c20f05afeed132efe679c78",
        7: "e739e249a0125a0d056877e8c2827135",
        8: "a7ea83cdf536766340a78f519c8fc422",
        9: "485b7fa51160826697bc0b0a26adc71c",
        10: "7a7bf2230f30dbf7c3c10aa729942766",
        11: "def60738e9dba04bb854947ac47081be",
    },
}


class _FrozenNow(datetime):
    """The bench dates its requests from now; the digests need the same spans every run."""

    @classmethod
    def now(cls, tz=None):
        return datetime(2026, 12, 1, 12, tzinfo=UTC)


def _digest(profile: str, seed: int) -> str:
    digest = hashlib.sha256()
    for batch in bench_ingest.build_turn_batches(profile, 2, seed):
        mapped = map_decoded(decode_protobuf(batch.body), received_at=datetime(2026, 12, 1, 13, tzinfo=UTC))
        digest.update(
            orjson.dumps(
                [mapped.traces, mapped.observations, mapped.scores, mapped.rejected, mapped.experiments],
                default=str,
                option=orjson.OPT_NON_STR_KEYS,
            )
        )
    return digest.hexdigest()[:32]


@pytest.mark.parametrize("profile", sorted(EXPECTED))
def test_the_bench_requests_map_as_before(profile, monkeypatch):
    monkeypatch.setattr(bench_ingest, "datetime", _FrozenNow)
    assert {seed: _digest(profile, seed) for seed in EXPECTED[profile]} == EXPECTED[profile]


def test_the_bench_requests_map_as_before_with_every_cache_cold_or_warm(monkeypatch):
    """Learning a key and answering it from a cache give the same output."""
    monkeypatch.setattr(bench_ingest, "datetime", _FrozenNow)
    for profile in EXPECTED:
        mapping._FAMILY_OF.clear()
        assert _digest(profile, 0) == EXPECTED[profile][0]  # every key learned on the way
        assert _digest(profile, 0) == EXPECTED[profile][0]  # every key known


def _families_by_scan(attrs: dict) -> dict[str, tuple[str, ...]]:
    """What `_Families` answers, by its definition: each key under the prefix of FAMILIES it starts with."""
    found: dict[str, list[str]] = {}
    for key in attrs:
        for prefix in mapping.FAMILIES:
            if key.startswith(prefix):
                found.setdefault(prefix, []).append(key)
                break
    return {prefix: tuple(keys) for prefix, keys in found.items()}


FAMILY_EDGE_KEYS = [
    "llm.input_messages.0.message.role",
    "llm.input_messages.",  # the prefix itself
    "llm.input_messages",  # no dot: no family
    "llm.input_messages.x.message.role",
    "llm.token_count.prompt",
    "llm.token_counts.prompt",  # a prefix of it only as text
    "gen_ai.request.model",
    "gen_ai.requests.x",
    "langfuse.experiment.item.metadata.k",
    "langfuse.experiment.metadata.k",
    "langfuse.metadata.k",
    "session.annotations.0.annotation.name",
    "trace.evaluations.0.evaluation.name",
    "annotations.0.annotation.name",
    "input.value",
    "",
    "é.llm.tools.0",
]


def test_families_are_what_a_scan_of_every_prefix_finds():
    rng = random.Random(5)
    for _ in range(200):
        attrs = {key: 1 for key in rng.sample(FAMILY_EDGE_KEYS, rng.randint(0, len(FAMILY_EDGE_KEYS)))}
        if rng.random() < 0.3:
            mapping._FAMILY_OF.clear()
        assert mapping._Families(attrs).keys == _families_by_scan(attrs)


def test_the_family_cache_is_bounded_and_stays_right_when_it_starts_over():
    mapping._FAMILY_OF.clear()
    made_up = {f"llm.tools.{index}.tool.name": 1 for index in range(9000)} | {
        f"x{index}": 1 for index in range(9000)
    }
    assert mapping._Families(made_up).keys == _families_by_scan(made_up)
    assert len(mapping._FAMILY_OF) <= 8192
    long_key = "llm.tools.0." + "x" * 300
    assert mapping._Families({long_key: 1}).keys == {"llm.tools.": (long_key,)}
    assert long_key not in mapping._FAMILY_OF  # long keys are not kept
    again = {key: 1 for key in list(made_up)[::97]}
    assert mapping._Families(again).keys == _families_by_scan(again)
