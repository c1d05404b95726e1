from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "privacy"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from privacy import signals  # noqa: F401  (drops cached policies on every change)
        from privacy.exports import delete_project_files
        from tenancy import purge_hooks

        purge_hooks.register(delete_project_files)
