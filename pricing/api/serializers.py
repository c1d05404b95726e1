"""Shapes of the model price API. Input is validated here; writes go through `pricing.services`."""

from __future__ import annotations

from datetime import date, datetime, time
from datetime import timezone as dt_timezone

from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from pricing.models import (
    EFFECTIVE_FROM_MAX,
    EFFECTIVE_FROM_MIN,
    MODEL_NAME_MAX_LENGTH,
    PATTERN_MAX_LENGTH,
    ModelPrice,
)
from pricing.patterns import PatternError, check_pattern

PRICE_FIELDS = ("input_price", "cached_input_price", "cache_write_price", "output_price", "reasoning_price")


class ModelPriceSerializer(serializers.ModelSerializer):
    project_id = serializers.UUIDField(read_only=True, allow_null=True, help_text="Null for the global catalog.")

    class Meta:
        model = ModelPrice
        fields = [
            "id", "project_id", "provider", "model_name", "match_pattern", "effective_from", *PRICE_FIELDS,
            "source", "created_at", "updated_at",
        ]
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.DATETIME)
class DateOrDateTimeField(serializers.Field):
    """An ISO datetime, or a plain date meaning 00:00 UTC that day. Naive datetimes are UTC."""

    default_error_messages = {
        "invalid": "expected an ISO 8601 date (YYYY-MM-DD) or datetime",
        "overflow": "is outside the years 1-9999 once converted to UTC",
        "range": "must be between {low:%Y-%m-%d} and {high:%Y-%m-%d} (UTC)",
    }

    def __init__(self, *, low: datetime | None = None, high: datetime | None = None, **kwargs):
        super().__init__(**kwargs)
        self.low, self.high = low, high

    def to_internal_value(self, data) -> datetime:
        if isinstance(data, datetime):
            value = data
        elif isinstance(data, date):
            value = datetime.combine(data, time.min)
        elif isinstance(data, str):
            try:
                value = parse_datetime(data.strip())
            except ValueError:  # well-formed but impossible, e.g. month 13
                self.fail("invalid")
            if value is None:
                try:
                    day = parse_date(data.strip())
                except ValueError:
                    day = None
                if day is None:
                    self.fail("invalid")
                value = datetime.combine(day, time.min)
        else:
            self.fail("invalid")
        value = value if value.tzinfo else value.replace(tzinfo=dt_timezone.utc)
        try:
            value.astimezone(dt_timezone.utc)
        except OverflowError:  # "0001-01-01T00:00:00+14:00" is a year-0 instant Python cannot hold
            self.fail("overflow")
        if (self.low and value < self.low) or (self.high and value >= self.high):
            self.fail("range", low=self.low, high=self.high)
        return value

    def to_representation(self, value):
        return value.isoformat()


def _price_input(*, required: bool) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=14, decimal_places=6, min_value=0, required=required, allow_null=not required,
        help_text="USD per million tokens.",
    )


class ModelPriceWriteSerializer(serializers.Serializer):
    provider = serializers.CharField(max_length=64)
    model_name = serializers.CharField(max_length=MODEL_NAME_MAX_LENGTH)
    match_pattern = serializers.CharField(
        max_length=PATTERN_MAX_LENGTH, required=False, allow_blank=True,
        help_text="Regex matched case-insensitively against the model name as sent; "
        "empty = exactly the model name.",
    )
    effective_from = DateOrDateTimeField(
        required=False, low=EFFECTIVE_FROM_MIN, high=EFFECTIVE_FROM_MAX,
        help_text=f"Default: today, 00:00 UTC. From {EFFECTIVE_FROM_MIN:%Y-%m-%d} to {EFFECTIVE_FROM_MAX:%Y-%m-%d}.",
    )
    input_price = _price_input(required=True)
    cached_input_price = _price_input(required=False)
    cache_write_price = _price_input(required=False)
    output_price = _price_input(required=True)
    reasoning_price = _price_input(required=False)

    def validate_model_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("the model name cannot be blank")
        return value

    def validate_match_pattern(self, value: str) -> str:
        if value:
            try:
                check_pattern(value)
            except PatternError as exc:
                raise serializers.ValidationError(str(exc)) from None
        return value


class ResolveQuerySerializer(serializers.Serializer):
    model = serializers.CharField(max_length=MODEL_NAME_MAX_LENGTH)
    at = DateOrDateTimeField(required=False)


class ResolvedPriceSerializer(serializers.Serializer):
    """A `pricing.pricing.Price`: the row resolution picked, as ingestion would use it."""

    id = serializers.UUIDField()
    project_id = serializers.UUIDField(allow_null=True)
    provider = serializers.CharField()
    model_name = serializers.CharField()
    match_pattern = serializers.CharField()
    effective_from = serializers.DateTimeField()
    input_price = serializers.DecimalField(max_digits=14, decimal_places=6)
    cached_input_price = serializers.DecimalField(max_digits=14, decimal_places=6, allow_null=True)
    cache_write_price = serializers.DecimalField(max_digits=14, decimal_places=6, allow_null=True)
    output_price = serializers.DecimalField(max_digits=14, decimal_places=6)
    reasoning_price = serializers.DecimalField(max_digits=14, decimal_places=6, allow_null=True)
    source = serializers.CharField()


class ResolveResponseSerializer(serializers.Serializer):
    model = serializers.CharField()
    at = serializers.DateTimeField()
    applies = serializers.ChoiceField(
        choices=["override", "catalog"], allow_null=True, help_text="Null when no price matches the model."
    )
    price = ResolvedPriceSerializer(allow_null=True)
