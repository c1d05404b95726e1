"""Schema-driven fuzzing of the OpenAPI surface served at `/api/schema/` (the management API `/api/v1`
and the Langfuse read endpoints) with schemathesis: requests that fit the schema and requests that do
not, sent in-process through Django's test client as a session user (management) or with the
project's key pair (`/api/public`), with a second organization present.

Properties: never a 5xx; another organization's objects answer 403/404, never 2xx; the server is
healthy afterwards.
"""

from __future__ import annotations

import json
import os
import re

import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis.core import NOT_SET
from schemathesis.generation.modes import GenerationMode

from tests.factories import ApiKeyPair
from tests.fuzz_support import CountingClient, fuzz_settings

# Real transactions, as in production: each request commits or fails on its own (inside one test-wide
# transaction, a database error that a view turns into a 4xx would poison every later request).
pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


EXAMPLES = {"public": 1800, "read": 1100, "write": 1600}
if os.environ.get("FUZZ_N"):
    EXAMPLES = dict.fromkeys(EXAMPLES, int(os.environ["FUZZ_N"]))
# With tests/fuzz/test_fuzz_ingestion.py (2,900) and tests/fuzz/test_fuzz_otel.py (2,600): ≥ 10,000 per run.
MIN_REQUESTS = {"public": 1800, "read": 1100, "write": 1600}
IDS = re.compile(r"\{(\w+)\}")


@pytest.fixture
def world(client, organization, project, owner, other_organization, other_project, api_key, other_api_key):
    """Real ids for path parameters: ours (must work) and the other organization's (must not)."""
    from pricing.models import ModelPrice
    from tenancy.models import Membership

    spare = ApiKeyPair.issue(project)  # revocable without locking the fuzzer out
    price = ModelPrice.objects.create(
        project_id=project.id, model_name="fuzz-model", match_pattern="fuzz.*", input_price=1, output_price=2
    )
    other_price = ModelPrice.objects.create(
        project_id=other_project.id,
        model_name="globex-model",
        match_pattern="globex.*",
        input_price=1,
        output_price=2,
    )
    member = Membership.objects.filter(organization=organization).exclude(user=owner).first()
    ingest = client.post(
        "/api/public/ingestion",
        json.dumps(
            {
                "batch": [
                    {
                        "id": "e1",
                        "type": "trace-create",
                        "timestamp": "2026-11-26T19:42:27Z",
                        "body": {"id": "trace-1", "sessionId": "session-1", "name": "t"},
                    },
                    {
                        "id": "e2",
                        "type": "generation-create",
                        "timestamp": "2026-11-26T19:42:27Z",
                        "body": {"id": "obs-1", "traceId": "trace-1", "model": "gpt-4o"},
                    },
                ]
            }
        ),
        content_type="application/json",
        HTTP_AUTHORIZATION=api_key.basic,
    )
    assert ingest.status_code == 207
    ours = {
        "organization_id": str(organization.id),
        "project_id": str(project.id),
        "user_id": str(owner.id),
        "api_key_id": str(spare.key.id),
        "price_id": str(price.id),
        "trace_id": "trace-1",
        "observation_id": "obs-1",
        "session_id": "session-1",
        "prompt_name": "greeting",
    }
    if member is not None:
        ours["user_id"] = str(member.user_id)
    theirs = {
        "organization_id": str(other_organization.id),
        "project_id": str(other_project.id),
        "api_key_id": str(other_api_key.key.id),
        "price_id": str(other_price.id),
    }
    return {"ours": ours, "theirs": theirs, "key": api_key, "owner": owner}


def _operations(client):
    raw = client.get("/api/schema/?format=json")
    assert raw.status_code == 200
    schema = schemathesis.openapi.from_dict(json.loads(raw.content))
    return [result.ok() for result in schema.get_all_operations()]


def _run(group, world, select, *, keep_ours):
    fuzz = CountingClient(f"api-{group}")
    fuzz.force_login(world["owner"])
    operations = [op for op in _operations(fuzz) if select(op)]
    assert operations, group
    strategies = {}
    start = fuzz.count

    def strategy(op, mode):
        if (op.label, mode) not in strategies:
            strategies[op.label, mode] = op.as_strategy(generation_mode=mode)
        return strategies[op.label, mode]

    @fuzz_settings(EXAMPLES[group])
    @given(data=st.data())
    def check(data):
        op = data.draw(st.sampled_from(operations), label="operation")
        mode = data.draw(
            st.sampled_from([GenerationMode.POSITIVE, GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
        )
        case = data.draw(strategy(op, mode), label="case")
        foreign = False
        params = dict(case.path_parameters or {})
        for name in IDS.findall(op.path):
            choice = data.draw(st.sampled_from(["generated", "ours", "ours", "theirs"]))
            if choice == "ours" and name in world["ours"] and keep_ours(op, name):
                params[name] = world["ours"][name]
            elif choice == "theirs" and name in world["theirs"]:
                params[name] = world["theirs"][name]
                foreign = True
        path = op.path
        for name, value in params.items():
            path = path.replace("{" + name + "}", _quote(value))
        headers = {"HTTP_AUTHORIZATION": world["key"].basic} if path.startswith("/api/public/") else {}
        query = {k: v for k, v in (case.query or {}).items()}
        body = case.body
        kwargs = {"data": None}
        if body is not NOT_SET and body is not None and not isinstance(body, (bytes, str)):
            kwargs = {"data": json.dumps(body, default=str), "content_type": "application/json"}
        elif isinstance(body, (bytes, str)):
            kwargs = {"data": body, "content_type": case.media_type or "application/json"}
        method = case.method.upper()
        if method == "GET":
            response = fuzz.get(path, query, **headers)
        else:
            target = path + ("?" + _urlencode(query) if query else "")
            response = fuzz.generic(
                method,
                target,
                kwargs["data"] or b"",
                content_type=kwargs.get("content_type", "application/json"),
                **headers,
            )
        where = f"{method} {path} query={query!r:.200} body={body!r:.300}"
        assert response.status_code < 500, (
            f"{where} answered {response.status_code}: {response.content[:300]!r}"
        )
        if foreign:
            assert response.status_code in (403, 404, 405), (
                f"{where}: another organization's object answered {response.status_code}: {response.content[:200]!r}"
            )

    check()
    made = fuzz.count - start
    print(f"\nfuzz api {group}: {made} requests over {len(operations)} operations")
    assert made >= MIN_REQUESTS[group]
    assert fuzz.get("/api/public/health").status_code == 200
    assert fuzz.get("/api/v1/me").status_code == 200


def _quote(value) -> str:
    from urllib.parse import quote

    return quote(str(value), safe="")


def _urlencode(query) -> str:
    from urllib.parse import urlencode

    return urlencode(query, doseq=True)


def test_fuzz_public_read_api(world):
    _run("public", world, lambda op: op.path.startswith("/api/public/"), keep_ours=lambda op, name: True)


def test_fuzz_management_reads(world):
    _run(
        "read",
        world,
        lambda op: op.path.startswith("/api/v1/") and op.method.upper() == "GET",
        keep_ours=lambda op, name: True,
    )


def test_fuzz_management_writes(world):
    # Our organization and project are never deleted or left by the session user mid-run (later examples
    # would only see 404s); every other write may hit our real objects.
    def keep_ours(op, name):
        if (
            op.method.upper() == "DELETE"
            and name in ("organization_id", "project_id", "user_id")
            and (op.path.endswith(("{organization_id}/", "{project_id}/", "{user_id}/")))
        ):
            return op.path.endswith("{user_id}/") and name != "user_id"
        return True

    _run(
        "write",
        world,
        lambda op: op.path.startswith("/api/v1/") and op.method.upper() != "GET",
        keep_ours=keep_ours,
    )
