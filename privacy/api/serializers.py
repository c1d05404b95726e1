"""Shapes of the redaction API. Policy contents are validated by the model (through
`privacy.services.redaction_policy_update`), so the messages are the same in the API, the
console and the services; here only types and unknown keys are checked."""

from __future__ import annotations

import json

import orjson
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from privacy.detectors import DETECTORS
from privacy.policy import DEFAULT_PHONE_REGION, RedactionMode

MAX_TEXT_CHARS = 1_000_000


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not know: a misspelt setting must not be silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {key: ["unknown field; known: " + ", ".join(sorted(self.fields))] for key in unknown}
                )
        return super().to_internal_value(data)


@extend_schema_field(
    {"type": "object", "additionalProperties": {"type": "string", "enum": list(RedactionMode.values)}}
)
class DetectorModesField(serializers.JSONField):
    pass


@extend_schema_field(
    {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "label": {"type": "string", "description": "2–32 characters A–Z, 0–9 or _, starting with a letter"},
                "pattern": {"type": "string", "description": "RE2 syntax (linear time; no lookaround)"},
                "mode": {"type": "string", "enum": list(RedactionMode.values)},
            },
            "required": ["label", "pattern"],
        },
    }
)
class CustomPatternsField(serializers.JSONField):
    pass


class RedactionPolicySerializer(serializers.Serializer):
    """The policy as it applies now; a project that never had one reads as `configured: false`."""

    project_id = serializers.UUIDField()
    configured = serializers.BooleanField(help_text="False until a policy is saved; then nothing is redacted.")
    enabled = serializers.BooleanField(help_text="Whether ingestion redacts before storing.")
    default_mode = serializers.ChoiceField(choices=RedactionMode.choices)
    detector_modes = DetectorModesField(help_text="Detectors whose mode differs from default_mode.")
    effective_modes = DetectorModesField(help_text="The mode of every built-in detector.")
    phone_default_region = serializers.CharField(allow_blank=True)
    custom_patterns = CustomPatternsField()
    version = serializers.IntegerField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)


class RedactionPolicyWriteSerializer(StrictSerializer):
    enabled = serializers.BooleanField(required=False)
    default_mode = serializers.ChoiceField(choices=RedactionMode.choices, required=False)
    detector_modes = DetectorModesField(
        required=False,
        help_text=f"{{detector: mode}}; detectors: {', '.join(DETECTORS)}.",
    )
    phone_default_region = serializers.CharField(
        required=False, allow_blank=True, max_length=8,
        help_text="ISO 3166 region for numbers without +country code; empty = international numbers only.",
    )
    custom_patterns = CustomPatternsField(required=False, help_text="[{label, pattern, mode}], at most 20.")
    rotate_salt = serializers.BooleanField(
        required=False, default=False, write_only=True,
        help_text="New pseudonymization key: tokens produced from now on no longer match earlier ones.",
    )

    # PUT replaces the policy: what it leaves out goes back to these.
    DEFAULTS = {
        "enabled": True,
        "default_mode": RedactionMode.MASK.value,
        "detector_modes": {},
        "phone_default_region": DEFAULT_PHONE_REGION,
        "custom_patterns": [],
    }


@extend_schema_field(OpenApiTypes.ANY)
class AnyJSONField(serializers.JSONField):
    pass


class RedactRequestSerializer(StrictSerializer):
    text = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=MAX_TEXT_CHARS,
        help_text="A text to redact.",
    )
    value = AnyJSONField(
        required=False, allow_null=True, help_text="Or any JSON value: every string inside is redacted."
    )

    def validate(self, attrs):
        if ("text" in attrs) == ("value" in attrs):
            raise serializers.ValidationError({"non_field_errors": ["send exactly one of `text` or `value`"]})
        if "value" in attrs and _json_size(attrs["value"]) > MAX_TEXT_CHARS:
            raise serializers.ValidationError({"value": [f"at most {MAX_TEXT_CHARS} bytes of JSON"]})
        return attrs


def _json_size(value) -> int:
    try:
        return len(orjson.dumps(value))
    except (orjson.JSONEncodeError, TypeError):  # integers beyond 64 bits
        return len(json.dumps(value))


class RedactResponseSerializer(serializers.Serializer):
    text = serializers.CharField(required=False, help_text="When `text` was sent.")
    value = AnyJSONField(required=False, help_text="When `value` was sent.")
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Findings by detector.")
    policy = serializers.DictField(
        help_text="source (project or defaults), version, and applied_at_ingest (whether ingestion "
        "applies this policy now)."
    )


# --- erasure requests and retention ----------------------------------------------------------------


class ErasureRequestSerializer(serializers.Serializer):
    """An erasure request's receipt: the subject only as its keyed hash."""

    id = serializers.UUIDField()
    project_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["queued", "running", "done", "failed"])
    kind = serializers.ChoiceField(choices=["user", "session", "traces"])
    subject_hash = serializers.CharField()
    subject_count = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField())
    verification = serializers.DictField(child=serializers.IntegerField())
    requested_by = serializers.EmailField(source="requested_by.email", allow_null=True, default=None)
    requested_via = serializers.CharField()
    error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    verified_at = serializers.DateTimeField(allow_null=True)
    grace_until = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)


class ErasureRequestCreateSerializer(serializers.Serializer):
    """Exactly one of `user_id`, `session_id`, `trace_ids`."""

    user_id = serializers.CharField(required=False, max_length=1000)
    session_id = serializers.CharField(required=False, max_length=1000)
    trace_ids = serializers.ListField(child=serializers.CharField(max_length=1000), required=False,
                                      min_length=1, max_length=10_000)
    grace_period_days = serializers.IntegerField(required=False, min_value=0, max_value=90)

    def validate(self, attrs):
        given = [name for name in ("user_id", "session_id", "trace_ids") if name in attrs]
        if len(given) != 1:
            raise serializers.ValidationError("give exactly one of user_id, session_id, trace_ids")
        return attrs

    def subject(self) -> tuple[str, list[str]]:
        data = self.validated_data
        if "trace_ids" in data:
            return "traces", list(data["trace_ids"])
        if "user_id" in data:
            return "user", [data["user_id"]]
        return "session", [data["session_id"]]


class RetentionSerializer(serializers.Serializer):
    project_id = serializers.UUIDField()
    days = serializers.IntegerField(allow_null=True, help_text="The project's own setting (null: the plan's, or keep)")
    payload_days = serializers.IntegerField(allow_null=True)
    effective_days = serializers.IntegerField(allow_null=True, help_text="What the nightly job enforces")
    effective_payload_days = serializers.IntegerField(allow_null=True)
    source = serializers.ChoiceField(choices=["project", "plan", "none"])
    updated_at = serializers.DateTimeField(allow_null=True)


class RetentionWriteSerializer(serializers.Serializer):
    days = serializers.IntegerField(allow_null=True, required=False, min_value=1, max_value=3650)
    payload_days = serializers.IntegerField(allow_null=True, required=False, min_value=1, max_value=3650)


class RetentionRunSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    cutoff = serializers.DateTimeField(allow_null=True)
    payload_cutoff = serializers.DateTimeField(allow_null=True)
    counts = serializers.DictField(child=serializers.IntegerField())
    error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class ReredactionRunSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    counts = serializers.JSONField(help_text="examined, changed, emptied (fail closed), findings by detector")
    error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class ReredactionCreateSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()


# --- exports ---------------------------------------------------------------------------------------


class ExportProgressSerializer(serializers.Serializer):
    traces_done = serializers.IntegerField(help_text="Traces written so far")
    traces_total = serializers.IntegerField(
        allow_null=True, help_text="Traces the export matched when its build started (null before)")
    percent = serializers.IntegerField(allow_null=True, help_text="0-100; 100 once done")

    def to_representation(self, export):
        return {"traces_done": export.traces_done, "traces_total": export.traces_total, "percent": export.percent}


class ExportSerializer(serializers.Serializer):
    """An export: what it covers, how far its build is, and once done a signed download link."""

    id = serializers.UUIDField()
    project_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["queued", "running", "done", "failed"])
    since = serializers.DateTimeField(allow_null=True)
    until = serializers.DateTimeField(allow_null=True)
    user_hash = serializers.CharField(
        allow_null=True, help_text="One end user's export: the keyed hash of the user id (the id is never kept here)")
    progress = ExportProgressSerializer(source="*")
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Rows per table")
    size = serializers.IntegerField(allow_null=True, help_text="Bytes of the gzip file")
    error = serializers.CharField(allow_blank=True)
    requested_by = serializers.EmailField(source="requested_by.email", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    erased_at = serializers.DateTimeField(allow_null=True, help_text="Its file deleted by an erasure request")
    download_url = serializers.SerializerMethodField(
        help_text="Signed link valid EXPORT_LINK_SECONDS (a new one on every read); null until done or once erased")

    def get_download_url(self, export) -> str | None:
        from privacy.exports import download_url

        return download_url(self.context["request"], export)

    def to_representation(self, export):
        data = super().to_representation(export)
        data["user_hash"] = export.user_hash or None
        return data


class ExportCreateSerializer(serializers.Serializer):
    """The whole project, a time range (`since`/`until`, either end open), or one end user's data."""

    since = serializers.DateTimeField(required=False, allow_null=True)
    until = serializers.DateTimeField(required=False, allow_null=True)
    user_id = serializers.CharField(required=False, max_length=1000, help_text="Only this end user's traces")
