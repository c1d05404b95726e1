"""Content-Security-Policy on every response (issue 8), and the pages still render under it: every
inline <style> and <script> of a console page carries the response's nonce (or, for Django's own
change-list rule, a hash in the policy), and no element has a style="" or on…="" attribute."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import django
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from prompts.payloads import PromptInput
from prompts.services import prompt_create_version
from traces.models import Observation, Trace

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def policy(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


class _Inline(HTMLParser):
    def __init__(self):
        super().__init__()
        self.blocks: list[tuple[str, dict, str]] = []  # (tag, attributes, text)
        self.bad_attributes: list[str] = []
        self._open: tuple[str, dict] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.bad_attributes += [f"<{tag} {k}=…>" for k in attributes if k == "style" or k.startswith("on")]
        if tag in ("style", "script") and not (tag == "script" and attributes.get("src")):
            self._open, self._text = (tag, attributes), []

    def handle_data(self, data):
        if self._open:
            self._text.append(data)

    def handle_endtag(self, tag):
        if self._open and tag == self._open[0]:
            self.blocks.append((tag, self._open[1], "".join(self._text)))
            self._open = None


def assert_renders_under_its_policy(response):
    assert response.status_code == 200, response.content[:500]
    directives = policy(response)
    page = _Inline()
    page.feed(response.content.decode())
    assert page.bad_attributes == []
    for tag, attributes, text in page.blocks:
        if tag == "script" and attributes.get("type") == "application/json":
            continue  # data, never executed
        allowed = directives[f"{tag}-src"]
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"'nonce-{attributes.get('nonce')}'" in allowed or f"'sha256-{digest}'" in allowed, (tag, text[:80])
    return page


def test_api_and_error_responses_carry_the_policy(client, api_key):
    for response in (
        client.get("/api/public/health"),
        client.get("/api/public/projects", HTTP_AUTHORIZATION=api_key.basic),
        client.get("/api/public/projects"),  # 401
        client.get("/api/v1/model-prices/"),  # 403 without a session
        client.get("/no/such/page"),
    ):
        directives = policy(response)
        assert directives["default-src"] == ["'self'"]
        assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"]
        assert "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in directives["script-src"]


def test_the_sign_in_page_renders_under_the_policy(client):
    assert_renders_under_its_policy(client.get("/admin/login/"))


@pytest.fixture
def console(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def test_console_pages_render_under_the_policy(console, project, owner):
    Trace.objects.for_project(project).create(id="t-1", timestamp=T0, name="agent")
    Observation.objects.for_project(project).bulk_create(
        [
            Observation(id="root", trace_id="t-1", name="agent", start_time=T0, end_time=T0 + timedelta(seconds=4)),
            Observation(
                id="llm", trace_id="t-1", parent_observation_id="root", type="GENERATION", name="chat",
                start_time=T0 + timedelta(seconds=1), end_time=T0 + timedelta(seconds=2),
            ),
        ]
    )
    prompt_create_version(
        project=project, actor=owner,
        data=PromptInput(name="greeting", type="text", text="Hi {{name}}", messages=None, config={},
                         labels=["production"], tags=None, commit_message=None),
    )
    pages = [
        "/admin/",
        "/admin/traces/",
        reverse("admin:traces_trace_detail", args=[project.id, "t-1"]),
        reverse("admin:prompts_prompt_list"),
        reverse("admin:prompts_prompt_detail", args=[project.id, "greeting"]),
        reverse("admin:feedback_overview"),
        "/admin/pricing/modelprice/",
        "/admin/pricing/modelprice/add/",
        "/admin/tenancy/project/",
    ]
    nonced = 0
    for url in pages:
        page = assert_renders_under_its_policy(console.get(url))
        nonced += sum(1 for _, attributes, _ in page.blocks if attributes.get("nonce"))
    assert nonced >= 4  # our own styles are there, under the nonce, not silently dropped


def test_the_nonce_changes_with_every_response(console):
    first, second = (policy(console.get("/admin/traces/"))["style-src"] for _ in range(2))
    nonces = [[s for s in sources if s.startswith("'nonce-")] for sources in (first, second)]
    assert all(len(n) == 1 for n in nonces) and nonces[0] != nonces[1]


def test_the_api_docs_render_under_the_strict_policy_with_local_assets(client, owner):
    client.force_login(owner)
    response = client.get("/api/docs/")

    page = assert_renders_under_its_policy(response)
    directives = policy(response)
    # Self-hosted assets: the docs page needs no exception to the policy of every other page.
    assert directives["script-src"] == [s for s in directives["script-src"]
                                        if s == "'self'" or s.startswith("'nonce-")]
    assert any(tag == "script" and "SwaggerUIBundle" in text for tag, _, text in page.blocks)
    assert "https://" not in "".join(re.findall(r'(?:src|href)="([^"]+)"', response.content.decode()))


def test_the_hash_for_djangos_change_list_style_matches_the_installed_django():
    template = Path(django.__file__).parent / "contrib/admin/templates/admin/change_list.html"
    inline = re.findall(r"<style>(.*?)</style>", template.read_text(), re.S)
    expected = [
        "'sha256-" + base64.b64encode(hashlib.sha256(block.encode()).digest()).decode() + "'" for block in inline
    ]
    assert expected and all(h in settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["style-src"] for h in expected)


def test_the_invitation_page_renders_under_its_policy(client, organization):
    from django.urls import reverse

    from tenancy.services import invitation_create

    _, token = invitation_create(organization=organization, email="joiner@example.com", role="member", invited_by=None)
    page = assert_renders_under_its_policy(client.get(f"{reverse('accept-invitation')}?token={token}"))
    assert any(attributes.get("nonce") for tag, attributes, _ in page.blocks if tag == "style")
