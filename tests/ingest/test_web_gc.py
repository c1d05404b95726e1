"""The web process keeps its startup heap out of the garbage collector's reach (`config/wsgi.py`).

With CPython's defaults a full collection walked every object Django and the apps had loaded, every few
100-span requests (a request's records are promoted to the old generation before it answers): about
100 µs of web CPU per span on issue 13's OpenInference workload, as much as mapping the spans. Checked in
a fresh interpreter that loads the WSGI application as gunicorn does."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROBE = """
import gc, json
import config.wsgi
json.dump({"frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects()),
           "threshold": gc.get_threshold(), "ingest_loaded": "ingest.adapters.otel.mapping" in __import__("sys").modules},
          __import__("sys").stdout)
"""


def test_the_wsgi_application_freezes_its_startup_heap_and_collects_young_objects_less_often():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    ).stdout
    import json

    state = json.loads(out.strip().splitlines()[-1])
    # The views (and so the ingest path's modules) are imported before the freeze, not at the first request.
    assert state["ingest_loaded"]
    # What a full collection still walks is a small fraction of what the process holds.
    assert state["frozen"] > 100_000
    assert state["tracked"] < state["frozen"] / 20
    assert state["threshold"][0] >= 10_000
