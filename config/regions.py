"""Parsing of DATA_REGIONS and the naming of region database aliases.

Kept free of model imports so settings can use it.
"""

import re

from django.core.exceptions import ImproperlyConfigured

REGION_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def parse_data_regions(value: str) -> dict[str, str | None]:
    """`eu=postgres://…,us=postgres://…` → {"eu": url, "us": url}; empty → {"default": None}.

    A region whose URL is None is stored on the default database.
    """
    value = value.strip()
    if not value:
        return {"default": None}
    regions: dict[str, str | None] = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, url = item.partition("=")
        name = name.strip()
        if not sep or not url.strip():
            raise ImproperlyConfigured(f"DATA_REGIONS entry {item!r} must look like name=postgres://…")
        if not REGION_NAME.match(name):
            raise ImproperlyConfigured(f"DATA_REGIONS region name {name!r} must match {REGION_NAME.pattern}")
        if name in regions:
            raise ImproperlyConfigured(f"DATA_REGIONS names region {name!r} twice")
        regions[name] = url.strip()
    return regions


def region_alias(name: str) -> str:
    """Database alias of a region that has its own database."""
    return f"region_{name}"


def parse_serve_regions(value: str, regions: dict) -> list[str]:
    """`eu` or `eu,us`: the regions this node serves (empty: all of DATA_REGIONS)."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        return list(regions)
    unknown = [name for name in names if name not in regions]
    if unknown:
        raise ImproperlyConfigured(f"SERVE_REGIONS names {unknown} which DATA_REGIONS does not declare ({list(regions)})")
    return list(dict.fromkeys(names))


def parse_region_urls(value: str, regions: dict) -> dict[str, str]:
    """`eu=https://eu.lookglass.example,us=https://us.lookglass.example`: each region's public base URL,
    where a node that does not serve a region sends its requests."""
    urls: dict[str, str] = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, url = item.partition("=")
        name, url = name.strip(), url.strip().rstrip("/")
        if not sep or not url.startswith(("http://", "https://")):
            raise ImproperlyConfigured(f"REGION_URLS entry {item!r} must look like name=https://…")
        if name not in regions:
            raise ImproperlyConfigured(f"REGION_URLS names region {name!r}, which DATA_REGIONS does not declare")
        urls[name] = url
    return urls
