"""The console benchmark's volume, seeded with SQL (`make bench-console ARGS="--observations N"`).

The rows of `bench/volume_sql.py` (traces of five observations, three of them LLM calls, over 30 days;
5,000 users; thumbs; the monitoring and score rollups) plus what the console's pages read and that
seed lacks:
- input and output text on every trace and LLM call, for the explorer's full-text search: a chat
  question of 12 and an answer of 30 words out of 22 (so a word such as `refund` is in most
  documents, as a product's common vocabulary is), picked from 1,009 phrase pairs by the row index;
  the trace's answer and its last call's answer end with `needle-<trace index>` (a word in exactly
  one trace: the rare-word search);
- session ids: ten consecutive trace indexes per session (`session-<index / 10>`, 200,000 at 10M);
- prompts `answer-0` … `answer-4`, three versions each, the ones the seeded calls link to.
The secondary indexes of the trace and observation tables are dropped for the inserts and built
after (`volume_sql.indexes_dropped`), then the tables are vacuumed and analysed (visibility map and
statistics as autovacuum would leave them on a live server).
"""

from __future__ import annotations

import random
import time

from bench import volume_sql

WORDS = ("refund invoice shipping delay password reset account billing upgrade cancel order tracking "
         "warranty discount coupon delivery address payment card declined subscription plan").split()
PHRASES = 1009  # prime: the phrase of a row does not repeat with the trace/observation period of 5
DAYS = 30
PROMPTS = 5  # `answer-0` … `answer-4` (volume_sql links calls of features 0-4 to them)


def _phrases() -> tuple[list[str], list[str]]:
    rng = random.Random(7)
    questions = [" ".join(rng.choices(WORDS, k=12)) for _ in range(PHRASES)]
    answers = [" ".join(rng.choices(WORDS, k=30)) for _ in range(PHRASES)]
    return questions, answers


SQL_NEEDLE_OF_TRACE = "' needle-' || (g / 5)"
SQL_EMPTY = "''"


def extras() -> tuple[volume_sql.Extra, volume_sql.Extra]:
    """(trace columns, observation columns) the console needs, as SQL over the row index `g`."""
    questions, answers = _phrases()

    def question(index: str) -> str:
        return f"jsonb_build_array(jsonb_build_object('role', 'user', 'content', (%s::text[])[1 + ({index}) %% {PHRASES}]))"

    def answer(index: str, needle: str) -> str:
        return (f"jsonb_build_object('role', 'assistant', 'content', "
                f"(%s::text[])[1 + ({index}) %% {PHRASES}] || {needle})")

    trace = {
        "session_id": ("'session-' || (g / 10)", []),
        "input": (question("g"), [questions]),
        "output": (answer("g * 7 + 3", "' needle-' || g"), [answers]),
    }
    # LLM calls (g % 5 < 3) carry text; the trace's last call (g % 5 = 2) gives the trace's answer.
    observation = {
        "input": (f"CASE WHEN g %% 5 < 3 THEN {question('g / 5 + g %% 5')} END", [questions]),
        "output": (f"CASE WHEN g %% 5 = 2 THEN {answer('(g / 5) * 7 + 3', SQL_NEEDLE_OF_TRACE)} "
                   f"WHEN g %% 5 < 2 THEN {answer('g', SQL_EMPTY)} END", [answers, answers]),
    }
    return trace, observation


def seed(project, connection, *, observations: int) -> None:
    """Seed (or finish seeding) the project to `observations` observations with its rollups."""
    from monitoring.models import HourlyRollup
    from traces.models import Observation, Trace

    trace_extra, observation_extra = extras()
    have = Observation.objects.for_project(project).count()
    if have < observations:
        print(f"seeding {observations:,} observations over {DAYS} days with SQL…", flush=True)
        with volume_sql.indexes_dropped(connection, (Trace._meta.db_table, Observation._meta.db_table)):
            volume_sql.seed(project, connection, observations=observations, days=DAYS,
                            trace_extra=trace_extra, observation_extra=observation_extra)
        t0 = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(f'VACUUM (ANALYZE) "{Trace._meta.db_table}", "{Observation._meta.db_table}"')
        print(f"  vacuumed and analysed in {time.perf_counter() - t0:.0f} s", flush=True)
    if not HourlyRollup.objects.for_project(project).exists():
        volume_sql.seed_rollups(project, connection)
    _prompts(project)


def _prompts(project) -> None:
    from prompts.models import Prompt
    from prompts.payloads import PromptInput
    from prompts.services import prompt_create_version

    for i in range(PROMPTS):
        name = f"answer-{i}"
        if Prompt.objects.for_project(project).filter(name=name).exists():
            continue
        for version in range(1, 4):
            prompt_create_version(project=project, actor=None, data=PromptInput(
                name=name, type="text", text=f"Answer the customer about {{{{topic}}}} (v{version}).", messages=None,
                config={"model": "model-1"}, labels=["production"] if version == 3 else [], tags=None,
                commit_message=None))
