"""The dashboards' cost by end user ranks the users in SQL and returns only the top ones: a project's
5,000 users over 30 days are 150,000 daily rollup rows, which the unranked read sent to Python to sort
(the console dashboards 619 ms at 10M observations). The top rows, their shares, the 80% line, the
totals and the "others" sums must be exactly what the unranked read answers — ties in spend and calls
broken by the user id in code-point order as Python compares strings (not the database collation)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from monitoring import selectors
from monitoring.models import DailyUserRollup
from tenancy.dataplane import data_connection

NOW = datetime(2026, 11, 20, 14, 25, tzinfo=UTC)
# Ids whose code-point order differs from a linguistic collation's (case, punctuation, accents).
AWKWARD_IDS = ["Zed", "alice", "_bot", "Émile", "emile", "bob-2", "bob10", "bob2", "a b", "ß"]


def _insert(project, rows: list[tuple[date, str, int, Decimal, int, int, int, int]]) -> None:
    with data_connection(project).cursor() as cursor:
        cursor.executemany(
            f'INSERT INTO "{DailyUserRollup._meta.db_table}" (project_id, day, user_id, calls, cost, errors, '
            "refusals, unpriced_calls, total_tokens, input_tokens, cached_input_tokens, cache_write_tokens, "
            "output_tokens, reasoning_tokens) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 0, 0, 0, 0, 0)",
            [(project.id, *row) for row in rows],
        )


@pytest.fixture
def users(project, other_project):
    rng = random.Random(11)
    ids = [f"user-{i:03d}" for i in range(240)] + AWKWARD_IDS
    rows = []
    for day_back in range(0, 12):
        day = (NOW - timedelta(days=day_back)).date()
        for user_id in rng.sample(ids, 150):
            calls = rng.randint(1, 6)
            # Coarse costs so that many users tie on spend (and some on calls too).
            cost = Decimal(rng.choice([0, 1, 2, 5])) / 100
            rows.append((day, user_id, calls, cost, rng.randint(0, 1), rng.randint(0, 1), rng.randint(0, 1), 10))
    # The awkward ids tie with each other exactly on every day they have.
    for day_back in range(3):
        day = (NOW - timedelta(days=day_back)).date()
        rows += [(day, f"tie-{u}", 2, Decimal("0.03"), 0, 0, 0, 5) for u in AWKWARD_IDS]
    # A user whose calls net to zero in the window (a rebuilt day) is not a group.
    rows.append(((NOW - timedelta(days=1)).date(), "nobody", 0, Decimal(0), 0, 0, 0, 0))
    _insert(project, rows)
    # Another project's big spender never shows.
    _insert(other_project, [((NOW - timedelta(days=1)).date(), "whale", 1000, Decimal(1000), 0, 0, 0, 0)])
    return ids


@pytest.mark.parametrize("days", [1, 7, 30])
@pytest.mark.parametrize("limit", [1, 10, 100, 1000])
def test_the_top_users_are_the_unranked_answer_cut(project, users, days, limit):
    full = selectors.cost_breakdown(project=project, by="user", days=days, now=NOW)
    top = selectors.cost_breakdown(project=project, by="user", days=days, now=NOW, limit=limit)
    assert full["rows"] and "whale" not in {r["key"]["user_id"] for r in full["rows"]}
    assert top["rows"] == full["rows"][:limit]
    for key in ("by", "days", "from", "to", "total", "groups_within_80"):
        assert top[key] == full[key], key
    assert top["groups"] == len(full["rows"])
    rest = full["rows"][limit:]
    if not rest:
        assert top["others"] is None
    else:
        spend, calls = sum((r["spend"] for r in rest), Decimal(0)), sum(r["calls"] for r in rest)
        assert top["others"] == {
            "groups": len(rest), "spend": spend, "calls": calls, "cost_per_call": spend / calls if calls else None,
            "errors": sum(r["errors"] for r in rest), "refusals": sum(r["refusals"] for r in rest),
            "unpriced_calls": sum(r["unpriced_calls"] for r in rest),
        }


def test_ties_follow_python_string_order_not_the_collation(project, users):
    top = selectors.cost_breakdown(project=project, by="user", days=3, now=NOW, limit=1000)
    tied = [r["key"]["user_id"] for r in top["rows"] if r["key"]["user_id"].startswith("tie-")]
    assert tied == sorted(f"tie-{u}" for u in AWKWARD_IDS)


def test_an_empty_window(project):
    top = selectors.cost_breakdown(project=project, by="user", days=7, now=NOW, limit=5)
    assert top["rows"] == [] and top["others"] is None and top["groups"] == 0
    assert top["total"]["spend"] == 0 and top["total"]["calls"] == 0 and top["groups_within_80"] == 0


def test_the_dashboard_keeps_the_top_users_and_sums_the_others(monkeypatch, project, users):
    monkeypatch.setattr(selectors, "DASHBOARD_USERS", 20)
    board = selectors.dashboard(project=project, days=30, now=NOW)
    full = selectors.cost_breakdown(project=project, by="user", days=30, now=NOW)
    assert len(board["by_user"]["rows"]) == 20 and board["by_user"]["rows"] == full["rows"][:20]
    assert board["by_user"]["others"]["groups"] == len(full["rows"]) - 20
    assert board["by_user"]["total"] == full["total"]

