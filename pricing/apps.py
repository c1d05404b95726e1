from django.apps import AppConfig


class PricingConfig(AppConfig):
    name = "pricing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from pricing import signals  # noqa: F401  (connects the price-change receivers)
