from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from billing import limits  # noqa: F401  (plan/subscription changes invalidate the limit cache)
