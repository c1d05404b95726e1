"""Fill the daily call rollup from the hourly one for the calls stored before it existed.

0005 added the daily table, written from then on in the same statement as the hourly rows; the
dashboards and the quality series read whole days from it. Without this, a deployment upgrading
would see every day before the upgrade as empty there. The daily rows are the hourly ones summed
by UTC day (histograms element-wise), exactly what the writer adds. A project that already has
daily rows (written since 0005) is left alone, so a re-run never counts twice.
"""

from django.db import migrations

BUCKETS = 80  # monitoring.models.HISTOGRAM_BUCKETS when this was written (the arrays' fixed size)
DIMS = "feature, trace_name, model, environment, release, prompt_name, prompt_version"
SUMS = ("calls", "errors", "refusals", "input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens",
        "reasoning_tokens", "total_tokens", "cost", "unpriced_calls", "latency_count", "latency_us_sum",
        "ttft_count", "ttft_us_sum")


def _hist(column: str) -> str:
    return "ARRAY[" + ", ".join(f"COALESCE(sum(h.{column}[{i}]), 0)::bigint" for i in range(1, BUCKETS + 1)) + "]"


FORWARD = (
    f"INSERT INTO monitoring_dailyrollup (project_id, day, {DIMS}, {', '.join(SUMS)}, latency_hist, ttft_hist) "
    f"SELECT h.project_id, (h.hour AT TIME ZONE 'UTC')::date AS day, {', '.join('h.' + d for d in DIMS.split(', '))}, "
    f"{', '.join(f'sum(h.{c})' for c in SUMS)}, {_hist('latency_hist')}, {_hist('ttft_hist')} "
    "FROM monitoring_hourlyrollup AS h "
    "WHERE NOT EXISTS (SELECT 1 FROM monitoring_dailyrollup AS d WHERE d.project_id = h.project_id) "
    f"GROUP BY h.project_id, day, {', '.join('h.' + d for d in DIMS.split(', '))}"
)


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0005_daily_call_rollup"),
    ]

    operations = [migrations.RunSQL(FORWARD, migrations.RunSQL.noop, hints={"plane": "data"})]
