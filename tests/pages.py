"""What tests assert about a page's HTML as a whole."""

from __future__ import annotations

import re

# Every URL a page loads an asset from: <script src>, <link href>, <img src>, <iframe src>, and url(…) in CSS.
_ASSET_URLS = re.compile(
    r"<(?:script|link|img|iframe|source)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']*)[\"']|url\(\s*[\"']?([^\"')]*)",
    re.IGNORECASE,
)
# A URL naming a host: scheme://host or protocol-relative //host.
_HOSTED = re.compile(r"^\s*(?:[a-z][a-z0-9+.\-]*:)?//", re.IGNORECASE)
# Any URL anywhere in the page (inline scripts included) whose host looks like a CDN's.
_CDN_HOST = re.compile(r"//[^/\s\"'<>]*cdn", re.IGNORECASE)


def off_host_assets(html: str | bytes) -> list[str]:
    """The asset URLs of `html` that point at another host, and every URL whose host names a CDN:
    empty for a page that works on an air-gapped host. (A plain substring test for "cdn" failed at
    random: a CSRF token is 64 random letters and digits, and one in a few hundred holds "cdn".)"""
    text = html.decode() if isinstance(html, bytes) else html
    found = [a or b for a, b in _ASSET_URLS.findall(text)]
    return [u for u in found if _HOSTED.match(u)] + [m.group() for m in _CDN_HOST.finditer(text)]
