"""Every write to a price, from any path (services, admin bulk delete, a project's cascade
delete), must reach the in-process caches of all workers."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from pricing.models import ModelPrice
from pricing.pricing import catalog_changed


@receiver(post_save, sender=ModelPrice, dispatch_uid="pricing.model_price_saved")
@receiver(post_delete, sender=ModelPrice, dispatch_uid="pricing.model_price_deleted")
def _model_price_changed(sender, using, **kwargs):
    catalog_changed(using=using)
