"""A/B of the feedback page and a prompt's version metrics page on a seeded console project, old and
new read alternated round by round in one process (issue 16, fifth session):

- feedback: the score views by the scored observation from the score rollups (new) or from the raw
  rows (old: `monitoring.metrics.SCORE_OBSERVATION_COLUMNS` emptied, which is the old
  `score_rollups_hold`);
- prompt: the attached scores read once (by trace) plus the partial index of scores on observations,
  without a sort to deduplicate (new), or as main read them (old: `OLD_ATTACHED`).

    EMBEDDED_PG_PORT=… EMBEDDED_REDIS_PORT=… .venv/bin/python -m config.devstack exec -- \
        .venv/bin/python bench/console_scores_ab.py console-sql-1000000 7 feedback,prompt

The project and its bench user come from `make bench-console ARGS="--observations N"`.
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.test import Client  # noqa: E402

from monitoring import metrics  # noqa: E402
from prompts import selectors as prompt_selectors  # noqa: E402
from tenancy.models import Project, User  # noqa: E402

# The attached-scores CTEs as main had them (every score of the project read twice when hashed, and a
# UNION sorting every attached score to deduplicate).
OLD_ATTACHED = """    attached AS (
        SELECT c.prompt_version, s.id, s.name, s.value, s.source, s.data_type
        FROM calls c
        JOIN feedback_score s ON s.project_id = %(project)s AND s.trace_id = c.trace_id
        UNION
        SELECT c.prompt_version, s.id, s.name, s.value, s.source, s.data_type
        FROM calls c
        JOIN feedback_score s ON s.project_id = %(project)s AND s.observation_id = c.id
    )
"""


def main(name: str, rounds: int, pages: list[str]) -> None:
    project = Project.objects.get(name=name)
    user = User.objects.get(email="console-bench@lookglass.local")
    client = Client(HTTP_HOST=(settings.ALLOWED_HOSTS or ["127.0.0.1"])[0].lstrip("."))
    client.force_login(user)
    urls = {"feedback": f"/console/p/{project.id}/feedback/", "prompt": f"/console/p/{project.id}/prompts/answer-0/"}
    held = dict(metrics.SCORE_OBSERVATION_COLUMNS)
    new_sql = prompt_selectors._SCORES_SQL
    old_sql = (new_sql[:new_sql.index("    versions_of_trace AS")] + OLD_ATTACHED
               + new_sql[new_sql.index("    SELECT prompt_version, name,"):])
    times = {(page, variant): [] for page in pages for variant in ("old", "new")}
    for page in pages:
        client.get(urls[page])  # warm
    for _ in range(rounds):
        for variant in ("old", "new"):
            metrics.SCORE_OBSERVATION_COLUMNS.clear()
            if variant == "new":
                metrics.SCORE_OBSERVATION_COLUMNS.update(held)
            prompt_selectors._SCORES_SQL = new_sql if variant == "new" else old_sql
            for page in pages:
                began = time.perf_counter()
                response = client.get(urls[page])
                times[(page, variant)].append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200, (page, response.status_code)
    for (page, variant), values in times.items():
        print(f"{page:9s} {variant}: median {statistics.median(values):7.1f} ms, min {min(values):7.1f}, "
              f"max {max(values):7.1f} (n={len(values)})")
    print("load average %.1f %.1f %.1f" % os.getloadavg())


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","))
