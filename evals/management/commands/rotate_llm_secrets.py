"""Re-encrypt every stored LLM-connection secret under the first of LLM_SECRET_KEYS.

Rotation: put the new key first in LLM_SECRET_KEYS (keep the old one after it), restart, run this,
then remove the old key."""

from django.core.management.base import BaseCommand
from django.db import transaction

from evals import eval_services


class Command(BaseCommand):
    help = "Re-encrypt LLM-connection secret keys under the newest key of LLM_SECRET_KEYS."

    def handle(self, *args, **options):
        with transaction.atomic():
            count = eval_services.rotate_connection_secrets()
        self.stdout.write(f"re-encrypted {count} LLM connection secret(s)")
