"""Shared fixtures. Two other organizations with their own project and key are always present, so
every test can prove isolation against them: `other_*` in the SAME region as `project` (a missing
project filter shows up only there: both tenants' rows share one database), and `far_*` in the other
region (rows that reach the wrong region database show up there)."""

import pytest

from tests.factories import ApiKeyPair, MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory


def pytest_collection_modifyitems(items):
    # Every test may touch the control-plane and both region databases.
    for item in items:
        if item.get_closest_marker("django_db") is None:
            item.add_marker(pytest.mark.django_db(databases="__all__"))


@pytest.fixture
def organization():
    return OrganizationFactory(name="Acme")


@pytest.fixture
def project(organization):
    return ProjectFactory(organization=organization, name="support-bot", region="eu")


@pytest.fixture
def owner(organization):
    return MembershipFactory(organization=organization, role="owner").user


@pytest.fixture
def api_key(project) -> ApiKeyPair:
    return ApiKeyPair.issue(project)


@pytest.fixture
def other_organization():
    return OrganizationFactory(name="Globex")


@pytest.fixture
def other_project(other_organization):
    return ProjectFactory(organization=other_organization, name="globex-bot", region="eu")


@pytest.fixture
def other_owner(other_organization):
    return MembershipFactory(organization=other_organization, role="owner").user


@pytest.fixture
def other_api_key(other_project) -> ApiKeyPair:
    return ApiKeyPair.issue(other_project)


@pytest.fixture
def far_organization():
    return OrganizationFactory(name="Umbrella")


@pytest.fixture
def far_project(far_organization):
    return ProjectFactory(organization=far_organization, name="umbrella-bot", region="us")


@pytest.fixture
def far_owner(far_organization):
    return MembershipFactory(organization=far_organization, role="owner").user


@pytest.fixture
def far_api_key(far_project) -> ApiKeyPair:
    return ApiKeyPair.issue(far_project)


@pytest.fixture(autouse=True)
def _second_tenant(other_organization, other_project, other_owner, other_api_key):
    """Always present: a test that leaks across tenants has something to leak."""


@pytest.fixture(autouse=True)
def _far_tenant(far_organization, far_project, far_owner, far_api_key):
    """Always present too, in the other region."""


@pytest.fixture
def member_of():
    def make(organization, role):
        return MembershipFactory(organization=organization, role=role).user

    return make


@pytest.fixture
def superuser():
    return UserFactory(is_superuser=True, is_staff=True)


@pytest.fixture(autouse=True)
def _fresh_model_price_cache():
    """pricing.pricing keeps prices in-process and refreshes only after a commit; every test's rows
    are rolled back, never committed, so each test starts (and ends) with an empty snapshot."""
    from pricing.pricing import reset_local_cache

    reset_local_cache()
    yield
    reset_local_cache()


@pytest.fixture(autouse=True)
def _fresh_api_key_cache():
    """Tests roll back their rows; a key cached by one test must not outlive it."""
    from tenancy import keycache

    keycache.invalidate()
    yield
    keycache.invalidate()


@pytest.fixture(autouse=True)
def _fresh_redaction_policy_cache():
    """Tests roll back their rows; a policy a process keeps (privacy.engine `_local`) must not outlive them."""
    from privacy.engine import reset_local_policy_cache

    reset_local_policy_cache()
    yield
    reset_local_policy_cache()


@pytest.fixture
def queries_everywhere():
    """Capture the queries of every database (control plane and each region) in a block:

        with queries_everywhere() as captured:
            ...
        assert len(captured) <= 12

    pytest-django's `django_assert_num_queries` watches only `default`, so it cannot see a data-plane
    write growing with the batch."""
    from contextlib import ExitStack, contextmanager

    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    @contextmanager
    def capture():
        captured: list[dict] = []
        with ExitStack() as stack:
            contexts = [stack.enter_context(CaptureQueriesContext(connections[a])) for a in connections]
            yield captured
        for context in contexts:
            captured.extend(context.captured_queries)

    return capture
_WORKER_FUZZ_REQUESTS: dict[str, int] = {}


def _fuzz_requests() -> dict[str, int]:
    import sys

    support = sys.modules.get("tests.fuzz_support")
    return dict(support.REQUESTS) if support is not None else {}


def pytest_sessionfinish(session):
    # An xdist worker hands its count to the controller, which prints the sum (pytest_testnodedown).
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["fuzz_requests"] = _fuzz_requests()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    for name, count in getattr(node, "workeroutput", {}).get("fuzz_requests", {}).items():
        _WORKER_FUZZ_REQUESTS[name] = _WORKER_FUZZ_REQUESTS.get(name, 0) + count


def pytest_terminal_summary(terminalreporter):
    """The fuzz suite's request count, visible in every run that includes it (tests/fuzz_support.py),
    summed over the xdist workers when there are some."""
    requests = _fuzz_requests()
    for name, count in _WORKER_FUZZ_REQUESTS.items():
        requests[name] = requests.get(name, 0) + count
    if requests:
        detail = ", ".join(f"{name} {count}" for name, count in sorted(requests.items()))
        terminalreporter.write_line(f"fuzz: {sum(requests.values())} requests ({detail})")
