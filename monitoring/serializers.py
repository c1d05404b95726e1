"""Shapes of the monitoring API (settings and the cost breakdown)."""

from __future__ import annotations

from rest_framework import serializers

from monitoring.models import FeatureSource
from monitoring.selectors import BREAKDOWNS, MAX_DAYS


class MonitoringSettingsSerializer(serializers.Serializer):
    project_id = serializers.UUIDField()
    configured = serializers.BooleanField(help_text="False: the defaults (metadata key `feature`) apply")
    feature_source = serializers.ChoiceField(choices=FeatureSource.choices)
    feature_key = serializers.CharField(help_text="The metadata key or tag prefix (unused for trace_name)")
    applied = serializers.BooleanField(
        help_text="The rollups are built with this rule (False until the rebuild after a change has run)"
    )
    updated_at = serializers.DateTimeField(allow_null=True)


class MonitoringSettingsWriteSerializer(serializers.Serializer):
    feature_source = serializers.ChoiceField(choices=FeatureSource.choices, required=False)
    feature_key = serializers.CharField(max_length=200, required=False, allow_blank=True, trim_whitespace=False)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {key: ["unknown field; known: " + ", ".join(sorted(self.fields))] for key in unknown}
                )
        return super().to_internal_value(data)


class BreakdownQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=MAX_DAYS, default=7)
    by = serializers.ChoiceField(choices=sorted(BREAKDOWNS), default="feature")


class QuantilesSerializer(serializers.Serializer):
    p50 = serializers.FloatField(allow_null=True)
    p95 = serializers.FloatField(allow_null=True)
    p99 = serializers.FloatField(allow_null=True)


class LatencySerializer(QuantilesSerializer):
    avg = serializers.FloatField(allow_null=True)


class _Measures(serializers.Serializer):
    spend = serializers.DecimalField(max_digits=30, decimal_places=10, help_text="USD")
    calls = serializers.IntegerField()
    cost_per_call = serializers.DecimalField(max_digits=30, decimal_places=10, allow_null=True)
    errors = serializers.IntegerField()
    refusals = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True)
    refusal_rate = serializers.FloatField(allow_null=True)
    unpriced_calls = serializers.IntegerField(help_text="Calls with no cost (no client cost, no catalog price)")


class BreakdownRowSerializer(_Measures):
    key = serializers.DictField(help_text="The group: {feature}, {model}, {user_id}, {prompt_name, prompt_version}…")
    total_tokens = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True, help_text="This group's share of the spend")
    cumulative_share = serializers.FloatField(allow_null=True)
    within_80 = serializers.BooleanField(
        help_text="Among the fewest top groups that together make at least 80% of the spend"
    )
    latency_ms = LatencySerializer(required=False, help_text="From the fixed-bucket histograms (±9%); not for by=user")
    ttft_ms = QuantilesSerializer(required=False)


class BreakdownSerializer(serializers.Serializer):
    by = serializers.CharField()
    days = serializers.IntegerField()
    # "from" is a Python keyword: declared below.
    to = serializers.DateTimeField()
    total = _Measures()
    groups_within_80 = serializers.IntegerField()
    rows = BreakdownRowSerializer(many=True)


BreakdownSerializer._declared_fields["from"] = serializers.DateTimeField()
