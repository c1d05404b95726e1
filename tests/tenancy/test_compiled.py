"""The ingest hot path compiled with Cython (config/compiled.py): a build is loaded only while its
source is unchanged, and compiled and interpreted modules map and redact the same requests to the
same records."""

from __future__ import annotations

import hashlib
import importlib.machinery
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.conf import settings

from config import compiled

ROOT = Path(__file__).resolve().parents[2]
needs_compiler = pytest.mark.skipif(
    compiled._compiler_missing() is not None, reason=f"cannot compile here: {compiled._compiler_missing()}"
)


@pytest.fixture
def probe_package(tmp_path):
    """A throwaway package `lg_probe` with one module, importable from tmp_path; the import system
    (finders, modules) is restored afterwards."""
    package = tmp_path / "lg_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "calc.py").write_text("def answer(values):\n    return sum(v * 2 for v in values)\n")
    meta_path, path = list(sys.meta_path), list(sys.path)
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.meta_path[:], sys.path[:] = meta_path, path
    for name in ("lg_probe.calc", "lg_probe"):
        sys.modules.pop(name, None)


def _fresh_import():
    sys.modules.pop("lg_probe.calc", None)
    import lg_probe.calc

    return lg_probe.calc


@needs_compiler
def test_a_build_is_loaded_only_while_its_source_is_unchanged(probe_package):
    modules, build_dir = ("lg_probe.calc",), probe_package / ".build"
    where = {"modules": modules, "root": probe_package, "build_dir": build_dir}

    assert compiled.build(**where, say=lambda _: None) == ["lg_probe.calc"]
    assert compiled.build(**where, say=lambda _: None) == []  # current: nothing to do
    assert compiled.install("require", **where) == ["lg_probe.calc"]
    module = _fresh_import()
    assert isinstance(module.__spec__.loader, importlib.machinery.ExtensionFileLoader)
    assert module.answer([1, 2, 3]) == 12

    # Edited: the old build is never loaded again; the source runs until it is rebuilt.
    (probe_package / "lg_probe" / "calc.py").write_text("def answer(values):\n    return sum(values)\n")
    assert compiled.install("auto", **where) == []
    module = _fresh_import()
    assert isinstance(module.__spec__.loader, importlib.machinery.SourceFileLoader)
    assert module.answer([1, 2, 3]) == 6
    sys.modules.pop("lg_probe.calc")
    with pytest.raises(compiled.CompiledModulesError, match="1 of 1 modules have no current build"):
        compiled.install("require", **where)

    assert compiled.build(**where, say=lambda _: None) == ["lg_probe.calc"]
    assert len(list(build_dir.glob("lg_probe.calc.*"))) == 1  # the stale build is gone
    compiled.install("require", **where)
    module = _fresh_import()
    assert isinstance(module.__spec__.loader, importlib.machinery.ExtensionFileLoader)
    assert module.answer([1, 2, 3]) == 6


def test_a_pxd_beside_a_source_is_part_of_its_digest(probe_package):
    """Cython compiles a module's `.pxd` (C types for the unchanged `.py`) into it whenever one is
    there: adding, editing or removing one makes the build stale, like an edit of the source."""
    where = {"root": probe_package, "build_dir": probe_package / ".build"}
    pxd = probe_package / "lg_probe" / "calc.pxd"
    plain = compiled.built_path("lg_probe.calc", **where)
    pxd.write_text("cimport cython\n\n@cython.locals(values=list)\ncpdef answer(values)\n")
    typed = compiled.built_path("lg_probe.calc", **where)
    pxd.write_text("cimport cython\n\n@cython.locals(values=tuple)\ncpdef answer(values)\n")
    edited = compiled.built_path("lg_probe.calc", **where)
    assert len({plain, typed, edited}) == 3
    pxd.unlink()
    assert compiled.built_path("lg_probe.calc", **where) == plain
    # Without a `.pxd` the digest is the source's and the directives' alone: builds made before `.pxd`
    # files counted stay current.
    source = (probe_package / "lg_probe" / "calc.py").read_bytes()
    assert plain.name.split(".")[2] == hashlib.sha256(source + b"\0" + compiled._BUILD_KEY).hexdigest()[:20]


@needs_compiler
def test_a_build_compiles_the_pxd_and_is_stale_once_it_changes(probe_package):
    modules, build_dir = ("lg_probe.calc",), probe_package / ".build"
    where = {"modules": modules, "root": probe_package, "build_dir": build_dir}
    pxd = probe_package / "lg_probe" / "calc.pxd"
    # A loop: a `cpdef` cannot hold the fixture's generator expression.
    (probe_package / "lg_probe" / "calc.py").write_text(
        "def answer(values):\n    total = 0\n    for v in values:\n        total += v * 2\n    return total\n"
    )
    # Typed `list`, the compiled function refuses a tuple, which the source alone accepts: how the
    # test sees which declarations a build was made with.
    pxd.write_text("cimport cython\n\n@cython.locals(values=list)\ncpdef answer(values)\n")
    assert compiled.build(**where, say=lambda _: None) == ["lg_probe.calc"]
    assert compiled.build(**where, say=lambda _: None) == []  # current: nothing to do
    compiled.install("require", **where)
    module = _fresh_import()
    assert isinstance(module.__spec__.loader, importlib.machinery.ExtensionFileLoader)
    assert module.answer([1, 2, 3]) == 12
    with pytest.raises(TypeError):
        module.answer((1, 2, 3))

    # The `.pxd` edited: the old build is never loaded again; the source runs until it is rebuilt.
    pxd.write_text("cimport cython\n\n@cython.locals(values=tuple)\ncpdef answer(values)\n")
    assert compiled.install("auto", **where) == []
    module = _fresh_import()
    assert isinstance(module.__spec__.loader, importlib.machinery.SourceFileLoader)
    assert module.answer((1, 2, 3)) == 12
    assert compiled.build(**where, say=lambda _: None) == ["lg_probe.calc"]
    assert len(list(build_dir.glob("lg_probe.calc.*"))) == 1  # the stale build is gone
    sys.modules.pop("lg_probe.calc")  # one already imported is not routed
    compiled.install("require", **where)
    module = _fresh_import()
    assert isinstance(module.__spec__.loader, importlib.machinery.ExtensionFileLoader)
    assert module.answer((1, 2, 3)) == 12
    with pytest.raises(TypeError):
        module.answer([1, 2, 3])

    # Removed: stale again, rebuilt from the source alone.
    pxd.unlink()
    sys.modules.pop("lg_probe.calc")
    with pytest.raises(compiled.CompiledModulesError, match="1 of 1 modules have no current build"):
        compiled.install("require", **where)
    assert compiled.build(**where, say=lambda _: None) == ["lg_probe.calc"]
    compiled.install("require", **where)
    module = _fresh_import()
    assert module.answer((1, 2, 3)) == module.answer([1, 2, 3]) == 12


def test_off_routes_nothing_and_a_bad_mode_is_refused(probe_package):
    where = {"modules": ("lg_probe.calc",), "root": probe_package, "build_dir": probe_package / ".build"}
    assert compiled.install("off", **where) == []
    assert not any(isinstance(finder, compiled._Finder) for finder in sys.meta_path)
    with pytest.raises(compiled.CompiledModulesError, match="must be one of auto, off, require"):
        compiled.install("fast", **where)


def test_a_module_imported_before_routing_stays_as_it_is(probe_package):
    """A process never holds two copies of one module: one already imported is not routed."""
    where = {"modules": ("lg_probe.calc",), "root": probe_package, "build_dir": probe_package / ".build"}
    _fresh_import()
    compiled.built_path("lg_probe.calc", root=probe_package, build_dir=where["build_dir"]).parent.mkdir()
    compiled.built_path("lg_probe.calc", root=probe_package, build_dir=where["build_dir"]).write_bytes(b"")
    assert compiled.install("auto", **where) == []


def test_settings_routed_exactly_the_modules_loaded_compiled():
    import ingest.adapters.langfuse  # noqa: F401  (the hot path: imported by the app anyway)
    import ingest.adapters.otel.mapping  # noqa: F401
    import ingest.writer  # noqa: F401

    loaded_compiled = sorted(
        name
        for name in compiled.MODULES
        if name in sys.modules
        and isinstance(sys.modules[name].__spec__.loader, importlib.machinery.ExtensionFileLoader)
    )
    routed_and_loaded = sorted(name for name in settings.COMPILED_MODULES_LOADED if name in sys.modules)
    assert loaded_compiled == routed_and_loaded
    every_module_built = all(compiled.built_path(name).exists() for name in compiled.MODULES)
    if settings.COMPILED_MODULES != "off" and every_module_built:
        assert "ingest.adapters.otel.mapping" in loaded_compiled


# Decodes and maps the requests in the folder given, checks and redacts their records, and prints how
# the hot path ran, a digest of everything produced (records, rejections, errors, redactions) and how
# many records there were.
_PARITY_SCRIPT = textwrap.dedent(
    """
    import dataclasses, hashlib, sys
    from datetime import UTC, datetime
    from pathlib import Path
    import django, orjson
    django.setup()
    from config import compiled
    from ingest import contract
    from ingest.adapters.langfuse import parse_batch
    from ingest.adapters.otel.decode import decode_protobuf
    from ingest.adapters.otel.mapping import map_decoded
    from privacy import engine
    from tenancy.http.body import loads_json

    redactor = engine.default_redactor()

    digest, count, refused, found = hashlib.sha256(), 0, 0, 0
    at = datetime(2026, 12, 7, tzinfo=UTC)
    for path in sorted(Path(sys.argv[1]).iterdir()):
        body = path.read_bytes()
        if path.suffix == ".langfuse":
            parsed = parse_batch(loads_json(body)["batch"])
        else:
            parsed = map_decoded(decode_protobuf(body), received_at=at)
        records = [*parsed.traces, *parsed.observations, *parsed.scores]
        problems = [str(p) for p in contract.check_records(records)]
        fields = {f.name: getattr(parsed, f.name) for f in dataclasses.fields(parsed)}
        digest.update(orjson.dumps([fields, problems], default=repr, option=orjson.OPT_SORT_KEYS))
        # Then PII redaction of every record (all detectors, mask), as the redact stage runs it.
        for kind, batch_records in (("trace", parsed.traces), ("observation", parsed.observations)):
            for record in batch_records:
                counts = redactor.redact_record(record, engine.RECORD_FIELDS[kind])
                found += sum(n for per_field in counts.values() for n in per_field.values())
                digest.update(orjson.dumps([record, counts], default=repr, option=orjson.OPT_SORT_KEYS))
        count += len(records)
        refused += sum(p != "None" for p in problems) + len(getattr(parsed, "rejected", ())) + len(getattr(parsed, "errors", ()))
    print(compiled.status(), "|", digest.hexdigest(), "|", count, "|", refused, "|", found)
    """
)


def _parity_run(mode: str, folder: Path) -> list[str]:
    env = {
        **os.environ,
        "COMPILED_MODULES": mode,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", _PARITY_SCRIPT, str(folder)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [part.strip() for part in done.stdout.strip().splitlines()[-1].split("|")]


@pytest.mark.skipif(
    not all(compiled.built_path(name).exists() for name in compiled.MODULES),
    reason="the hot path is not built here (`make compile` needs Cython and a C compiler)",
)
def test_compiled_and_interpreted_map_the_same_requests_to_the_same_records(tmp_path):
    from bench.bench_ingest import build_turn_batches
    from ingest.adapters.otel.testing import make_request, make_span

    for profile in ("openinference", "genai", "langfuse"):
        for index, batch in enumerate(build_turn_batches(profile, 6, 11)):
            (tmp_path / f"{profile}-{index}.{batch.protocol}").write_bytes(batch.body)
    # Refusals, PII and deep values too: a span with an e-mail, a phone number and a credential, one
    # with a bad id, one with a deeply nested attribute.
    deep: dict = {"v": "x"}
    for _ in range(25):
        deep = {"k": deep}
    spans = [
        make_span(
            name="ok",
            span_id="a" * 16,
            attributes={
                "input.value": "mail jane.doe@example.com or call +1 415 555 2671",
                "metadata": '{"api_key": "sk-live-1234567890"}',
            },
        ),
        make_span(name="bad", span_id="0" * 16),
        make_span(name="deep", span_id="b" * 16, attributes={"a": deep}),
    ]
    (tmp_path / "refusals.otlp").write_bytes(make_request(spans).SerializeToString())

    interpreted = _parity_run("off", tmp_path)
    built = _parity_run("require", tmp_path)
    assert interpreted[0] == "interpreted"
    loaded = built[0].removeprefix("compiled with Cython (").split(" loaded")[0].split(" of ")
    assert loaded[0] == loaded[1], built[0]  # every hot-path module the run imported was compiled
    assert int(interpreted[2]) > 1000
    assert int(interpreted[3]) >= 1  # the bad id
    assert int(interpreted[4]) >= 2  # the e-mail address and the phone number, at least
    assert built[1:] == interpreted[1:]


def test_without_a_compiler_nothing_is_built_and_everything_runs_interpreted(probe_package, monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    said: list[str] = []
    where = {"modules": ("lg_probe.calc",), "root": probe_package, "build_dir": probe_package / ".build"}
    assert compiled.build(**where, say=said.append) == []
    assert said == ["[lookglass] ingest hot path stays interpreted: no C compiler (/nonexistent/cc) on PATH"]
    assert compiled.install("auto", **where) == []
    assert isinstance(_fresh_import().__spec__.loader, importlib.machinery.SourceFileLoader)
