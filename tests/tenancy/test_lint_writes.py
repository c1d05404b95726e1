"""The `make lint` check that only the ingest package writes telemetry tables finds what it claims."""

from pathlib import Path

from config.lint_writes import ROOT, findings_in


def findings(source: str, where: str = "traces/services.py"):
    return findings_in(Path(ROOT / where), source)


def test_orm_writes_on_telemetry_models_are_found():
    source = (
        "Trace.objects.for_project(p).create(id='x')\n"
        "Observation.objects.for_project(p).filter(id='x').update(name='y')\n"
        "Score.objects.for_project(p).filter(id='s').delete()\n"
        "Observation.objects.for_project(p).bulk_create([])\n"
    )
    assert [f.split(": ", 1)[1] for f in findings(source)] == [
        "Trace.….create() outside ingest/",
        "Observation.….update() outside ingest/",
        "Score.….delete() outside ingest/",
        "Observation.….bulk_create() outside ingest/",
    ]


def test_sql_writes_on_telemetry_tables_are_found():
    source = 'SQL = """UPDATE traces_observation SET x = 1"""\nOTHER = "delete from feedback_score"\n'
    assert len(findings(source)) == 2


def test_reads_and_other_models_are_not_writes():
    source = (
        "Trace.objects.for_project(p).filter(id='x').first()\n"
        "Prompt.objects.for_project(p).create(name='x')\n"
        "SQL = 'SELECT * FROM traces_trace'\n"
        "result.update(a=1)\n"
    )
    assert findings(source) == []

