from datetime import date

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from pricing import library
from pricing.models import start_of_today
from pricing.services import DEFAULT_CATALOG_FILE, catalog_file_sync, catalog_sync


class Command(BaseCommand):
    help = (
        "Bring the model price catalog up to the installed price library (genai-prices): new models and "
        "changed prices become new rows dated where the library dates the change, or else --since "
        "(default today). Never rewrites or deletes a row; never touches project overrides. With "
        "--write-file, update the shipped data file instead of the database (the build step)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", type=date.fromisoformat, help="date for undated price changes (YYYY-MM-DD)")
        parser.add_argument(
            "--write-file", nargs="?", const=str(DEFAULT_CATALOG_FILE), default=None,
            help="update this data file (default: the shipped one) instead of the database",
        )

    def handle(self, *args, **options):
        since = options["since"] or start_of_today().date()
        try:
            if options["write_file"]:
                report = catalog_file_sync(path=options["write_file"], since=since)
            else:
                report = catalog_sync(since=since)
        except ValidationError as exc:
            raise CommandError("the price catalog was not synced:\n  " + "\n  ".join(exc.messages)) from None
        target = options["write_file"] or "the database"
        self.stdout.write(
            f"genai-prices {library.library_version()} → {target}: {len(report.added)} rows added "
            f"({len(report.new_models)} new models, {len(report.changed_models)} changed prices)"
        )
        for name in report.new_models:
            self.stdout.write(f"  new: {name}")
        for name in report.changed_models:
            self.stdout.write(f"  changed: {name}")
        for note in report.kept_on_same_date:
            self.stdout.write(f"  kept (a row already starts that day): {note}")
        if options["verbosity"] > 1:
            for note in report.skipped:
                self.stdout.write(f"  skipped: {note}")
