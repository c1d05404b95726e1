"""Which database holds a region's data."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.regions import region_alias


def region_names() -> list[str]:
    return list(settings.DATA_REGIONS)


def region_database(region: str) -> str:
    try:
        url = settings.DATA_REGIONS[region]
    except KeyError:
        raise ImproperlyConfigured(
            f"region {region!r} is not declared in DATA_REGIONS ({', '.join(settings.DATA_REGIONS)})"
        ) from None
    return "default" if url is None else region_alias(region)


def data_databases() -> list[str]:
    """Every database alias that holds data-plane tables, without repeats."""
    return list(dict.fromkeys(region_database(name) for name in settings.DATA_REGIONS))


def region_queue(region: str) -> str:
    """Celery queue for work on a region's data; each region's workers consume only their own."""
    return f"region.{region}"
