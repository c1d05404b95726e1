"""Idempotent demo data for `make run`: an organization, a project, an admin user and a key pair."""

import json
import secrets

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from tenancy.models import ApiKey, Membership, Organization, Project, Role, User
from tenancy.services import api_key_create, membership_add, organization_create, project_create

DEMO_ORG = "Demo"
DEMO_PROJECT = "demo"
DEMO_EMAIL = "admin@lookglass.local"
KEY_NOTE = "demo key (make run)"


class Command(BaseCommand):
    help = "Create the demo organization, project, admin user and API key pair if missing, and print them."

    @transaction.atomic
    def handle(self, *args, **options):
        # The demo credentials are kept under .data/ so a second `make run` prints the same ones:
        # the secret key itself is never stored in the database.
        store = settings.BASE_DIR / ".data" / "demo-credentials.json"
        saved = json.loads(store.read_text()) if store.exists() else {}

        organization = Organization.objects.filter(name=DEMO_ORG).first() or organization_create(
            name=DEMO_ORG, owner=None
        )
        project = Project.objects.filter(organization=organization, name=DEMO_PROJECT).first() or project_create(
            organization=organization, name=DEMO_PROJECT, region=settings.DEFAULT_REGION
        )
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None:
            password = saved.get("password") or secrets.token_urlsafe(12)
            user = User.objects.create_superuser(email=DEMO_EMAIL, password=password, name="Demo admin")
            saved["password"] = password
        if not Membership.objects.filter(organization=organization, user=user).exists():
            membership_add(organization=organization, user=user, role=Role.OWNER, actor=None)

        key = ApiKey.objects.active().filter(project=project, public_key=saved.get("public_key", "")).first()
        if key is None or "secret_key" not in saved:
            key, secret = api_key_create(project=project, note=KEY_NOTE)
            saved["public_key"], saved["secret_key"] = key.public_key, secret

        store.parent.mkdir(parents=True, exist_ok=True)
        store.write_text(json.dumps(saved))
        store.chmod(0o600)

        url = settings.PUBLIC_URL.rstrip("/")
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "  Lookglass demo",
                    f"  admin:       {url}/admin/   login {DEMO_EMAIL} / {saved.get('password', '(unchanged)')}",
                    f"  project:     {organization.name} / {project.name}  ({project.id}, region {project.region})",
                    f"  public key:  {saved['public_key']}",
                    f"  secret key:  {saved['secret_key']}",
                    f"  SDK:         LANGFUSE_HOST={url} LANGFUSE_PUBLIC_KEY={saved['public_key']} "
                    f"LANGFUSE_SECRET_KEY={saved['secret_key']}",
                    "",
                ]
            )
        )
