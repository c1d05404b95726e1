import json

import pytest
from django.core.management import CommandError, call_command

from tenancy.authentication import authenticate_header
from tenancy.models import AuditLogEntry, Organization, Project


def run_json(*args):
    from io import StringIO

    out = StringIO()
    call_command("create_project", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_create_project_prints_ids_and_a_working_key_pair():
    result = run_json("--org", "Initech", "--project", "tps", "--region", "us")
    assert set(result) == {"organization_id", "project_id", "region", "public_key", "secret_key"}
    project = Project.objects.get(pk=result["project_id"])
    assert (project.name, project.region, str(project.organization_id)) == ("tps", "us", result["organization_id"])
    import base64

    header = "Basic " + base64.b64encode(f"{result['public_key']}:{result['secret_key']}".encode()).decode()
    assert authenticate_header(header).project == project


def test_create_project_reuses_the_organization_and_project_and_issues_a_new_key():
    first = run_json("--org", "Initech", "--project", "tps")
    second = run_json("--org", "Initech", "--project", "tps")
    assert first["project_id"] == second["project_id"]
    assert first["public_key"] != second["public_key"]
    assert Organization.objects.filter(name="Initech").count() == 1
    assert first["region"] == "eu"  # DEFAULT_REGION in the test settings
    actions = list(
        AuditLogEntry.objects.filter(organization_id=first["organization_id"]).values_list("action", flat=True)
    )
    assert actions.count("api_key.created") == 2 and actions.count("project.created") == 1


def test_create_project_refuses_unknown_region_and_region_moves():
    with pytest.raises(CommandError, match="unknown region"):
        run_json("--org", "Initech", "--project", "tps", "--region", "mars")
    run_json("--org", "Initech", "--project", "tps", "--region", "eu")
    with pytest.raises(CommandError, match="cannot move region"):
        run_json("--org", "Initech", "--project", "tps", "--region", "us")


def test_seed_demo_is_idempotent(settings, tmp_path):
    from io import StringIO

    settings.BASE_DIR = tmp_path
    out1, out2 = StringIO(), StringIO()
    call_command("seed_demo", stdout=out1)
    call_command("seed_demo", stdout=out2)
    assert Organization.objects.filter(name="Demo").count() == 1
    assert Project.objects.filter(name="demo").count() == 1
    creds = json.loads((tmp_path / ".data" / "demo-credentials.json").read_text())
    assert creds["secret_key"] in out1.getvalue() and creds["secret_key"] in out2.getvalue()
    import base64

    header = "Basic " + base64.b64encode(f"{creds['public_key']}:{creds['secret_key']}".encode()).decode()
    assert authenticate_header(header).project.name == "demo"


def test_audit_log_refuses_updates_and_deletes_in_the_database(project, api_key):
    from django.db import connection, transaction
    from django.db.utils import DatabaseError

    entry = AuditLogEntry.objects.filter(organization_id=project.organization_id).first()
    assert entry is not None
    for sql in ("UPDATE tenancy_auditlogentry SET action = 'x' WHERE id = %s", "DELETE FROM tenancy_auditlogentry WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, [entry.id])
