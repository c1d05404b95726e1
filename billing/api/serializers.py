from rest_framework import serializers

from billing.models import OVERRIDABLE


class LimitsSerializer(serializers.Serializer):
    included_units = serializers.IntegerField(allow_null=True)
    extra_unit_price = serializers.CharField(allow_null=True)
    hard_limit_units = serializers.IntegerField(allow_null=True)
    soft_limit_units = serializers.IntegerField(allow_null=True)
    max_projects = serializers.IntegerField(allow_null=True)
    max_members = serializers.IntegerField(allow_null=True)
    retention_days = serializers.IntegerField(allow_null=True)
    eval_judge_calls = serializers.IntegerField(allow_null=True)
    ingest_rate_per_second = serializers.IntegerField(allow_null=True)
    key_rate_per_second = serializers.IntegerField(allow_null=True)


class SubscriptionSerializer(serializers.Serializer):
    organization_id = serializers.UUIDField()
    plan = serializers.CharField(help_text="`unlimited` when the organization has no subscription.")
    subscribed = serializers.BooleanField()
    overrides = serializers.DictField()
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)
    limits = LimitsSerializer(help_text="The plan's limits with the overrides applied; null = no limit.")
    usage_units = serializers.IntegerField(
        allow_null=True, help_text="Units accepted this period, as the quota counts them (null: not counted)."
    )


class SubscriptionWriteSerializer(serializers.Serializer):
    plan = serializers.SlugField(help_text="A plan name (free, team, enterprise, unlimited, or one added in the admin).")
    period_start = serializers.DateTimeField(required=False)
    overrides = serializers.DictField(required=False, help_text=f"Any of: {', '.join(OVERRIDABLE)}.")


class RejectedEventsSerializer(serializers.Serializer):
    day = serializers.DateField()
    project_id = serializers.UUIDField()
    reason = serializers.ChoiceField(choices=["quota", "org_rate", "key_rate"])
    requests = serializers.IntegerField()
    events = serializers.IntegerField()
