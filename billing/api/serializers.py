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


class UsageDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    project_id = serializers.UUIDField()
    units = serializers.IntegerField(help_text="Billable units: traces + observations + scores created that day.")
    traces = serializers.IntegerField()
    observations = serializers.IntegerField()
    scores = serializers.IntegerField()
    bytes = serializers.IntegerField(help_text="Stored size of the rows created that day.")
    judge_calls = serializers.IntegerField()
    judge_tokens = serializers.IntegerField()
    rejected_events = serializers.IntegerField(help_text="Events refused for billing (quota or rate limits).")


class InvoicePreviewSerializer(serializers.Serializer):
    organization_id = serializers.UUIDField()
    plan = serializers.CharField()
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    metered_through = serializers.DateTimeField(allow_null=True, help_text="Usage before this time is final.")
    units = serializers.IntegerField()
    included_units = serializers.IntegerField(allow_null=True)
    overage_units = serializers.IntegerField()
    extra_unit_price = serializers.CharField(allow_null=True)
    overage_amount = serializers.CharField()
    total = serializers.CharField()
    currency = serializers.CharField()
    meters = serializers.DictField(child=serializers.IntegerField())


class UsageRecordLineSerializer(serializers.Serializer):
    idempotency_key = serializers.CharField()
    organization_id = serializers.UUIDField()
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    meter = serializers.CharField()
    quantity = serializers.IntegerField()
    final = serializers.BooleanField(help_text="Every hour of the period has been metered; import final lines.")
