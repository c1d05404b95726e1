"""Every route under /api/v1/, discovered from the URL resolver, refuses other tenants and strangers.

Nothing here lists endpoints by hand: a new route is walked as soon as it is added to `config.urls`,
and a route whose path takes an id this file does not know how to fill makes the test fail until
someone teaches `FILLERS` what that id names (so it cannot slip through untested).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.urls import URLResolver, get_resolver, resolve
from django.utils.regex_helper import normalize
from rest_framework.test import APIClient

from tenancy.models import ApiKey, AuditLogEntry, Invitation, Membership, Organization, Project
from tenancy.services import invitation_create
from tests.factories import ApiKeyPair, MembershipFactory

PREFIX = "api/v1/"
METHODS = ("get", "post", "put", "patch", "delete")
# The routes tenancy/api/urls.py defines today; more may exist (other apps mount under /api/v1/ too).
KNOWN_ROUTES = 14
KNOWN_NAMES = {
    "me",
    "invitation-accept",
    "organization-list",
    "organization-detail",
    "member-list",
    "member-detail",
    "invitation-list",
    "invitation-detail",
    "project-list",
    "project-detail",
    "api-key-list",
    "api-key-detail",
    "api-key-revoke",
    "audit-log",
}


@dataclass
class Tenant:
    organization: Organization
    project: Project
    member_user_id: object
    invitation: Invitation
    api_key: ApiKeyPair
    # Objects other apps own, made only when one of their routes needs an id of that kind.
    made: dict = field(default_factory=dict)

    def lazily(self, kind: str, make):
        if kind not in self.made:
            self.made[kind] = make(self)
        return self.made[kind]


def _model_price(tenant: Tenant):
    from pricing.models import ModelPrice

    name = f"iso-{tenant.organization.name.lower()}"
    return ModelPrice.objects.create(
        project=tenant.project,
        provider="openai",
        model_name=name,
        match_pattern=f"^{name}$",
        input_price=1,
        output_price=2,
    )


# kwarg name → (nesting level, value for a tenant). The level orders the mixed variants: "my
# organization, their project", "my project, their key", and so on.
def _prompt_name(tenant: Tenant) -> str:
    from prompts.payloads import parse_create
    from prompts.selectors import prompt_by_name
    from prompts.services import prompt_create_version

    name = f"iso/{tenant.organization.name.lower()}"
    if prompt_by_name(project=tenant.project, name=name) is None:
        prompt_create_version(project=tenant.project, data=parse_create({"name": name, "prompt": "x"}), actor=None)
    return name


def _prompt_label(tenant: Tenant) -> str:
    """A label on the tenant's prompt (moving it to the version it is on is a no-op, so this is
    idempotent); `_victim_state` watches the victim's labels."""
    from prompts.services import prompt_version_add_labels

    prompt_version_add_labels(project=tenant.project, name=_prompt_name(tenant), version=1, labels=["iso"], actor=None)
    return "iso"


def _review_rule(tenant: Tenant):
    from evals.review_services import review_rule_create

    return review_rule_create(project=tenant.project, actor=None, name="iso", dataset_name="iso", value=0)


def _llm_connection(tenant: Tenant):
    from evals.eval_services import connection_upsert

    return connection_upsert(project=tenant.project, provider="iso", adapter="openai", secret_key="sk-iso-123456789")[0]


def _evaluator(tenant: Tenant):
    from evals.eval_services import evaluator_create

    return evaluator_create(project=tenant.project, data={"name": "iso", "template": "helpfulness"})


def _eval_job(tenant: Tenant):
    from evals.evaluation_models import EvalJob

    evaluator = tenant.lazily("evaluator", _evaluator)
    return EvalJob.objects.for_project(tenant.project).create(
        id=f"iso-{tenant.organization.name.lower()}", evaluator_id=evaluator.pk,
        evaluator_version_id=evaluator.versions.get().pk, target="trace", trace_id="iso",
    )


def _dataset_run(tenant: Tenant):
    from evals.models import Dataset, DatasetRun

    dataset = Dataset.objects.for_project(tenant.project).create(name="iso-runs")
    return DatasetRun.objects.for_project(tenant.project).create(dataset_id=dataset.id, name="iso")


def _alert_channel(tenant: Tenant):
    from monitoring.alerts_services import alert_channel_create

    # A public address literal: passes the SSRF check without DNS; nothing is ever sent to it here.
    return alert_channel_create(project=tenant.project, actor=None, name="iso", kind="webhook",
                                url="https://93.184.216.34/hook")


def _score_config(tenant: Tenant):
    from scores.services import score_config_create

    return score_config_create(project=tenant.project, actor=None, name="iso", data_type="NUMERIC")


def _erasure(tenant: Tenant):
    from privacy.services import erasure_request_create

    return erasure_request_create(project=tenant.project, kind="user", subjects=["iso-user"], via="api")


def _export(tenant: Tenant):
    from privacy.services import export_create

    return export_create(project=tenant.project)


FILLERS = {
    "organization_id": (0, lambda t: t.organization.id),
    "project_id": (1, lambda t: t.project.id),
    "user_id": (1, lambda t: t.member_user_id),
    "invitation_id": (1, lambda t: t.invitation.id),
    "api_key_id": (2, lambda t: t.api_key.key.id),
    # pricing: a project's price override (the catalog route must not serve it either).
    "price_id": (2, lambda t: t.lazily("model_price", _model_price).id),
    # prompts: a prompt that exists in the victim's project (the compare route must not serve it).
    "prompt_name": (2, _prompt_name),
    # scores: a score config of the victim's project (the Langfuse route must not serve it either).
    "config_id": (2, lambda t: t.lazily("score_config", _score_config).id),
    # prompts: a label of the victim's prompt; same level as the prompt name, so a variant never
    # pairs the attacker's own prompt with it (that would be the attacker's own label).
    "label": (2, _prompt_label),
    # evals: a review rule of the victim's project (evaluation rules share the name; their own
    # isolation tests are in tests/evals/test_evaluations.py).
    "rule_id": (2, lambda t: t.lazily("review_rule", _review_rule).id),
    # evals: the victim's LLM connection, evaluator, evaluation job and dataset run.
    "connection_id": (2, lambda t: t.lazily("llm_connection", _llm_connection).id),
    "evaluator_id": (2, lambda t: t.lazily("evaluator", _evaluator).id),
    "job_id": (2, lambda t: t.lazily("eval_job", _eval_job).id),
    "run_id": (2, lambda t: t.lazily("dataset_run", _dataset_run).id),
    # monitoring: the victim's seed alert rule (every project has it) and an alert channel.
    "alert_rule_id": (2, lambda t: t.project.alert_rules.get(seed_key="refusal_rate_5pct").id),
    "channel_id": (2, lambda t: t.lazily("alert_channel", _alert_channel).id),
    # privacy: an erasure request of the victim's project.
    "erasure_id": (2, lambda t: t.lazily("erasure", _erasure).id),
    # privacy: an export of the victim's project.
    "data_export_id": (2, lambda t: t.lazily("export", _export).id),
}


@dataclass
class Route:
    name: str | None
    template: str
    params: list[str]
    callback: object

    def url(self, values: dict) -> str:
        path = "/" + self.template % {k: str(v) for k, v in values.items()}
        match = resolve(path)
        # A URL that resolved elsewhere would answer 404 for the wrong reason and prove nothing.
        assert match.func is self.callback, f"{path} resolved to {match.route}, not {self.template}"
        return path


def api_v1_routes() -> list[Route]:
    routes: list[Route] = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            regex = prefix + pattern.pattern.regex.pattern.lstrip("^")
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, regex)
                continue
            template, params = normalize(regex)[0]
            if template.startswith(PREFIX):
                routes.append(Route(pattern.name, template, list(params), pattern.callback))

    walk(get_resolver("config.urls").url_patterns, "")
    return routes


def _require_fillers(route: Route) -> None:
    unknown = [p for p in route.params if p not in FILLERS]
    if unknown:
        pytest.fail(
            f"/{route.template} takes {unknown}; add them to FILLERS in tests/tenancy/test_api_isolation.py so the "
            "isolation walk can aim them at another tenant's real objects"
        )


def _own_values(route: Route, tenant: Tenant) -> dict:
    _require_fillers(route)
    return {p: FILLERS[p][1](tenant) for p in route.params}


def _variants(route: Route, attacker: Tenant, victim: Tenant) -> list[dict]:
    """All-victim ids, then the attacker's own ids for the outer levels and the victim's below."""
    _require_fillers(route)
    levels = sorted({FILLERS[p][0] for p in route.params})
    variants = []
    for mine_below in levels:
        variants.append(
            {p: FILLERS[p][1](attacker if FILLERS[p][0] < mine_below else victim) for p in route.params}
        )
    return variants


def _tenant(organization, project, member_user, api_key) -> Tenant:
    invitation, _token = invitation_create(
        organization=organization,
        email=f"invitee@{organization.name.lower()}.example",
        role="member",
        invited_by=None,
    )
    return Tenant(organization, project, member_user.id, invitation, api_key)


@pytest.fixture
def attacker(organization, project, owner, api_key) -> Tenant:
    MembershipFactory(organization=organization, role="member")
    return _tenant(organization, project, owner, api_key)


@pytest.fixture
def victim(other_organization, other_project, other_owner, other_api_key) -> Tenant:
    from feedback.services import feedback_settings_update

    # Not the defaults, so a PUT that reached it would show in `_victim_state`.
    feedback_settings_update(
        project=other_project, actor=None, allowed_origins=["https://globex.example"], comment_max_length=99
    )
    return _tenant(other_organization, other_project, other_owner, other_api_key)


def _victim_markers(victim: Tenant) -> list[str]:
    return [
        str(victim.organization.id),
        victim.organization.name,
        str(victim.project.id),
        victim.project.name,
        victim.api_key.public,
        str(victim.api_key.key.id),
        str(victim.member_user_id),
        victim.invitation.email,
        str(victim.invitation.id),
        *(str(obj.pk) for obj in victim.made.values()),
    ]


def _victim_state(victim: Tenant) -> tuple:
    from feedback.models import FeedbackSettings
    from prompts.models import PromptLabel
    from scores.models import ScoreConfig

    org_id = victim.organization.id
    return (
        sorted(PromptLabel.objects.for_project(victim.project).values_list("prompt_id", "label", "version")),
        # Project-level configuration a PUT with an empty body would reset or a POST would add to.
        list(FeedbackSettings.objects.filter(project__organization_id=org_id).values_list(
            "project_id", "enabled", "allowed_origins", "comment_max_length", "updated_at")),
        list(ScoreConfig.objects.filter(project__organization_id=org_id).values_list(
            "id", "name", "is_archived", "updated_at")),
        list(Organization.objects.filter(pk=org_id).values_list("name", flat=True)),
        list(Project.objects.filter(organization_id=org_id).values_list("id", "name", "region")),
        list(Membership.objects.filter(organization_id=org_id).values_list("user_id", "role")),
        list(ApiKey.objects.filter(project__organization_id=org_id).values_list("id", "revoked_at", "note")),
        list(
            Invitation.objects.filter(organization_id=org_id).values_list("id", "revoked_at", "accepted_at")
        ),
        AuditLogEntry.objects.filter(organization_id=org_id).count(),
        [_rows_of(obj, victim) for obj in victim.made.values()],
    )


def _rows_of(obj, tenant: Tenant) -> list:
    manager = type(obj)._default_manager
    if hasattr(manager, "for_project"):  # data-plane rows live in the project's region database
        return list(manager.for_project(tenant.project).filter(pk=obj.pk).values())
    return list(manager.filter(pk=obj.pk).values())


def _call(client: APIClient, method: str, url: str):
    if method in ("post", "put", "patch"):
        return getattr(client, method)(url, {}, format="json")
    return getattr(client, method)(url)


def _assert_no_leak(response, markers, where):
    text = response.content.decode(errors="replace")
    leaked = [m for m in markers if m in text]
    assert not leaked, f"{where} answered {response.status_code} containing the other tenant's {leaked}"


def test_the_walk_finds_every_management_route():
    routes = api_v1_routes()
    assert len(routes) >= KNOWN_ROUTES
    assert KNOWN_NAMES <= {r.name for r in routes}


def _plan(attacker: Tenant, victim: Tenant) -> list[tuple[Route, list[str]]]:
    """Every route with the URLs to try, built first so lazily made objects exist before the snapshot."""
    return [
        (
            route,
            [route.url(values) for values in _variants(route, attacker, victim)]
            if route.params
            else [route.url({})],
        )
        for route in api_v1_routes()
    ]


def test_no_route_serves_a_member_of_another_organization(attacker, victim):
    client = APIClient()
    client.force_login(Membership.objects.get(organization=attacker.organization, role="owner").user)
    plan = _plan(attacker, victim)
    markers = _victim_markers(victim)
    before = _victim_state(victim)
    for route, urls in plan:
        for url in urls:
            statuses = {}
            for method in METHODS:
                response = _call(client, method, url)
                statuses[method] = response.status_code
                _assert_no_leak(response, markers, f"{method.upper()} {url}")
            if not route.params:
                # Not under a tenant (me, organization list, invitation accept): the caller's own data only.
                assert max(statuses.values()) < 500, f"{url} answered {statuses}"
                continue
            assert set(statuses.values()) <= {404, 405}, f"{url} answered {statuses} to a non-member"
            assert 404 in statuses.values(), f"{url} answered {statuses}: no method reached the tenant check"
    assert len(plan) >= KNOWN_ROUTES
    assert _victim_state(victim) == before


def test_no_route_serves_an_anonymous_caller(attacker):
    client = APIClient()
    routes = api_v1_routes()
    for route in routes:
        url = route.url(_own_values(route, attacker))
        statuses = {method: _call(client, method, url).status_code for method in METHODS}
        assert set(statuses.values()) <= {401, 405}, f"{url} answered {statuses} to an anonymous caller"
        assert 401 in statuses.values(), f"{url} answered {statuses}: never asked for credentials"
    assert len(routes) >= KNOWN_ROUTES


def test_an_api_key_of_one_project_reaches_nothing_of_another(attacker, victim):
    client = APIClient()
    plan = _plan(attacker, victim)
    markers = _victim_markers(victim)
    before = _victim_state(victim)
    for header in (attacker.api_key.basic, attacker.api_key.bearer):
        client.credentials(HTTP_AUTHORIZATION=header)
        for route, urls in plan:
            for url in urls:
                for method in METHODS:
                    response = _call(client, method, url)
                    where = f"{method.upper()} {url}"
                    _assert_no_leak(response, markers, where)
                    allowed = {401, 403, 404, 405} if route.params else set(range(200, 500))
                    assert response.status_code in allowed, (
                        f"{where} answered {response.status_code} to a key"
                    )
    assert len(plan) >= KNOWN_ROUTES
    assert _victim_state(victim) == before
    assert ApiKey.objects.get(pk=attacker.api_key.key.id).revoked_at is None
