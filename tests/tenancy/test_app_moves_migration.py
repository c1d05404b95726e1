"""Issue 9 moved four models to new apps (billing -> pricing, traces -> privacy, feedback -> scores)
without moving data: their tables keep their names and the migrations change only Django's state.

This migrates the real databases back to the schema before the move, writes rows there the way the
old code did (raw SQL into the old tables), migrates forward to the latest state and reads every row
back through the new models. Renaming or dropping a table in the new migrations loses the rows and
fails here."""

import ast
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from pricing.models import ModelPrice
from privacy.models import RedactionPolicy
from scores.models import Score, ScoreConfig
from tenancy.regions import data_databases, region_database
from tests.factories import UserFactory

# Unapplying the new apps unapplies the old apps' state-only "moved" migrations that depend on them:
# what is left is the schema of the release before the move.
BEFORE_THE_MOVE = [("pricing", None), ("privacy", None), ("scores", None)]
MOVED = {  # new model -> (table, old app label, new app label)
    ModelPrice: ("billing_modelprice", "billing", "pricing"),
    RedactionPolicy: ("traces_redactionpolicy", "traces", "privacy"),
    ScoreConfig: ("feedback_scoreconfig", "feedback", "scores"),
    Score: ("feedback_score", "feedback", "scores"),
}
AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _aliases() -> list[str]:
    return list(dict.fromkeys(["default", *data_databases()]))


def _migrate(alias: str, targets=None) -> None:
    executor = MigrationExecutor(connections[alias])
    executor.migrate(targets if targets is not None else executor.loader.graph.leaf_nodes())


def _tables(alias: str) -> set[str]:
    with connections[alias].cursor() as cursor:
        return set(connections[alias].introspection.table_names(cursor))


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_rows_written_before_the_move_are_read_back_through_the_new_apps(project):
    region = region_database(project.region)
    editor = UserFactory(is_superuser=True, is_staff=True)
    price_id, config_id = uuid.uuid4(), uuid.uuid4()
    try:
        for alias in _aliases():
            _migrate(alias, BEFORE_THE_MOVE)
        ContentType.objects.clear_cache()

        with connections["default"].cursor() as cursor:
            # The old release's content types, as its admin log and permissions reference them.
            cursor.execute(
                "SELECT id FROM django_content_type WHERE app_label = 'billing' AND model = 'modelprice'"
            )
            (old_price_type,) = cursor.fetchone()
            cursor.execute(
                "SELECT id FROM auth_permission WHERE content_type_id = %s AND codename = 'change_modelprice'",
                [old_price_type],
            )
            (change_permission,) = cursor.fetchone()
            cursor.execute(
                "INSERT INTO billing_modelprice (id, project_id, provider, model_name, match_pattern, "
                "effective_from, input_price, cached_input_price, cache_write_price, output_price, "
                "reasoning_price, source, created_at, updated_at) "
                "VALUES (%s, %s, 'acme', 'acme-large', '^acme-large$', %s, 1.5, NULL, NULL, 6, NULL, "
                "'custom', %s, %s)",
                [price_id, project.id, AT, AT, AT],
            )
            cursor.execute(
                "INSERT INTO traces_redactionpolicy (project_id, enabled, default_mode, detector_modes, "
                "phone_default_region, custom_patterns, pseudonym_salt, version, created_at, updated_at) "
                "VALUES (%s, true, 'pseudonymize', '{\"email\": \"mask\"}', 'DE', "
                "'[{\"label\": \"EMPLOYEE_ID\", \"pattern\": \"EMP-\\\\d{6}\", \"mode\": \"mask\"}]', "
                "'salt-before-the-move', 3, %s, %s)",
                [project.id, AT, AT],
            )
            cursor.execute(
                "INSERT INTO feedback_scoreconfig (id, project_id, name, data_type, min_value, max_value, "
                "categories, description, is_archived, created_at, updated_at) "
                "VALUES (%s, %s, 'relevance', 'NUMERIC', 0, 1, '[]', 'how relevant', false, %s, %s)",
                [config_id, project.id, AT, AT],
            )
            cursor.execute(
                "INSERT INTO django_admin_log (action_time, user_id, content_type_id, object_id, "
                "object_repr, action_flag, change_message) VALUES (%s, %s, %s, %s, 'acme-large', 1, '[]')",
                [AT, editor.pk, old_price_type, str(price_id)],
            )
        with connections[region].cursor() as cursor:
            cursor.execute(
                "INSERT INTO feedback_score (project_id, id, trace_id, observation_id, session_id, name, "
                "value, string_value, data_type, source, comment, author_user_id, config_id, metadata, "
                "environment, timestamp, redactions, created_at, updated_at) "
                "VALUES (%s, 's-1', 't-1', '', '', 'relevance', 0.75, '', 'NUMERIC', 'API', 'fine', "
                "'', %s, '{\"k\": 1}', 'production', %s, '{}', %s, %s)",
                [project.id, str(config_id), AT, AT, AT],
            )
    finally:
        for alias in _aliases():
            _migrate(alias)
        ContentType.objects.clear_cache()

    # No table was renamed or dropped: the rows are where the old release wrote them ...
    for model, (table, _, _) in MOVED.items():
        assert model._meta.db_table == table
        databases = data_databases() if model is Score else ["default"]
        for alias in _aliases():
            assert (table in _tables(alias)) == (alias in databases), (table, alias)

    # ... and the new models read every field of them.
    price = ModelPrice.objects.get(id=price_id)
    assert (price.project_id, price.provider, price.model_name, price.match_pattern) == (
        project.id, "acme", "acme-large", "^acme-large$",
    )
    assert (price.input_price, price.output_price, price.cached_input_price, price.source) == (
        Decimal("1.5"), Decimal("6"), None, "custom",
    )
    assert price.effective_from == AT

    policy = RedactionPolicy.objects.get(project=project)
    assert (policy.enabled, policy.default_mode, policy.phone_default_region, policy.version) == (
        True, "pseudonymize", "DE", 3,
    )
    assert policy.detector_modes == {"email": "mask"}
    assert policy.custom_patterns == [{"label": "EMPLOYEE_ID", "pattern": r"EMP-\d{6}", "mode": "mask"}]
    assert policy.pseudonym_salt == "salt-before-the-move"

    config = ScoreConfig.objects.get(id=config_id)
    assert (config.project_id, config.name, config.data_type, config.min_value, config.max_value) == (
        project.id, "relevance", "NUMERIC", 0, 1,
    )
    assert (config.description, config.is_archived, config.categories) == ("how relevant", False, [])

    score = Score.objects.for_project(project).get(id="s-1")
    assert (score.trace_id, score.name, score.value, score.data_type, score.source, score.comment) == (
        "t-1", "relevance", 0.75, "NUMERIC", "API", "fine",
    )
    assert (score.config_id, score.metadata, score.environment, score.timestamp) == (
        str(config_id), {"k": 1}, "production", AT,
    )

    # The content type moved with the model: the old admin log entry and permission still resolve.
    entry = LogEntry.objects.get(object_id=str(price_id))
    assert entry.content_type_id == old_price_type
    assert entry.get_edited_object() == price
    assert Permission.objects.get(id=change_permission).content_type == ContentType.objects.get_for_model(
        ModelPrice
    )
    for model, (_, old_label, new_label) in MOVED.items():
        name = model._meta.model_name
        assert not ContentType.objects.filter(app_label=old_label, model=name).exists()
        assert ContentType.objects.filter(app_label=new_label, model=name).count() == 1


def test_the_redaction_policy_model_does_not_import_the_engine():
    """The engine reads the model; the model must not import the engine back (the old hidden cycle,
    through imports inside save() and delete())."""
    tree = ast.parse((Path(__file__).resolve().parents[2] / "privacy" / "models.py").read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert not {name for name in imported if name and name.startswith(("privacy.engine", "traces"))}


@pytest.mark.parametrize(
    "old, new",
    [
        ("/admin/billing/modelprice/", "/admin/pricing/modelprice/"),
        ("/admin/traces/redactionpolicy/7/change/", "/admin/privacy/redactionpolicy/7/change/"),
        ("/admin/feedback/scoreconfig/?q=relevance", "/admin/scores/scoreconfig/?q=relevance"),
    ],
)
def test_bookmarks_of_the_moved_console_pages_lead_to_the_new_ones(client, superuser, old, new):
    client.force_login(superuser)
    response = client.get(old)
    assert (response.status_code, response["Location"]) == (301, new)
    assert client.get(new).status_code in (200, 302)  # 302: the change page of a missing object
