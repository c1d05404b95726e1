"""`tests.pages.off_host_assets`, which the console and dashboard tests use to show that a page loads
nothing from another host (air-gapped hosts work)."""

import pytest

from tests.pages import off_host_assets


@pytest.mark.parametrize(
    "html, found",
    [
        ('<script src="https://cdn.jsdelivr.net/npm/plotly.js"></script>', ["https://cdn.jsdelivr.net/npm/plotly.js", "//cdn"]),
        ("<link rel=stylesheet href='//fonts.googleapis.com/css'>", ["//fonts.googleapis.com/css"]),
        ("<style>@font-face{src:url(https://x.example/f.woff)}</style>", ["https://x.example/f.woff"]),
        ('<script>import("https://cdn.skypack.dev/x")</script>', ["//cdn"]),
        ('<img src="http://example.com/a.png">', ["http://example.com/a.png"]),
    ],
)
def test_an_asset_from_another_host_is_reported(html, found):
    assert off_host_assets(html) == found


def test_local_assets_links_and_random_tokens_are_not():
    html = (
        '<script src="/admin/monitoring/assets/plotly-2.35.2.min.js"></script><link href="/static/app.css">'
        '<a href="https://langfuse.com/docs">docs</a>'
        '<input type="hidden" name="csrfmiddlewaretoken" value="i1KlQKbVVRxLBWbJSLfjpeOuCIgPnLUSup1xerZgDvpt6kHCdngea">'
    )
    assert off_host_assets(html) == []
    assert off_host_assets(html.encode()) == []
