from django.apps import AppConfig


class TracesConfig(AppConfig):
    name = "traces"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.backends.signals import connection_created

        from traces import dbtime

        # Every connection, pooled ones included (Django sends the signal on each check-out): a row
        # holding a timestamp Python cannot represent must not fail the pages that list it.
        connection_created.connect(
            lambda sender, connection, **kwargs: dbtime.register(connection), weak=False,
            dispatch_uid="traces.dbtime",
        )
