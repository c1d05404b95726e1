from datetime import datetime
from datetime import timezone as dt_timezone

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from ingest.services import observations_reprice
from tenancy.models import Project


def _moment(value: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise ValueError(f"not a date or an ISO datetime: {value!r}")
        parsed = datetime.combine(day, datetime.min.time())
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=dt_timezone.utc)


class Command(BaseCommand):
    help = (
        "Re-price a project's stored calls over a time range with today's price table (catalog and the "
        "project's overrides, each call priced at its own start time), e.g. after adding a model's price. "
        "Costs sent by the client are never changed. Recorded in the organization's audit log."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project id")
        parser.add_argument("--since", required=True, help="start (inclusive), YYYY-MM-DD or ISO datetime (UTC if no zone)")
        parser.add_argument("--until", help="end (exclusive); default now")
        parser.add_argument("--model", action="append", default=[], help="only calls with this model name (repeatable)")

    def handle(self, *args, **options):
        try:
            since = _moment(options["since"])
            until = _moment(options["until"]) if options["until"] else timezone.now()
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        project = Project.objects.select_related("organization").filter(id=_uuid(options["project"])).first()
        if project is None:
            raise CommandError(f"no project {options['project']!r}")
        try:
            report = observations_reprice(
                project=project, actor="manage.py reprice", since=since, until=until, models=options["model"] or None,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(
            f"{project}: {report.examined} calls examined, {report.repriced} re-priced "
            f"({report.newly_priced} newly priced), {report.still_unpriced} still without a price"
        )


def _uuid(value: str):
    import uuid

    try:
        return uuid.UUID(value)
    except ValueError:
        raise CommandError(f"not a project id: {value!r}") from None
