"""Per-version metrics of a prompt, for operators: `manage.py prompt_compare --project <id> --name <name>`."""

import json

from django.core.management.base import BaseCommand, CommandError

from prompts.errors import InvalidRequest
from prompts.selectors import compare_versions, prompt_by_name
from prompts.views import metrics_payload, parse_window
from tenancy.models import Project


class Command(BaseCommand):
    help = "Compare a prompt's versions (calls, error/refusal rates, latency, cost, feedback, scores)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project id")
        parser.add_argument("--name", required=True, help="prompt name")
        parser.add_argument("--from", dest="since", default=None, help="ISO 8601 start (default: 7 days before --to)")
        parser.add_argument("--to", dest="until", default=None, help="ISO 8601 end (default: now)")

    def handle(self, *args, **options):
        project = Project.objects.filter(pk=options["project"]).first() if _uuid(options["project"]) else None
        if project is None:
            raise CommandError(f"no project with id {options['project']!r}")
        try:
            since, until = parse_window({"from": options["since"], "to": options["until"]})
        except InvalidRequest as exc:
            raise CommandError(exc.message) from None
        prompt = prompt_by_name(project=project, name=options["name"])
        if prompt is None:
            raise CommandError(f"project {project} has no prompt named {options['name']!r}")
        rows = compare_versions(project=project, prompt=prompt, since=since, until=until)
        payload = {
            "name": prompt.name,
            "from": since.isoformat(),
            "to": until.isoformat(),
            "versions": [metrics_payload(row, camel=False) for row in rows],
        }
        self.stdout.write(json.dumps(payload, indent=2))


def _uuid(value) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
