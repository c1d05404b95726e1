"""The trace explorer's query, read from the URL (bookmarkable; a saved view is one of these)."""

from __future__ import annotations

from django import forms

from traces.models import Status
from traces.selectors import SEARCH_ORDER_FIELDS, TraceSearch

# Columns a person can show or hide; `trace` (name and id) is always there.
COLUMNS = {
    "time": "Time",
    "input": "Input",
    "output": "Output",
    "status": "Status",
    "user": "User",
    "session": "Session",
    "environment": "Environment",
    "model": "Models",
    "tags": "Tags",
    "scores": "Scores",
    "cost": "Cost",
    "latency": "Latency",
}
DEFAULT_COLUMNS = ("time", "input", "output", "status", "user", "tags", "scores", "cost", "latency")
LOCAL_INPUT = {"data-local-input": "", "placeholder": "YYYY-MM-DD HH:MM"}
ORDER_CHOICES = [(key, key) for key in SEARCH_ORDER_FIELDS] + [(f"-{key}", f"-{key}") for key in SEARCH_ORDER_FIELDS]


class ExplorerForm(forms.Form):
    q = forms.CharField(required=False, max_length=500, label="Search inputs and outputs")
    name = forms.CharField(required=False, max_length=1000)
    user = forms.CharField(required=False, max_length=1000)
    session = forms.CharField(required=False, max_length=1000)
    model = forms.CharField(required=False, max_length=500)
    environment = forms.CharField(required=False, max_length=100)
    release = forms.CharField(required=False, max_length=500)
    tag = forms.CharField(required=False, max_length=500)
    meta = forms.CharField(
        required=False, max_length=500, label="Metadata", help_text="key, or key=value prefix",
    )
    status = forms.ChoiceField(required=False, choices=[("", "any"), *Status.choices])
    prompt = forms.CharField(required=False, max_length=500, label="Prompt name")
    prompt_version = forms.IntegerField(required=False, min_value=1, max_value=2**31 - 1, label="Prompt version")
    score = forms.CharField(required=False, max_length=500, label="Score name")
    score_min = forms.FloatField(required=False, label="Score ≥")
    score_max = forms.FloatField(required=False, label="Score ≤")
    thumbs_down = forms.BooleanField(required=False, label="Thumbs down")
    cost_min = forms.DecimalField(required=False, min_value=0, max_digits=20, decimal_places=10, label="Cost ≥ $")
    cost_max = forms.DecimalField(required=False, min_value=0, max_digits=20, decimal_places=10, label="Cost ≤ $")
    latency_min = forms.FloatField(required=False, min_value=0, label="Latency ≥ ms")
    latency_max = forms.FloatField(required=False, min_value=0, label="Latency ≤ ms")
    # Typed in UTC without the script; the console's script shows them in the viewer's zone and sends
    # them as ISO 8601 in UTC (`data-local-input`), as every time on the page is shown in that zone.
    since = forms.DateTimeField(required=False, label="From (UTC)", widget=forms.DateTimeInput(attrs=LOCAL_INPUT))
    until = forms.DateTimeField(required=False, label="Until (UTC)", widget=forms.DateTimeInput(attrs=LOCAL_INPUT))
    order = forms.ChoiceField(required=False, choices=ORDER_CHOICES)
    cols = forms.MultipleChoiceField(required=False, choices=list(COLUMNS.items()))
    page = forms.IntegerField(required=False, min_value=1, max_value=200)

    def clean(self):
        cleaned = super().clean()
        for low, high in (("cost_min", "cost_max"), ("latency_min", "latency_max"), ("since", "until")):
            a, b = cleaned.get(low), cleaned.get(high)
            if a is not None and b is not None and a > b:
                self.add_error(high, "Must not be lower than the other bound.")
        return cleaned

    def search(self) -> TraceSearch:
        c = self.cleaned_data
        key, _, value = (c.get("meta") or "").partition("=")
        return TraceSearch(
            text=c.get("q") or "",
            name=c.get("name") or "",
            user_id=c.get("user") or "",
            session_id=c.get("session") or "",
            model=c.get("model") or "",
            environment=c.get("environment") or "",
            release=c.get("release") or "",
            tag=c.get("tag") or "",
            metadata_key=key.strip(),
            metadata_value=value.strip(),
            status=c.get("status") or None,
            score_name=c.get("score") or "",
            score_min=c.get("score_min"),
            score_max=c.get("score_max"),
            thumbs_down=bool(c.get("thumbs_down")),
            min_cost=c.get("cost_min"),
            max_cost=c.get("cost_max"),
            min_latency_ms=c.get("latency_min"),
            max_latency_ms=c.get("latency_max"),
            since=c.get("since"),
            until=c.get("until"),
            prompt_name=c.get("prompt") or "",
            prompt_version=c.get("prompt_version"),
        )

    def sort_order(self) -> str:
        return (self.cleaned_data.get("order") if self.is_valid() else "") or "-time"

    def columns(self) -> list[str]:
        chosen = (self.cleaned_data.get("cols") if self.is_bound and self.is_valid() else None) or DEFAULT_COLUMNS
        return [c for c in COLUMNS if c in chosen]

    def page_number(self) -> int:
        return (self.cleaned_data.get("page") if self.is_valid() else None) or 1
