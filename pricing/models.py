"""Model prices: the shipped catalog and per-project overrides (control plane).

Prices are USD per million tokens. A price change is a new row with a later `effective_from`, so
costs already computed for older calls can always be explained by the row that was in force.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from datetime import timezone as dt_timezone

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from pricing.patterns import PatternError, check_pattern
from privacy.models import JobRecord
from tenancy.models import Project
from tenancy.planes import Plane

MODEL_NAME_MAX_LENGTH = 200
PATTERN_MAX_LENGTH = 500
# The range a price may start in. PostgreSQL stores timestamps from 4713 BC to 294276 AD, Python
# reads only years 1-9999: a tenant's "0001-01-01T00:00:00+14:00" was stored, then every read of the
# price table failed, ingestion of every tenant included. No real price starts outside this range.
EFFECTIVE_FROM_MIN = datetime(2000, 1, 1, tzinfo=dt_timezone.utc)
EFFECTIVE_FROM_MAX = datetime(2100, 1, 1, tzinfo=dt_timezone.utc)


class StoredDateTimeField(models.DateTimeField):
    """A DateTimeField that reads a value Python cannot hold as NULL instead of failing the query.

    TRICKY: psycopg raises DataError for the whole result set when one timestamp is outside Python's
    years 1-9999, so a single row written before validation existed (or with raw SQL) would make
    every SELECT of the table fail. The column is wrapped in SQL on every read (`select_format` is
    applied to every selected column), with a day of margin for the session time zone; callers see
    None for such a row and can still list, fix or delete it. Filters and ordering use the raw column.
    """

    _READABLE_SQL = (
        "CASE WHEN {col} >= '0001-01-02T00:00:00+00:00'::timestamptz "
        "AND {col} < '9999-12-31T00:00:00+00:00'::timestamptz THEN {col} END"
    )

    def select_format(self, compiler, sql, params):
        return self._READABLE_SQL.format(col=sql), (*params, *params, *params)


class PriceSource(models.TextChoices):
    # Rows the `load_model_prices` command manages; it never touches `custom` rows.
    CATALOG = "catalog", "Catalog"
    CUSTOM = "custom", "Custom"


def start_of_today() -> datetime:
    """Default start of a new price: today 00:00 UTC, so calls made earlier today are covered too."""
    now = timezone.now().astimezone(dt_timezone.utc)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _price_field(*, required: bool, help_text: str) -> models.DecimalField:
    return models.DecimalField(
        max_digits=14,
        decimal_places=6,
        null=not required,
        blank=not required,
        validators=[MinValueValidator(0)],
        help_text=help_text,
    )


class ModelPrice(models.Model):
    PLANE = Plane.CONTROL

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Null: the global catalog. Set: an override that wins over the catalog for that project only.
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, null=True, blank=True, related_name="model_prices"
    )
    provider = models.CharField(max_length=64)
    model_name = models.CharField(max_length=MODEL_NAME_MAX_LENGTH, help_text="Canonical model name.")
    match_pattern = models.CharField(
        max_length=PATTERN_MAX_LENGTH,
        blank=True,
        help_text="Regular expression matched case-insensitively (search) against the model name as sent; "
        "empty = exactly the model name.",
    )
    effective_from = StoredDateTimeField(default=start_of_today)
    input_price = _price_field(required=True, help_text="USD per million fresh input tokens.")
    cached_input_price = _price_field(
        required=False, help_text="USD per million cache-read input tokens; empty = the input price."
    )
    cache_write_price = _price_field(
        required=False, help_text="USD per million cache-write input tokens; empty = the input price."
    )
    output_price = _price_field(required=True, help_text="USD per million output tokens.")
    reasoning_price = _price_field(
        required=False, help_text="USD per million reasoning tokens; empty = the output price."
    )
    source = models.CharField(max_length=16, choices=PriceSource.choices, default=PriceSource.CUSTOM)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # The catalog moved here from billing/; its table kept its name (no data moved).
        db_table = "billing_modelprice"
        ordering = ["provider", "model_name", "-effective_from"]
        constraints = [
            # Two partial constraints because NULL project ids never collide in a plain unique index.
            models.UniqueConstraint(
                fields=["model_name", "effective_from"],
                condition=Q(project__isnull=True),
                name="model_price_catalog_unique",
                violation_error_message="the catalog already has a price for this model from this date",
            ),
            models.UniqueConstraint(
                fields=["project", "model_name", "effective_from"],
                condition=Q(project__isnull=False),
                name="model_price_override_unique",
                violation_error_message="this project already has a price for this model from this date",
            ),
            models.CheckConstraint(
                condition=Q(input_price__gte=0)
                & Q(output_price__gte=0)
                & (Q(cached_input_price__isnull=True) | Q(cached_input_price__gte=0))
                & (Q(cache_write_price__isnull=True) | Q(cache_write_price__gte=0))
                & (Q(reasoning_price__isnull=True) | Q(reasoning_price__gte=0)),
                name="model_price_non_negative",
            ),
        ]
        indexes = [models.Index(fields=["project", "model_name"], name="model_price_project_model")]

    def __str__(self) -> str:
        scope = f"{self.project_id}" if self.project_id else "catalog"
        # None: a stored date Python cannot read (see StoredDateTimeField); the row must stay nameable
        # so that it can be deleted.
        start = "an unreadable date" if self.effective_from is None else f"{self.effective_from:%Y-%m-%d}"
        return f"{self.model_name} from {start} ({scope})"

    def clean(self) -> None:
        super().clean()
        errors = {}
        self.model_name = (self.model_name or "").strip()
        self.provider = (self.provider or "").strip().lower()
        start = self.effective_from
        if isinstance(start, datetime) and timezone.is_aware(start) and not (
            EFFECTIVE_FROM_MIN <= start < EFFECTIVE_FROM_MAX
        ):
            errors["effective_from"] = (
                f"must be between {EFFECTIVE_FROM_MIN:%Y-%m-%d} and {EFFECTIVE_FROM_MAX:%Y-%m-%d} (UTC)"
            )
        if not self.match_pattern and self.model_name:
            self.match_pattern = default_pattern_for(self.model_name)
        try:
            compiled = check_pattern(self.match_pattern)
        except PatternError as exc:
            errors["match_pattern"] = str(exc)
        else:
            if self.model_name and not compiled.search(self.model_name):
                errors["match_pattern"] = (
                    f"the pattern does not match the model's own name {self.model_name!r}; "
                    "a price that cannot apply to its model is almost certainly a typo"
                )
        if errors:
            raise ValidationError(errors)


def default_pattern_for(model_name: str) -> str:
    import re

    return rf"^{re.escape(model_name.strip())}$"


class RepriceRun(JobRecord):
    """One re-pricing of a project's stored calls over a time range (after a price was added), run in
    the background on the project's region queue through the ingest writer (`ingest.reprice`). The
    counts grow batch by batch, so the admin shows how far it got; `position_*` is the keyset of the
    last batch done, where a continuation or a redelivered message carries on."""

    PLANE = Plane.CONTROL

    project = models.ForeignKey("tenancy.Project", on_delete=models.CASCADE, related_name="reprice_runs")
    since = models.DateTimeField()
    until = models.DateTimeField()
    # The filter as asked: model names as sent, and prices whose match patterns pick the names seen in
    # the range (resolved by the task into `model_names`; null = every model).
    models_requested = models.JSONField(default=list, blank=True)
    price_ids = models.JSONField(default=list, blank=True)
    model_names = models.JSONField(null=True, blank=True)
    examined = models.BigIntegerField(default=0)
    repriced = models.BigIntegerField(default=0)
    newly_priced = models.BigIntegerField(default=0)
    still_unpriced = models.BigIntegerField(default=0)
    position_time = models.DateTimeField(null=True, blank=True, editable=False)
    position_id = models.TextField(blank=True, default="", editable=False)
    requested_by = models.ForeignKey(
        "tenancy.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    class Meta:
        indexes = [models.Index(fields=["project", "-created_at"], name="repricerun_project_created")]

    def __str__(self) -> str:
        return f"re-pricing {self.id} ({self.status})"
