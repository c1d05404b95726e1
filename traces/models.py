"""Data-plane trace storage. Lives in the project's region database; `project_id` leads every key."""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from tenancy.dataplane import DataPlaneModel


class Trace(DataPlaneModel):
    pk = models.CompositePrimaryKey("project_id", "id")
    id = models.CharField(max_length=200)
    name = models.CharField(max_length=500, blank=True, default="")
    timestamp = models.DateTimeField(default=timezone.now)
    user_id = models.CharField(max_length=500, blank=True, default="")
    session_id = models.CharField(max_length=500, blank=True, default="")
    environment = models.CharField(max_length=100, blank=True, default="default")
    release = models.CharField(max_length=200, blank=True, default="")
    version = models.CharField(max_length=200, blank=True, default="")
    tags = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    public = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["project_id", "-timestamp"], name="trace_project_time"),
            models.Index(fields=["project_id", "session_id", "-timestamp"], name="trace_project_session"),
            models.Index(fields=["project_id", "user_id", "-timestamp"], name="trace_project_user"),
        ]

    def __str__(self) -> str:
        return self.name or self.id
