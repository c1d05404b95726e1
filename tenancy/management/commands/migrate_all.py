from django.core.management import call_command
from django.core.management.base import BaseCommand

from tenancy.regions import data_databases


class Command(BaseCommand):
    help = "Apply migrations to the control-plane database and to every region database."

    def handle(self, *args, **options):
        verbosity = options["verbosity"]
        for alias in dict.fromkeys(["default", *data_databases()]):
            if verbosity:
                self.stdout.write(f"migrating database {alias!r}")
            call_command("migrate", database=alias, interactive=False, verbosity=max(verbosity - 1, 0))
