"""Shapes of the management API. Validation of input lives here; writes go through `tenancy.services`."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenancy.models import ApiKey, AuditLogEntry, Invitation, Membership, Organization, Project, Role

PROJECT_CANNOT_MOVE = "a project cannot move region"


class OrganizationSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(help_text="Your role in the organization.")

    class Meta:
        model = Organization
        fields = ["id", "name", "created_at", "role"]
        read_only_fields = ["id", "created_at", "role"]

    @extend_schema_field(serializers.ChoiceField(choices=Role.choices, allow_null=True))
    def get_role(self, organization) -> str | None:
        # Looked up once per request by the view (see `roles`), never per row.
        return self.context.get("roles", {}).get(organization.id)


class OrganizationWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("the name cannot be blank")
        return value


class OrganizationRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name"]


class MemberSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="user_id", read_only=True, help_text="The member's user id.")
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.name", read_only=True)
    joined_at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "name", "role", "joined_at"]
        read_only_fields = fields


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class MyMembershipSerializer(serializers.ModelSerializer):
    organization = OrganizationRefSerializer(read_only=True)
    joined_at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Membership
        fields = ["organization", "role", "joined_at"]
        read_only_fields = fields


class MeSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    email = serializers.EmailField(read_only=True)
    name = serializers.CharField(read_only=True)
    is_superuser = serializers.BooleanField(read_only=True)
    memberships = MyMembershipSerializer(many=True, read_only=True)


class InvitationSerializer(serializers.ModelSerializer):
    """Never carries the token: it exists only in the email sent to the invitee."""

    invited_by = serializers.EmailField(
        source="invited_by.email", read_only=True, allow_null=True, default=None
    )
    status = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "role",
            "status",
            "invited_by",
            "created_at",
            "expires_at",
            "accepted_at",
            "revoked_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=["pending", "accepted", "revoked", "expired"]))
    def get_status(self, invitation) -> str:
        if invitation.accepted_at is not None:
            return "accepted"
        if invitation.revoked_at is not None:
            return "revoked"
        if invitation.expires_at <= timezone.now():
            return "expired"
        return "pending"


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class InvitationAcceptSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=200, trim_whitespace=True)


class ProjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = ["id", "name", "region", "created_at"]
        read_only_fields = fields


def _unique_project_name(organization, name: str, exclude=None) -> None:
    existing = Project.objects.filter(organization=organization, name=name)
    if exclude is not None:
        existing = existing.exclude(pk=exclude.pk)
    if existing.exists():
        raise serializers.ValidationError("a project with this name already exists in the organization")


class ProjectCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    region = serializers.ChoiceField(
        choices=[], required=False, help_text="Defaults to the server's default region."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Read per instance so the choices follow the running configuration, not import time.
        self.fields["region"].choices = list(settings.DATA_REGIONS)

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("the name cannot be blank")
        _unique_project_name(self.context["organization"], value)
        return value


class ProjectUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    region = serializers.CharField(
        required=False, help_text="Read-only: accepted only when it equals the project's current region."
    )

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("the name cannot be blank")
        _unique_project_name(self.instance.organization, value, exclude=self.instance)
        return value

    def validate_region(self, value: str) -> str:
        if value != self.instance.region:
            raise serializers.ValidationError(PROJECT_CANNOT_MOVE)
        return value


class ApiKeySerializer(serializers.ModelSerializer):
    """What a key looks like after creation: identifiable, never usable."""

    display_secret = serializers.CharField(read_only=True)
    is_active = serializers.BooleanField(read_only=True)
    created_by = serializers.EmailField(
        source="created_by.email", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "public_key",
            "display_secret",
            "note",
            "created_by",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "is_active",
        ]
        read_only_fields = fields


class ApiKeyCreatedSerializer(ApiKeySerializer):
    secret_key = serializers.SerializerMethodField(help_text="Shown once, in this response only.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "secret_key"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_secret_key(self, api_key) -> str:
        return self.context["secret_key"]


class ApiKeyCreateSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("must be in the future")
        return value


class AuditLogEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditLogEntry
        fields = ["id", "created_at", "action", "actor_id", "actor_email", "target_type", "target_id", "data"]
        read_only_fields = fields
