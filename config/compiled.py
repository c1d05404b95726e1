"""The ingest hot path compiled with Cython: the same source files, built as C extension modules.

Why: where the web tier shares its cores with PostgreSQL, its interpreted Python is what bounds
ingest (README, issue 13's rows). Cython compiles the modules below unchanged: no type declarations,
annotations ignored, so the rules still live once, in the `.py` files, and run the same either way
(`tests/tenancy/test_compiled.py` maps the benchmark's requests both ways and compares). It takes
about a quarter of the web tier's CPU per span off in one process.

A build never goes stale: each extension's file name carries a digest of its source and of how it
was compiled, and the import finder below loads it only while the `.py` on disk still has that
digest. An edited module runs interpreted until `python -m config.compiled build` (which `make`
runs before `run`, `test` and the benchmarks) compiles it again; a host without a C compiler or
Cython runs everything interpreted.

`COMPILED_MODULES` (read in `config.settings`, before any of these modules is imported):
`auto` (default: compiled where built and current), `off` (always interpreted: profilers such as
py-spy see inside interpreted frames only), `require` (refuse to start unless every module is
compiled and current: for production images and benchmark figures).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / ".build" / "compiled"
MODES = ("auto", "off", "require")

# What runs per span on every ingest route (PII redaction included), and nothing that defines models,
# views or tasks. A module imported before settings (none of these) could not be routed.
MODULES = (
    "ingest.contract",
    "ingest.limits",
    "ingest.pipeline",
    "ingest.writer",
    "ingest.rollups",
    "ingest.timing",
    "ingest.services",
    "ingest.stages.price",
    "ingest.stages.redact",
    "ingest.rules.conventions",
    "ingest.rules.environment",
    "ingest.rules.ids",
    "ingest.rules.messages",
    "ingest.rules.status",
    "ingest.rules.usage",
    "ingest.rules.values",
    "ingest.adapters.langfuse",
    "ingest.adapters.otel.decode",
    "ingest.adapters.otel.mapping",
    "ingest.adapters.otel.messages",
    "ingest.adapters.otel.services",
    "ingest.adapters.otel.usage",
    "ingest.adapters.otel.values",
    "pricing.pricing",
    "privacy.engine",
    "privacy.detectors",
    "privacy.identifiers",
    "tenancy.http.params",
    "tenancy.http.body",
)

# Plain Python semantics: annotations are documentation here, never C types (`annotation_typing`),
# and functions stay introspectable like Python ones (`binding`). Part of the digest: changing a
# directive rebuilds everything.
DIRECTIVES = {"language_level": 3, "annotation_typing": False, "binding": True}
_BUILD_KEY = repr(sorted(DIRECTIVES.items())).encode() + b"/1"


class CompiledModulesError(Exception):
    pass


def source(name: str, root: Path = ROOT) -> Path:
    return root.joinpath(*name.split(".")).with_suffix(".py")


def declarations(path: Path) -> Path:
    """The module's augmenting `.pxd` beside it (C types for the unchanged `.py`), which Cython reads
    whenever it exists."""
    return path.with_suffix(".pxd")


def digest(path: Path) -> str:
    """Of the source, how it is compiled and its `.pxd` if any: an edited, added or removed `.pxd`
    makes the build stale exactly as an edited `.py` does (Cython compiles both into one module)."""
    content = path.read_bytes() + b"\0" + _BUILD_KEY
    pxd = declarations(path)
    if pxd.exists():
        content += b"\0pxd\0" + pxd.read_bytes()
    return hashlib.sha256(content).hexdigest()[:20]


def built_path(name: str, *, root: Path = ROOT, build_dir: Path = BUILD_DIR) -> Path:
    """Where the extension for the current source of `name` is (whether or not it exists yet)."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    return build_dir / f"{name}.{digest(source(name, root))}{suffix}"


class _Finder(importlib.abc.MetaPathFinder):
    """Loads the listed modules from their current builds; anything else is left to the others."""

    def __init__(self, table: dict[str, Path]):
        self.table = table

    def find_spec(self, fullname, path=None, target=None):
        built = self.table.get(fullname)
        if built is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(built))
        return importlib.util.spec_from_file_location(fullname, built, loader=loader)


def install(mode: str, *, modules=MODULES, root: Path = ROOT, build_dir: Path = BUILD_DIR) -> list[str]:
    """Route the imports of `modules` to their current builds (per `mode`); the names routed."""
    if mode not in MODES:
        raise CompiledModulesError(f"COMPILED_MODULES must be one of {', '.join(MODES)}, not {mode!r}")
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _Finder)]
    if mode == "off":
        return []
    table, missing = {}, []
    for name in modules:
        built = built_path(name, root=root, build_dir=build_dir)
        # One already imported (interpreted) stays so: a process never mixes two copies of a module.
        if built.exists() and name not in sys.modules:
            table[name] = built
        else:
            missing.append(name)
    if mode == "require" and missing:
        raise CompiledModulesError(
            f"COMPILED_MODULES=require, but {len(missing)} of {len(modules)} modules have no current "
            f"build ({', '.join(missing[:3])}{', …' if len(missing) > 3 else ''}): run "
            "`python -m config.compiled build` (needs Cython and a C compiler)"
        )
    if table:
        sys.meta_path.insert(0, _Finder(table))
    return sorted(table)


def status(modules=MODULES) -> str:
    """In words: how the listed modules run in this process (for the benchmarks' reports)."""
    loaded = [name for name in modules if name in sys.modules]
    compiled = [
        name
        for name in loaded
        if isinstance(sys.modules[name].__spec__.loader, importlib.machinery.ExtensionFileLoader)
    ]
    if not compiled:
        return "interpreted"
    return f"compiled with Cython ({len(compiled)} of {len(loaded)} loaded modules)"


def _compiler_missing() -> str | None:
    try:
        import Cython  # noqa: F401
        import setuptools  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed"
    # The compiler setuptools will call: $CC when set (its override), else the one Python was built with.
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler}) on PATH"
    return None


def build(
    *, modules=MODULES, root: Path = ROOT, build_dir: Path = BUILD_DIR, jobs: int = 2, say=print
) -> list[str]:
    """Compile the modules whose current source has no build yet; the names compiled. Without
    Cython or a C compiler: nothing (they run interpreted). A compile error raises."""
    stale = [name for name in modules if not built_path(name, root=root, build_dir=build_dir).exists()]
    if not stale:
        return []
    why = _compiler_missing()
    if why:
        say(f"[lookglass] ingest hot path stays interpreted: {why}")
        return []
    from Cython import Utils as cython_utils
    from Cython.Build import Dependencies, cythonize
    from setuptools import Distribution, Extension

    # Cython remembers per process where it found each file (a module's `.pxd` among them): a second
    # build in one process (the tests) would look for a `.pxd` removed since, or miss one added.
    cython_utils.clear_function_caches()
    Dependencies._dep_tree = None

    say(
        f"[lookglass] compiling {len(stale)} hot-path module(s) with Cython (a minute or two on 2 cores, once)"
    )
    work = build_dir / "work"
    extensions = [
        # -w: the generated C is Cython's, its warnings are not ours to act on.
        Extension(name, [str(source(name, root))], extra_compile_args=["-w"])
        for name in stale
    ]
    extensions = cythonize(
        extensions,
        build_dir=str(work / "c"),
        compiler_directives=DIRECTIVES,
        nthreads=jobs,
        quiet=True,
        force=True,
    )
    # A bare Distribution: the project's own pyproject.toml is not a build description of these.
    command = Distribution({"name": "lookglass-compiled", "ext_modules": extensions}).get_command_obj(
        "build_ext"
    )
    command.build_lib, command.build_temp, command.parallel = str(work / "lib"), str(work / "obj"), jobs
    command.ensure_finalized()
    command.run()
    for extension in extensions:
        target = built_path(extension.name, root=root, build_dir=build_dir)
        for old in build_dir.glob(f"{extension.name}.*{importlib.machinery.EXTENSION_SUFFIXES[0]}"):
            old.unlink()  # earlier sources' builds: never loaded again
        os.replace(command.get_ext_fullpath(extension.name), target)
    return stale


def main(argv: list[str]) -> int:
    if argv[:1] != ["build"]:
        print("usage: python -m config.compiled build", file=sys.stderr)
        return 2
    from config.env import env

    if env.str("COMPILED_MODULES", default="auto") == "off":
        return 0
    try:
        build()
    except Exception as exc:  # a compile error in our sources: the make target fails loudly
        print(
            f"[lookglass] compiling the hot path failed: {type(exc).__name__}: {exc}\n"
            "[lookglass] COMPILED_MODULES=off runs everything interpreted meanwhile",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
