from django.apps import AppConfig


class IngestConfig(AppConfig):
    """The write path: no models of its own, it writes the telemetry tables of `traces` and `feedback`."""

    name = "ingest"
    default_auto_field = "django.db.models.BigAutoField"
