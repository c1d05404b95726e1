"""Where each region keeps its export files: one Django storage per region in STORAGES, named
`exports-<region>` (privacy/exports.py opens them through `django.core.files.storage.storages`).

A region stores under EXPORT_ROOT/<region>/ on the filesystem unless EXPORT_STORAGE_URLS gives it an
S3-compatible bucket, served by django-storages' boto3 backend:

    EXPORT_STORAGE_URLS="eu=s3://lg-exports-eu/exports?region_name=eu-central-1,
                         us=s3://KEY:SECRET@lg-exports-us/exports?endpoint_url=https://minio.us.example"

The path is the key prefix inside the bucket; the query takes `endpoint_url` (any S3-compatible
server), `region_name`, `addressing_style` (`path` for most self-hosted servers) and
`signature_version`. Credentials in the URL are optional: without them boto3's own chain applies
(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, an instance or pod role), which is what a region's nodes
normally have. Each region names its own bucket, so one region's files never land where another
region reads.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

S3_BACKEND = "storages.backends.s3.S3Storage"
FILESYSTEM_BACKEND = "django.core.files.storage.FileSystemStorage"
S3_QUERY_OPTIONS = ("endpoint_url", "region_name", "addressing_style", "signature_version")


def export_storage_alias(region: str) -> str:
    return f"exports-{region}"


def parse_export_storage_urls(value: str, regions) -> dict[str, str]:
    """`region=url,…` -> {region: url}; every region must be one of DATA_REGIONS (a typo would
    otherwise silently keep that region's exports on the filesystem)."""
    urls: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        region, sep, url = part.partition("=")
        region, url = region.strip(), url.strip()
        if not sep or not region or not url:
            raise ImproperlyConfigured(f"EXPORT_STORAGE_URLS: expected region=s3://bucket/prefix, got {part!r}")
        if region not in regions:
            raise ImproperlyConfigured(f"EXPORT_STORAGE_URLS names {region!r}, not one of DATA_REGIONS {list(regions)}")
        urls[region] = url
    return urls


def s3_storage(url: str, *, link_seconds: int) -> dict:
    """The STORAGES entry of one `s3://[key:secret@]bucket[/prefix][?option=value…]` URL."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.hostname:
        raise ImproperlyConfigured(f"EXPORT_STORAGE_URLS: {url!r} is not s3://bucket/prefix")
    options: dict = {
        # urlsplit lower-cases `hostname`; bucket names are lower-case anyway, but keep what was written.
        "bucket_name": parts.netloc.rpartition("@")[2],
        "location": parts.path.strip("/"),
        # Private objects, reached only through presigned URLs that expire with the export's link.
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": link_seconds,
        "file_overwrite": True,  # a rebuilt export replaces its file under the same name
        # Stored as the gzip file it is: without an explicit type the backend would guess
        # Content-Encoding: gzip from the name and clients would unpack it while downloading.
        "object_parameters": {"ContentType": "application/gzip"},
        # Presigned URLs in SigV4 (X-Amz-Expires): boto3 may otherwise sign with the deprecated SigV2,
        # whose links some providers refuse.
        "signature_version": "s3v4",
    }
    if parts.username:
        options["access_key"] = unquote(parts.username)
        options["secret_key"] = unquote(parts.password or "")
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in S3_QUERY_OPTIONS:
            raise ImproperlyConfigured(
                f"EXPORT_STORAGE_URLS: unknown option {name!r} (known: {', '.join(S3_QUERY_OPTIONS)})")
        options[name] = value
    return {"BACKEND": S3_BACKEND, "OPTIONS": options}


def export_storages(urls: dict[str, str], *, root, regions, link_seconds: int) -> dict[str, dict]:
    """One STORAGES entry per region: its S3 bucket when configured, else EXPORT_ROOT/<region>/."""
    storages = {}
    for region in regions:
        if region in urls:
            storages[export_storage_alias(region)] = s3_storage(urls[region], link_seconds=link_seconds)
        else:
            storages[export_storage_alias(region)] = {
                "BACKEND": FILESYSTEM_BACKEND,
                # Rebuilding an export replaces its file instead of adding a suffixed copy.
                "OPTIONS": {"location": str(Path(root) / region), "allow_overwrite": True},
            }
    return storages
