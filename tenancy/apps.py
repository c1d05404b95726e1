from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = "Organizations and projects"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from tenancy import keycache  # noqa: F401  (connects the invalidation signals)
