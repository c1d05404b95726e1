"""Every write to a redaction policy, from any path (services, admin, a project's cascade delete),
drops the cached copy, so ingestion stops using it. A receiver rather than the model's save() keeps
the model free of the engine (which reads the model): no import cycle."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from privacy.engine import invalidate_policy_cache
from privacy.models import RedactionPolicy


@receiver(post_save, sender=RedactionPolicy, dispatch_uid="privacy.redaction_policy_saved")
@receiver(post_delete, sender=RedactionPolicy, dispatch_uid="privacy.redaction_policy_deleted")
def _redaction_policy_changed(sender, instance, using, **kwargs):
    project_id = instance.project_id
    # Now (so this process stops using the old copy) and after commit (so a concurrent read of the
    # old row cannot put it back for longer than the cache timeout).
    invalidate_policy_cache(project_id)
    transaction.on_commit(lambda: invalidate_policy_cache(project_id), using=using)
