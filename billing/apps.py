from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from billing import limits  # (plan/subscription changes invalidate the limit cache)
        from tenancy import plan_limits

        plan_limits.register(limits.enforce_plan_limits)
