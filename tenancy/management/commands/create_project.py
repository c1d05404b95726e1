import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenancy.services import project_bootstrap


class Command(BaseCommand):
    help = "Create (or reuse) an organization and project and issue a new API key pair."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization name")
        parser.add_argument("--project", required=True, help="project name")
        parser.add_argument("--region", default=None, help="data region (default: DEFAULT_REGION)")
        parser.add_argument("--note", default="created by manage.py create_project")
        parser.add_argument("--json", action="store_true", help="print one JSON object, for scripts")

    def handle(self, *args, **options):
        region = options["region"]
        if region is not None and region not in settings.DATA_REGIONS:
            raise CommandError(f"unknown region {region!r}; configured: {', '.join(settings.DATA_REGIONS)}")
        try:
            project, api_key, secret = project_bootstrap(
                organization_name=options["org"], project_name=options["project"], region=region,
                note=options["note"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        result = {
            "organization_id": str(project.organization_id),
            "project_id": str(project.id),
            "region": project.region,
            "public_key": api_key.public_key,
            "secret_key": secret,
        }
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            for key, value in result.items():
                self.stdout.write(f"{key:16} {value}")
            self.stdout.write("The secret key is shown only now; store it safely.")
