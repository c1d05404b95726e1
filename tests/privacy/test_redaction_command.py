"""`manage.py redact`: teams check what their policy removes."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from privacy.services import redaction_policy_update

TEXT = "Mail maria.lopez@gmail.com, call +1 415 555 2671, order ORD-2024-000123"


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("redact", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_without_a_project_it_uses_the_defaults_and_prints_counts():
    out, err = run("--text", TEXT)
    assert out.strip() == "Mail [EMAIL], call [PHONE], order ORD-2024-000123"
    assert "defaults" in err and "email: 1" in err and "phone: 1" in err


def test_it_uses_the_projects_policy(project, owner):
    redaction_policy_update(project=project, actor=owner, detector_modes={"email": "pseudonymize", "phone": "off"})
    out, _ = run("--project", str(project.id), "--text", TEXT, "--json")
    result = json.loads(out)
    assert result["text"].startswith("Mail [EMAIL:") and "+1 415 555 2671" in result["text"]
    assert result["counts"] == {"email": 1}
    assert result["policy"] == f"project {project.id}: policy v1"


def test_it_reads_a_file(tmp_path):
    path = tmp_path / "sample.txt"
    path.write_text("IBAN DE89 3704 0044 0532 0130 00\n", encoding="utf-8")
    out, _ = run("--file", str(path), "--json")
    assert json.loads(out) == {"policy": "defaults (every detector, mask)", "text": "IBAN [IBAN]\n", "counts": {"iban": 1}}


def test_it_says_when_redaction_is_off_for_the_project(project):
    out, err = run("--project", str(project.id), "--text", TEXT)
    assert out.strip() == TEXT
    assert "not configured" in err and "nothing redacted" in err


@pytest.mark.parametrize("project_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_an_unknown_project_is_a_clear_error(project_id):
    with pytest.raises(CommandError, match="no project"):
        run("--project", project_id, "--text", TEXT)


def test_an_unreadable_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        run("--file", str(tmp_path / "missing.txt"))
