"""The console's own configuration (control plane): saved views of the trace explorer."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from tenancy.planes import Plane


class SavedView(models.Model):
    """A named explorer query of a project (its filters, sort and columns as a query string), shared
    with everyone who can see the project."""

    PLANE = Plane.CONTROL

    project = models.ForeignKey("tenancy.Project", on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=200)
    query = models.TextField(max_length=4000, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="console_saved_view_name_unique")]

    def __str__(self) -> str:
        return self.name
