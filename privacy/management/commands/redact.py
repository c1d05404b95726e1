import json
import sys
import uuid

from django.core.management.base import BaseCommand, CommandError

from privacy.engine import Redactor, default_redactor, get_policy
from privacy.models import RedactionPolicy
from tenancy.models import Project


class Command(BaseCommand):
    help = (
        "Redact a text with a project's PII policy (or the defaults: every detector, mask mode) and print "
        "the result and the counts per detector, so a team can check what its policy removes."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", help="project id whose redaction policy to use")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--text", help="the text to redact")
        source.add_argument("--file", help="a file to redact ('-' for standard input)")
        parser.add_argument("--json", action="store_true", help="print one JSON object, for scripts")

    def handle(self, *args, **options):
        text = options["text"] if options["text"] is not None else self._read(options["file"])
        redactor, source = self._redactor(options["project"])
        if redactor is None:
            redacted, counts = text, {}
        else:
            redacted, counts = redactor.redact_text(text)
        counts = dict(sorted(counts.items()))
        if options["json"]:
            self.stdout.write(json.dumps({"policy": source, "text": redacted, "counts": counts}, ensure_ascii=False))
            return
        self.stdout.write(redacted)
        self.stderr.write(f"policy: {source}")
        if counts:
            for detector, n in counts.items():
                self.stderr.write(f"  {detector}: {n}")
        else:
            self.stderr.write("  nothing redacted")

    def _read(self, path: str) -> str:
        if path == "-":
            return sys.stdin.read()
        try:
            with open(path, encoding="utf-8") as f:
                return f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None

    def _redactor(self, project_id: str | None) -> tuple[Redactor | None, str]:
        if project_id is None:
            return default_redactor(), "defaults (every detector, mask)"
        try:
            project = Project.objects.get(id=uuid.UUID(project_id))
        except (ValueError, Project.DoesNotExist):
            raise CommandError(f"no project with id {project_id!r}") from None
        policy = get_policy(project)
        if policy is None:
            exists = RedactionPolicy.objects.filter(project=project).exists()
            return None, f"project {project.id}: redaction is {'disabled' if exists else 'not configured'} (off)"
        return Redactor.from_policy(policy), f"project {project.id}: policy v{policy.version}"
