"""Redaction on every surface but ingestion: the policy API and console page (audited, roles,
isolation), on-demand redaction (management and public routes), and the stored counts in the read
API (`redactions`, `redacted` / `redactedKind` filters) and the console's trace page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from privacy.detectors import DETECTORS
from privacy.models import RedactionPolicy
from privacy.services import redaction_policy_update
from tenancy.models import AuditAction, AuditLogEntry, Role
from traces.models import Observation, Trace

EMAIL = "maria.lopez@gmail.com"
CARD = "4111 1111 1111 1111"
T0 = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def policy_url(organization, project):
    return f"/api/v1/organizations/{organization.id}/projects/{project.id}/redaction-policy"


def redact_url(organization, project):
    return f"/api/v1/organizations/{organization.id}/projects/{project.id}/redact"


def person(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def audit_entries(project):
    return list(
        AuditLogEntry.objects.filter(
            organization_id=project.organization_id, action=AuditAction.REDACTION_POLICY_UPDATED
        ).order_by("id")
    )


# --- the policy API --------------------------------------------------------------------------------


def test_a_project_without_a_policy_reads_as_not_configured_and_off(organization, project, member_of):
    response = person(member_of(organization, Role.VIEWER)).get(policy_url(organization, project))
    assert response.status_code == 200
    body = response.json()
    assert body["configured"] is False and body["enabled"] is False and body["version"] is None
    assert body["effective_modes"]["email"] == "mask" and body["project_id"] == str(project.id)


def test_an_admin_creates_and_changes_the_policy_and_every_change_is_audited(organization, project, member_of):
    admin = member_of(organization, Role.ADMIN)
    client = person(admin)
    created = client.put(
        policy_url(organization, project),
        {"detector_modes": {"email": "pseudonymize"}, "phone_default_region": "de"},
        format="json",
    )
    assert created.status_code == 200, created.content
    body = created.json()
    assert (body["configured"], body["enabled"], body["version"]) == (True, True, 1)
    assert body["effective_modes"]["email"] == "pseudonymize" and body["effective_modes"]["phone"] == "mask"
    assert body["phone_default_region"] == "DE"

    patched = client.patch(policy_url(organization, project), {"enabled": False}, format="json")
    assert patched.status_code == 200
    assert patched.json()["enabled"] is False and patched.json()["version"] == 2
    # PATCH leaves the rest alone.
    assert patched.json()["detector_modes"] == {"email": "pseudonymize"}

    entries = audit_entries(project)
    assert [e.data["version"] for e in entries] == [1, 2]
    assert all(e.actor_id == admin.id for e in entries)
    assert entries[1].data["changes"] == {"enabled": [True, False]}

    # PUT replaces: what it leaves out returns to the defaults.
    replaced = client.put(policy_url(organization, project), {"default_mode": "pseudonymize"}, format="json")
    assert replaced.status_code == 200
    assert replaced.json()["detector_modes"] == {} and replaced.json()["enabled"] is True
    assert replaced.json()["phone_default_region"] == "US"
    assert client.get(policy_url(organization, project)).json()["default_mode"] == "pseudonymize"


def test_rotating_the_salt_changes_pseudonyms_and_is_audited(organization, project, owner):
    client = person(owner)
    client.put(policy_url(organization, project), {"default_mode": "pseudonymize"}, format="json")
    before = client.post(redact_url(organization, project), {"text": EMAIL}, format="json").json()["text"]
    response = client.patch(policy_url(organization, project), {"rotate_salt": True}, format="json")
    assert response.status_code == 200 and "rotate_salt" not in response.json()
    after = client.post(redact_url(organization, project), {"text": EMAIL}, format="json").json()["text"]
    assert before.startswith("[EMAIL:") and after.startswith("[EMAIL:") and before != after
    assert audit_entries(project)[-1].data.get("salt_rotated") is True


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"custom_patterns": [{"label": "ORDER", "pattern": "(ORD-\\d+"}]}, "custom_patterns", "RE2"),
        ({"custom_patterns": [{"label": "ORDER", "pattern": "x*"}]}, "custom_patterns", "empty string"),
        ({"detector_modes": {"emial": "mask"}}, "detector_modes", "unknown detector"),
        ({"detector_modes": {"email": "hash"}}, "detector_modes", "mode must be"),
        ({"default_mode": "shred"}, "default_mode", ""),
        ({"phone_default_region": "ZZ"}, "phone_default_region", "unknown phone region"),
        ({"detectorModes": {"email": "off"}}, "detectorModes", "unknown field"),
        ({"enabled": "sometimes"}, "enabled", ""),
    ],
)
def test_invalid_settings_answer_400_per_field_and_change_nothing(organization, project, owner, body, field, fragment):
    client = person(owner)
    client.put(policy_url(organization, project), {}, format="json")
    response = client.patch(policy_url(organization, project), body, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()
    assert field in errors, errors
    assert fragment in " ".join(map(str, errors[field]))
    assert RedactionPolicy.objects.get(project=project).version == 1
    assert len(audit_entries(project)) == 1


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MEMBER])
def test_viewers_and_members_read_but_cannot_change_the_policy(organization, project, owner, member_of, role):
    redaction_policy_update(project=project, actor=owner)
    client = person(member_of(organization, role))
    assert client.get(policy_url(organization, project)).json()["configured"] is True
    for method in ("put", "patch"):
        response = getattr(client, method)(policy_url(organization, project), {"enabled": False}, format="json")
        assert response.status_code == 403
    assert RedactionPolicy.objects.get(project=project).enabled is True
    assert len(audit_entries(project)) == 1


def test_another_organizations_policy_answers_404_like_a_missing_project(
    organization, project, owner, other_organization, other_project, other_owner
):
    redaction_policy_update(project=other_project, actor=other_owner, detector_modes={"email": "off"})
    client = person(owner)
    for url in (
        policy_url(other_organization, other_project),
        policy_url(organization, other_project),  # my organization, their project
        redact_url(other_organization, other_project),
        policy_url(organization, SimpleNamespace(id="7c9f3a9e-0000-4000-8000-000000000000")),
    ):
        for method in ("get", "put", "patch", "post"):
            response = getattr(client, method)(url, {"text": EMAIL, "enabled": False}, format="json")
            assert response.status_code in (404, 405), (method, url, response.status_code)
            assert str(other_project.id) not in response.content.decode()
        assert client.get(url).status_code == 404
    policy = RedactionPolicy.objects.get(project=other_project)
    assert policy.enabled is True and policy.version == 1


def test_api_keys_and_anonymous_callers_cannot_use_the_management_routes(organization, project, api_key):
    keyed = APIClient()
    keyed.credentials(HTTP_AUTHORIZATION=api_key.basic)
    assert keyed.get(policy_url(organization, project)).status_code == 404
    assert keyed.post(redact_url(organization, project), {"text": EMAIL}, format="json").status_code == 404
    assert APIClient().get(policy_url(organization, project)).status_code == 401


# --- on-demand redaction --------------------------------------------------------------------------


def test_members_redact_a_text_with_the_projects_policy(organization, project, owner, member_of):
    redaction_policy_update(project=project, actor=owner, detector_modes={"phone": "off"})
    client = person(member_of(organization, Role.MEMBER))
    text = f"Mail {EMAIL}, card {CARD}, call +1 415 555 2671"
    response = client.post(redact_url(organization, project), {"text": text}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["text"] == "Mail [EMAIL], card [CREDIT_CARD], call +1 415 555 2671"
    assert body["counts"] == {"credit_card": 1, "email": 1}
    assert body["policy"] == {"source": "project", "version": 1, "applied_at_ingest": True}


def test_a_json_value_is_redacted_string_by_string_keeping_its_shape(organization, project, owner):
    value = {"messages": [{"role": "user", "content": f"I am {EMAIL}"}], "api_key": "hunter2", "n": 3}
    response = person(owner).post(redact_url(organization, project), {"value": value}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["value"] == {"messages": [{"role": "user", "content": "I am [EMAIL]"}], "api_key": "[SECRET]", "n": 3}
    assert body["counts"] == {"email": 1, "secret_field": 1}
    # No policy saved: the defaults a first policy starts from, and ingestion does not apply them.
    assert body["policy"] == {"source": "defaults", "version": None, "applied_at_ingest": False}


def test_a_disabled_policy_can_still_be_tried(organization, project, owner):
    redaction_policy_update(project=project, actor=owner, enabled=False, detector_modes={"email": "off"})
    body = person(owner).post(redact_url(organization, project), {"text": f"{EMAIL} {CARD}"}, format="json").json()
    assert body["text"] == f"{EMAIL} [CREDIT_CARD]"
    assert body["policy"]["applied_at_ingest"] is False and body["policy"]["source"] == "project"


def test_redaction_requests_are_validated(organization, project, owner, member_of):
    client = person(owner)
    url = redact_url(organization, project)
    assert client.post(url, {}, format="json").status_code == 400
    assert client.post(url, {"text": "a", "value": "b"}, format="json").status_code == 400
    assert client.post(url, {"txt": "a"}, format="json").status_code == 400
    assert client.post(url, {"text": "x" * 1_000_001}, format="json").status_code == 400
    assert client.post(url, {"value": None}, format="json").json()["value"] is None
    assert person(member_of(organization, Role.VIEWER)).post(url, {"text": "a"}, format="json").status_code == 403


def test_a_failing_redactor_returns_nothing_of_the_input(organization, project, owner, monkeypatch):
    from privacy.engine import Redactor

    def broken(self, text):
        raise RuntimeError(f"boom {text}")

    monkeypatch.setattr(Redactor, "redact_text", broken)
    response = person(owner).post(redact_url(organization, project), {"text": EMAIL}, format="json")
    assert response.status_code == 422
    assert EMAIL not in response.content.decode()


def test_the_public_redact_endpoint_takes_the_secret_key(project, owner, api_key, other_project, other_owner):
    redaction_policy_update(project=project, actor=owner, default_mode="pseudonymize")
    redaction_policy_update(project=other_project, actor=other_owner, detector_modes={"email": "off"})
    client = APIClient()
    response = client.post("/api/public/redact", {"text": f"to {EMAIL}"}, format="json",
                           HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["text"].startswith("to [EMAIL:") and EMAIL not in body["text"]
    assert body["counts"] == {"email": 1}
    assert body["policy"] == {"source": "project", "version": 1, "appliedAtIngest": True}
    # The same token every time within the project (pseudonyms are stable).
    again = client.post("/api/public/redact", {"value": [EMAIL]}, format="json", HTTP_AUTHORIZATION=api_key.bearer)
    assert again.json()["value"] == [body["text"].removeprefix("to ")]


def test_the_public_redact_endpoint_refuses_bad_requests(api_key):
    client = APIClient()
    assert client.post("/api/public/redact", {"text": EMAIL}, format="json").status_code == 401
    public_only = client.post(
        "/api/public/redact", {"text": EMAIL}, format="json", HTTP_AUTHORIZATION=f"Bearer {api_key.public}"
    )
    assert public_only.status_code == 401
    auth = {"HTTP_AUTHORIZATION": api_key.basic}
    assert client.get("/api/public/redact", **auth).status_code == 405
    bad_json = client.post("/api/public/redact", data=b"{", content_type="application/json", **auth)
    assert bad_json.status_code == 400 and bad_json.json()["error"] == "InvalidRequestError"
    both = client.post("/api/public/redact", {"text": "a", "value": 1}, format="json", **auth)
    assert both.status_code == 400 and "exactly one" in both.json()["message"]
    assert client.post("/api/public/redact", [EMAIL], format="json", **auth).status_code == 400


# --- the console ----------------------------------------------------------------------------------


def _admin_form(project=None, **overrides):
    data = {
        "enabled": "on",
        "default_mode": "mask",
        "phone_default_region": "US",
        "custom_patterns": "[]",
        **{f"mode_{name}": "" for name in DETECTORS},
    }
    if project is not None:
        data["project"] = str(project.id)
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_an_org_admin_adds_and_edits_a_policy_in_the_console_and_it_is_audited(client, organization, project, member_of):
    admin_user = member_of(organization, Role.ADMIN)
    client.force_login(admin_user)
    add = client.post(
        reverse("admin:privacy_redactionpolicy_add"),
        _admin_form(project, mode_email="pseudonymize", custom_patterns='[{"label": "ORDER", "pattern": "ORD-\\\\d+"}]'),
    )
    assert add.status_code == 302, add.content.decode()[:3000]
    policy = RedactionPolicy.objects.get(project=project)
    assert policy.detector_modes == {"email": "pseudonymize"}
    assert policy.custom_patterns == [{"label": "ORDER", "pattern": "ORD-\\d+", "mode": "mask"}]

    change_url = reverse("admin:privacy_redactionpolicy_change", args=[policy.pk])
    page = client.get(change_url)
    assert page.status_code == 200 and 'name="mode_email"' in page.content.decode()
    edit = client.post(change_url, _admin_form(enabled=None, mode_phone="off"))
    assert edit.status_code == 302
    policy.refresh_from_db()
    assert (policy.enabled, policy.detector_modes, policy.version) == (False, {"phone": "off"}, 2)
    entries = audit_entries(project)
    assert [e.data["version"] for e in entries] == [1, 2] and {e.actor_id for e in entries} == {admin_user.id}
    assert entries[1].data["changes"]["enabled"] == [True, False]


def test_the_console_rejects_an_invalid_pattern_and_saves_nothing(client, organization, project, owner):
    client.force_login(owner)
    response = client.post(
        reverse("admin:privacy_redactionpolicy_add"),
        _admin_form(project, custom_patterns='[{"label": "ORDER", "pattern": "(unclosed"}]'),
    )
    assert response.status_code == 200
    assert "RE2" in response.content.decode()
    assert not RedactionPolicy.objects.filter(project=project).exists()
    assert audit_entries(project) == []


def test_viewers_see_the_policy_read_only_and_other_tenants_policies_not_at_all(
    client, organization, project, owner, member_of, other_project, other_owner
):
    mine = redaction_policy_update(project=project, actor=owner, detector_modes={"email": "off"})
    theirs = redaction_policy_update(project=other_project, actor=other_owner)
    client.force_login(member_of(organization, Role.VIEWER))
    listing = client.get(reverse("admin:privacy_redactionpolicy_changelist"))
    assert listing.status_code == 200
    assert project.name in listing.content.decode() and other_project.name not in listing.content.decode()
    page = client.get(reverse("admin:privacy_redactionpolicy_change", args=[mine.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="mode_email"' not in html and "mask (default mode)" in html
    assert html.count("mask (default mode)") == len(DETECTORS) - 1  # email is off
    post = client.post(reverse("admin:privacy_redactionpolicy_change", args=[mine.pk]), _admin_form())
    assert post.status_code == 403
    foreign = client.get(reverse("admin:privacy_redactionpolicy_change", args=[theirs.pk]))
    assert foreign.status_code == 302  # the admin's "doesn't exist" redirect, as for a missing id
    assert client.get(reverse("admin:privacy_redactionpolicy_add")).status_code == 403
    mine.refresh_from_db()
    assert mine.version == 1


def test_the_trace_page_shows_redaction_counts_per_observation(client, organization, project, member_of):
    Trace.objects.for_project(project).create(
        id="t-red", timestamp=T0, redactions={"input": {"email": 1}}, input="hi [EMAIL]"
    )
    Observation.objects.for_project(project).bulk_create(
        [
            Observation(id="o-red", trace_id="t-red", start_time=T0,
                        redactions={"input": {"email": 2, "phone": 1}, "output": {"credit_card": 1}}),
            Observation(id="o-clean", trace_id="t-red", start_time=T0 + timedelta(seconds=1)),
        ]
    )
    client.force_login(member_of(organization, Role.VIEWER))
    response = client.get(reverse("admin:traces_trace_detail", args=[project.id, "t-red"]))
    assert response.status_code == 200
    rows = {row["obs"].id: row for row in response.context["tree"]}
    assert rows["o-red"]["redactions"]["totals"] == [("credit_card", 1), ("email", 2), ("phone", 1)]
    assert rows["o-red"]["redactions"]["fields"] == [("input", "email 2, phone 1"), ("output", "credit_card 1")]
    assert rows["o-clean"]["redactions"] is None
    html = response.content.decode()
    assert "redacted 4" in html and "input: email 2, phone 1" in html
    assert "trace: email 1" in html and "observations: credit_card 1, email 2, phone 1" in html


# --- the read API ---------------------------------------------------------------------------------


@pytest.fixture
def redacted_rows(project, other_project):
    traces = Trace.objects.for_project(project)
    traces.create(id="t-own", timestamp=T0, redactions={"input": {"email": 1}})
    traces.create(id="t-child", timestamp=T0 + timedelta(seconds=1))
    traces.create(id="t-clean", timestamp=T0 + timedelta(seconds=2))
    traces.create(id="t-custom", timestamp=T0 + timedelta(seconds=3), redactions={"metadata": {"custom:ORDER": 2}})
    Observation.objects.for_project(project).bulk_create(
        [
            Observation(id="o-card", trace_id="t-child", start_time=T0, redactions={"output": {"credit_card": 1}}),
            Observation(id="o-mail", trace_id="t-child", start_time=T0,
                        redactions={"input": {"email": 3}, "tool_calls": {}}),
            Observation(id="o-clean", trace_id="t-clean", start_time=T0),
            Observation(id="o-odd", trace_id="t-clean", start_time=T0, redactions={"input": 5}),
        ]
    )
    # The other tenant has matching rows too: none may show up.
    Trace.objects.for_project(other_project).create(id="t-other", timestamp=T0, redactions={"input": {"email": 9}})
    Observation.objects.for_project(other_project).create(
        id="o-other", trace_id="t-other", start_time=T0, redactions={"input": {"email": 9}}
    )


def _ids(client, api_key, path, **params):
    response = client.get(path, params, HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 200, response.content
    return sorted(item["id"] for item in response.json()["data"])


def test_observations_filter_by_redaction(client, api_key, redacted_rows):
    url = "/api/public/observations"
    assert _ids(client, api_key, url, redacted="true") == ["o-card", "o-mail", "o-odd"]
    assert _ids(client, api_key, url, redacted="false") == ["o-clean"]
    assert _ids(client, api_key, url, redactedKind="email") == ["o-mail"]
    assert _ids(client, api_key, url, redactedKind="credit_card") == ["o-card"]
    assert _ids(client, api_key, url, redactedKind="email", redacted="false") == ["o-card", "o-clean", "o-odd"]
    v2 = client.get("/api/public/v2/observations", {"redactedKind": "email"}, HTTP_AUTHORIZATION=api_key.basic)
    assert [o["id"] for o in v2.json()["data"]] == ["o-mail"]
    assert v2.json()["data"][0]["redactions"] == {"input": {"email": 3}, "tool_calls": {}}


def test_traces_filter_by_their_own_and_their_observations_redactions(client, api_key, redacted_rows):
    url = "/api/public/traces"
    assert _ids(client, api_key, url, redacted="true") == ["t-child", "t-clean", "t-custom", "t-own"]
    assert _ids(client, api_key, url, redactedKind="email") == ["t-child", "t-own"]
    assert _ids(client, api_key, url, redactedKind="custom:ORDER") == ["t-custom"]
    assert _ids(client, api_key, url, redactedKind="email", redacted="false") == ["t-clean", "t-custom"]
    assert _ids(client, api_key, url, redactedKind="phone") == []


def test_a_trace_with_only_a_clean_observation_counts_as_not_redacted(client, api_key, project):
    Trace.objects.for_project(project).create(id="t-1", timestamp=T0)
    Observation.objects.for_project(project).create(id="o-1", trace_id="t-1", start_time=T0)
    assert _ids(client, api_key, "/api/public/traces", redacted="false") == ["t-1"]
    assert _ids(client, api_key, "/api/public/traces", redacted="true") == []


def test_unknown_redaction_kinds_answer_400(client, api_key):
    for path in ("/api/public/traces", "/api/public/observations", "/api/public/v2/observations"):
        response = client.get(path, {"redactedKind": "emial"}, HTTP_AUTHORIZATION=api_key.basic)
        assert response.status_code == 400 and "redactedKind" in response.json()["message"]
        response = client.get(path, {"redacted": "maybe"}, HTTP_AUTHORIZATION=api_key.basic)
        assert response.status_code == 400


def test_the_read_api_exposes_redaction_counts(client, api_key, redacted_rows):
    auth = {"HTTP_AUTHORIZATION": api_key.basic}
    trace = client.get("/api/public/traces/t-child", **auth).json()
    assert trace["redactions"] == {}
    assert {o["id"]: o["redactions"] for o in trace["observations"]} == {
        "o-card": {"output": {"credit_card": 1}}, "o-mail": {"input": {"email": 3}, "tool_calls": {}},
    }
    assert client.get("/api/public/traces/t-own", **auth).json()["redactions"] == {"input": {"email": 1}}
    listed = client.get("/api/public/traces", {"redactedKind": "email"}, **auth).json()["data"]
    assert {t["id"]: t["redactions"] for t in listed}["t-own"] == {"input": {"email": 1}}
    assert client.get("/api/public/observations/o-card", **auth).json()["redactions"] == {"output": {"credit_card": 1}}


def test_redaction_filters_keep_the_list_queries_constant(client, api_key, project, queries_everywhere):
    Trace.objects.for_project(project).bulk_create(
        [Trace(id=f"t{i}", timestamp=T0, redactions={"input": {"email": 1}}) for i in range(30)]
    )
    Observation.objects.for_project(project).bulk_create(
        [Observation(id=f"o{i}", trace_id=f"t{i}", start_time=T0, redactions={"input": {"email": 1}}) for i in range(30)]
    )
    client.get("/api/public/traces", {"redactedKind": "email"}, HTTP_AUTHORIZATION=api_key.basic)  # warm caches
    with queries_everywhere() as one:
        response = client.get("/api/public/traces", {"redactedKind": "email", "limit": 1},
                              HTTP_AUTHORIZATION=api_key.basic)
    assert len(response.json()["data"]) == 1
    with queries_everywhere() as thirty:
        response = client.get("/api/public/traces", {"redactedKind": "email"}, HTTP_AUTHORIZATION=api_key.basic)
    assert len(response.json()["data"]) == 30
    # Counted in every database: the traces, their observations and scores come from the region's.
    # The key cache may look the key up again between two requests (its one-second Redis stamp): a
    # control-plane query per request, not per row, so it is left out of the comparison.
    def per_request(queries):
        return [q for q in queries if '"tenancy_apikey"' not in q["sql"]]

    assert len(per_request(thirty)) <= len(per_request(one)) <= 8
