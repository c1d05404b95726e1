"""The PII redaction policy of a project (control plane)."""

from django.db import models
from django.utils import timezone

from privacy import policy as redaction_policy
from tenancy.planes import Plane


class RedactionPolicy(models.Model):
    """A project's PII redaction settings. Control plane: it is configuration, not customer content.

    No row, or `enabled=False`, means redaction is off. Saving bumps `version`, which retires the
    compiled redactors and the cached copy (see `privacy.engine`; privacy/signals.py drops the cached
    copy on every save and delete). Writes go through `privacy.services.redaction_policy_update`
    (validated and audited)."""

    PLANE = Plane.CONTROL

    project = models.OneToOneField("tenancy.Project", on_delete=models.CASCADE, related_name="redaction_policy")
    enabled = models.BooleanField(default=True)
    # Mode of every detector without an entry in `detector_modes`.
    default_mode = models.CharField(
        max_length=16, choices=redaction_policy.RedactionMode.choices, default=redaction_policy.RedactionMode.MASK
    )
    detector_modes = models.JSONField(default=dict, blank=True)  # detector name -> mode
    # Region for numbers written without +country code ("" = only international numbers).
    phone_default_region = models.CharField(max_length=2, blank=True, default=redaction_policy.DEFAULT_PHONE_REGION)
    custom_patterns = models.JSONField(default=list, blank=True)  # [{"label", "pattern", "mode"}]
    # Random per policy; with the server pepper and project id it keys pseudonym HMACs.
    pseudonym_salt = models.CharField(max_length=64, default=redaction_policy.new_pseudonym_salt, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        # Moved here from traces/; the table kept its name (no data moved).
        db_table = "traces_redactionpolicy"
        verbose_name_plural = "redaction policies"

    def __str__(self) -> str:
        return f"redaction policy of project {self.project_id} (v{self.version})"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors = {}
        for name, cleaner in (
            ("detector_modes", redaction_policy.clean_detector_modes),
            ("custom_patterns", redaction_policy.clean_custom_patterns),
            ("phone_default_region", redaction_policy.clean_phone_region),
        ):
            try:
                setattr(self, name, cleaner(getattr(self, name)))
            except ValidationError as exc:
                errors[name] = exc.messages
        if self.default_mode not in redaction_policy.MODES:
            errors["default_mode"] = [f"mode must be one of {', '.join(sorted(redaction_policy.MODES))}"]
        if not self.pseudonym_salt:
            errors["pseudonym_salt"] = ["a pseudonymization salt is required"]
        if errors:
            raise ValidationError(errors)

    def mode_for(self, detector: str) -> str:
        return self.detector_modes.get(detector, self.default_mode)

    def save(self, *args, **kwargs):
        if not self._state.adding:
            self.version += 1
        self.updated_at = timezone.now()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "version", "updated_at"}
        super().save(*args, **kwargs)

    def cache_payload(self) -> dict:
        return {
            "id": self.id, "project_id": self.project_id, "enabled": self.enabled, "default_mode": self.default_mode,
            "detector_modes": self.detector_modes, "phone_default_region": self.phone_default_region,
            "custom_patterns": self.custom_patterns, "pseudonym_salt": self.pseudonym_salt,
            "version": self.version, "created_at": self.created_at, "updated_at": self.updated_at,
        }
