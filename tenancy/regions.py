"""Which database holds a region's data."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.regions import region_alias


def region_names() -> list[str]:
    return list(settings.DATA_REGIONS)


class RegionNotServed(Exception):
    """The region's data lives elsewhere: this node does not serve it (SERVE_REGIONS) and never
    connects to its database. `config.region_routing` answers with the region's base URL."""

    def __init__(self, region: str):
        super().__init__(f"this node does not serve region {region!r}")
        self.region = region


def served_regions() -> list[str]:
    return list(getattr(settings, "SERVE_REGIONS", None) or settings.DATA_REGIONS)


def region_database(region: str) -> str:
    try:
        url = settings.DATA_REGIONS[region]
    except KeyError:
        raise ImproperlyConfigured(
            f"region {region!r} is not declared in DATA_REGIONS ({', '.join(settings.DATA_REGIONS)})"
        ) from None
    if region not in served_regions():
        raise RegionNotServed(region)
    return "default" if url is None else region_alias(region)


def data_databases() -> list[str]:
    """Every database alias this node holds data-plane tables in, without repeats."""
    return list(dict.fromkeys(region_database(name) for name in served_regions()))


def region_queue(region: str) -> str:
    """Celery queue for work on a region's data; each region's workers consume only their own."""
    return f"region.{region}"
