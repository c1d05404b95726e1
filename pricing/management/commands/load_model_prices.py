from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from pricing.services import DEFAULT_CATALOG_FILE, catalog_load, read_catalog_file


class Command(BaseCommand):
    help = (
        "Load or update the global model price catalog from a JSON data file. Safe to run on every "
        "start: rows are upserted by (model_name, effective_from), and rows edited by a person are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("--file", default=str(DEFAULT_CATALOG_FILE), help="data file (default: the shipped one)")

    def handle(self, *args, **options):
        try:
            report = catalog_load(entries=read_catalog_file(options["file"]))
        except ValidationError as exc:
            raise CommandError("the price catalog was not loaded:\n  " + "\n  ".join(exc.messages)) from None
        self.stdout.write(
            f"model prices: {report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.kept_custom} kept (edited locally)"
        )
        if report.kept_custom_names:
            self.stdout.write("edited locally, not overwritten: " + ", ".join(sorted(set(report.kept_custom_names))))
