"""Duplicate-call marking compares the batch's new calls as the INSERT stored them.

The writer takes that state from the rows it sent, not from the INSERT's RETURNING rows (loading
their timestamps cost more Python than anything else in reading them), when the rows hold exactly
what is stored; where they do not — text with NUL (stored as U+FFFD), a model sent as another JSON
type (stored as its text) — it reads what was returned. Either way a pair is marked as the same call
exactly when the stored rows match, whichever batch stored the parent.
"""

from datetime import UTC, datetime, timedelta

from ingest import writer
from traces.models import Observation

T0 = datetime(2026, 11, 26, 19, 42, 27, tzinfo=UTC)


def _call(obs_id, *, model, parent=None, offset=0, tokens=100):
    return {
        "id": obs_id, "trace_id": "t1", "type": "GENERATION", "model": model,
        "parent_observation_id": parent, "start_time": T0 + timedelta(seconds=offset),
        "end_time": T0 + timedelta(seconds=10 - offset), "input_tokens": tokens, "output_tokens": 10,
    }


def _marks(project) -> dict[str, str]:
    return dict(Observation.objects.for_project(project).values_list("id", "duplicate_of"))


def test_a_child_and_its_parent_in_one_batch_are_one_call(project):
    writer.write_records(
        project=project, traces=[], scores=[],
        observations=[_call("outer", model="gpt-4o"), _call("inner", model="gpt-4o", parent="outer", offset=1),
                      _call("other", model="gpt-4o", parent="outer", offset=2, tokens=7)],
    )
    assert _marks(project) == {"outer": "", "inner": "outer", "other": ""}


def test_a_model_with_nul_pairs_with_its_stored_parent(project):
    # The parent is read back from the table (U+FFFD); the child must be compared as stored too.
    writer.write_records(project=project, traces=[], scores=[], observations=[_call("outer", model="gpt\x00-4o")])
    writer.write_records(
        project=project, traces=[], scores=[],
        observations=[_call("inner", model="gpt\x00-4o", parent="outer", offset=1)],
    )
    stored = Observation.objects.for_project(project).get(id="inner")
    assert stored.model == "gpt\ufffd-4o"
    assert stored.duplicate_of == "outer"


def test_a_model_sent_as_a_number_pairs_with_its_stored_parent(project):
    writer.write_records(project=project, traces=[], scores=[], observations=[_call("outer", model="4")])
    writer.write_records(
        project=project, traces=[], scores=[], observations=[_call("inner", model=4, parent="outer", offset=1)]
    )
    assert Observation.objects.for_project(project).get(id="inner").model == "4"
    assert _marks(project) == {"outer": "", "inner": "outer"}


def test_a_stored_child_is_marked_when_its_parent_arrives(project):
    writer.write_records(
        project=project, traces=[], scores=[],
        observations=[_call("inner", model="gpt-4o", parent="outer", offset=1)],
    )
    writer.write_records(project=project, traces=[], scores=[], observations=[_call("outer", model="gpt-4o")])
    assert _marks(project) == {"outer": "", "inner": "outer"}
