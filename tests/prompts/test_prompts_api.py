"""The Langfuse-compatible prompt API: shapes, labels, versions, folders, errors and isolation."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from django.db import IntegrityError, transaction

from prompts import cache, selectors
from prompts.models import Prompt, PromptLabel, PromptLabelEvent, PromptVersion
from prompts.payloads import parse_create
from prompts.services import prompt_create_version, prompt_version_add_labels
from tenancy.models import AuditAction, AuditLogEntry
from tenancy.regions import region_database

BASE = "/api/public/v2/prompts"


def _nested(levels: int) -> dict:
    value: object = 1
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.fixture(autouse=True)
def _fresh_local_cache():
    cache.local.clear()
    yield
    cache.local.clear()


def url(name: str, suffix: str = "") -> str:
    return f"{BASE}/{quote(name, safe='')}{suffix}"


def post(client, key, path, body):
    return client.post(
        path, data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=key.basic
    )


def patch(client, key, path, body):
    return client.patch(
        path, data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=key.basic
    )


def get(client, key, path, **params):
    return client.get(path, params, HTTP_AUTHORIZATION=key.basic)


def create(client, key, **body):
    response = post(client, key, BASE, body)
    assert response.status_code == 201, response.content
    return response.json()


# --- create and fetch --------------------------------------------------------------------------


def test_it_creates_a_text_prompt_in_langfuse_shape(client, api_key, project):
    body = create(
        client,
        api_key,
        name="greeting",
        prompt="Hello {{name}}!",
        config={"model": "gpt-4o", "temperature": 0.2},
        labels=["production"],
        tags=["demo"],
        commitMessage="first",
    )
    assert body["name"] == "greeting"
    assert body["type"] == "text"
    assert body["version"] == 1
    assert body["prompt"] == "Hello {{name}}!"
    assert body["config"] == {"model": "gpt-4o", "temperature": 0.2}
    assert sorted(body["labels"]) == ["latest", "production"]
    assert body["tags"] == ["demo"]
    assert body["commitMessage"] == "first"
    assert body["projectId"] == str(project.id)
    assert body["createdBy"] == "API"
    assert body["resolutionGraph"] is None
    assert body["createdAt"].endswith("Z") and body["updatedAt"].endswith("Z")

    fetched = get(client, api_key, url("greeting"))
    assert fetched.status_code == 200
    assert fetched["Content-Type"] == "application/json"
    assert fetched.json() == body


def test_it_creates_a_chat_prompt_with_a_placeholder(client, api_key):
    body = create(
        client,
        api_key,
        name="support/chat",
        type="chat",
        labels=["staging"],
        config={},
        tags=None,
        commitMessage=None,
        prompt=[{"role": "system", "content": "Be {{tone}}"}, {"name": "history", "type": "placeholder"}],
    )
    assert body["type"] == "chat"
    assert body["prompt"] == [
        {"role": "system", "content": "Be {{tone}}", "type": "chatmessage"},
        {"type": "placeholder", "name": "history"},
    ]
    assert sorted(body["labels"]) == ["latest", "staging"]
    assert body["tags"] == []


def test_the_default_fetch_serves_production_and_404s_in_langfuse_shape_without_it(client, api_key):
    create(client, api_key, name="draft", prompt="v1")
    response = get(client, api_key, url("draft"))
    assert response.status_code == 404
    assert response.json() == {
        "message": "Prompt not found: 'draft' with label 'production'",
        "error": "LangfuseNotFoundError",
    }
    assert get(client, api_key, url("draft"), label="latest").json()["version"] == 1


def test_it_fetches_by_version_and_by_label(client, api_key):
    create(client, api_key, name="p", prompt="one", labels=["production"])
    create(client, api_key, name="p", prompt="two", labels=["staging"])
    create(client, api_key, name="p", prompt="three")
    assert get(client, api_key, url("p")).json()["prompt"] == "one"
    assert get(client, api_key, url("p"), label="staging").json()["prompt"] == "two"
    assert get(client, api_key, url("p"), label="latest").json()["prompt"] == "three"
    by_version = get(client, api_key, url("p"), version="2").json()
    assert (by_version["version"], by_version["labels"]) == (2, ["staging"])
    missing = get(client, api_key, url("p"), version="9")
    assert missing.status_code == 404
    assert missing.json()["message"] == "Prompt not found: 'p' with version 9"
    assert get(client, api_key, url("p"), label="canary").status_code == 404


def test_a_config_with_numbers_beyond_64_bits_is_served(client, api_key):
    """jsonb gives a float such as 1e20 back as the integer 100000000000000000000, and a config may
    hold such an integer as sent; orjson refuses both, which made every fetch of the prompt a 500.
    (Numbers come back as JSON numbers do in the SDKs: doubles, so 2**70 to double precision.)"""
    config = {"big": 2**70, "float": 1e20, "small": 0.5}
    create(client, api_key, name="wide", prompt="hi", labels=["production"], config=config)

    def as_doubles(value: dict) -> dict:
        return {key: float(number) for key, number in value.items()}

    for params in ({}, {"version": "1"}, {"label": "latest"}, {}):  # the last one from the cache
        response = get(client, api_key, url("wide"), **params)
        assert response.status_code == 200, response.content
        assert as_doubles(response.json()["config"]) == as_doubles(config)
    listed = get(client, api_key, BASE, name="wide")
    assert listed.status_code == 200 and as_doubles(listed.json()["data"][0]["lastConfig"]) == as_doubles(config)


def test_latest_moves_to_each_new_version_and_labels_are_unique_per_prompt(client, api_key, project):
    create(client, api_key, name="p", prompt="one", labels=["production", "canary"])
    second = create(client, api_key, name="p", prompt="two", labels=["production"])
    assert second["version"] == 2
    assert sorted(second["labels"]) == ["latest", "production"]
    first = get(client, api_key, url("p"), version="1").json()
    assert first["labels"] == ["canary"]
    rows = PromptLabel.objects.for_project(project).order_by("label").values_list("label", "version")
    assert list(rows) == [("canary", 1), ("latest", 2), ("production", 2)]


def test_tags_apply_to_every_version_and_are_inherited_when_omitted(client, api_key):
    create(client, api_key, name="p", prompt="one", tags=["a"])
    assert create(client, api_key, name="p", prompt="two")["tags"] == ["a"]
    create(client, api_key, name="p", prompt="three", tags=["b", "c"])
    assert get(client, api_key, url("p"), version="1").json()["tags"] == ["b", "c"]


def test_a_new_version_cannot_change_the_type(client, api_key):
    create(client, api_key, name="p", prompt="text")
    response = post(
        client, api_key, BASE, {"name": "p", "type": "chat", "prompt": [{"role": "user", "content": "x"}]}
    )
    assert response.status_code == 400
    assert "text prompt" in response.json()["message"]


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"prompt": "x"}, "`name` is required"),
        ({"name": "a|b", "prompt": "x"}, "`|`"),
        ({"name": "x" * 256, "prompt": "x"}, "at most 255"),
        ({"name": "folder/metrics", "prompt": "x"}, "/metrics"),
        ({"name": "p", "prompt": ["x"]}, "prompt[0]"),
        ({"name": "p", "type": "text", "prompt": 3}, "text prompt needs `prompt` as a string"),
        ({"name": "p", "type": "chat", "prompt": []}, "non-empty list"),
        ({"name": "p", "type": "chat", "prompt": [{"role": "user"}]}, "string `content`"),
        ({"name": "p", "type": "chat", "prompt": [{"type": "placeholder"}]}, "placeholder"),
        ({"name": "p", "type": "bogus", "prompt": "x"}, "`type`"),
        ({"name": "p", "prompt": "x", "labels": ["Prod"]}, "not valid"),
        ({"name": "p", "prompt": "x", "labels": "production"}, "list of strings"),
        ({"name": "p", "prompt": "x", "config": [1]}, "`config`"),
        ({"name": "p", "prompt": "x", "config": _nested(101)}, "`config` cannot be stored: it nests deeper than 100"),
        ({"name": "p", "prompt": "x", "tags": [1]}, "`tags`"),
        ({"name": "p", "prompt": "x", "commitMessage": "m" * 501}, "500"),
        (
            {
                "name": "p",
                "type": "chat",
                "prompt": [{"role": "user", "content": "{{h}}"}, {"type": "placeholder", "name": "h"}],
            },
            "must differ",
        ),
    ],
)
def test_it_rejects_invalid_create_bodies_with_a_clear_400(client, api_key, project, body, fragment):
    response = post(client, api_key, BASE, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "InvalidRequestError"
    assert fragment in response.json()["message"]
    assert not Prompt.objects.for_project(project).exists()


def test_it_rejects_a_body_that_is_not_json(client, api_key):
    response = client.post(
        BASE, data=b"{nope", content_type="application/json", HTTP_AUTHORIZATION=api_key.basic
    )
    assert response.status_code == 400
    assert response.json()["message"] == "the request body is not valid JSON."


def test_it_rejects_both_version_and_label_and_a_bad_version(client, api_key):
    create(client, api_key, name="p", prompt="x", labels=["production"])
    assert get(client, api_key, url("p"), version="1", label="production").status_code == 400
    assert get(client, api_key, url("p"), version="one").status_code == 400
    assert get(client, api_key, url("p"), version="0").status_code == 400


# --- folders --------------------------------------------------------------------------------------


def test_names_with_slashes_route_encoded_and_raw(client, api_key):
    create(client, api_key, name="team/support/greeting", prompt="hi", labels=["production"])
    encoded = get(client, api_key, f"{BASE}/team%2Fsupport%2Fgreeting")
    raw = get(client, api_key, f"{BASE}/team/support/greeting")
    assert encoded.status_code == raw.status_code == 200
    assert encoded.json()["name"] == raw.json()["name"] == "team/support/greeting"


def test_a_prompt_whose_name_ends_like_a_route_suffix_is_still_fetched_by_get(client, api_key):
    create(client, api_key, name="docs/compile", prompt="c", labels=["production"])
    create(client, api_key, name="docs/versions/2", prompt="v", labels=["production"])
    assert get(client, api_key, url("docs/compile")).json()["prompt"] == "c"
    assert get(client, api_key, url("docs/versions/2")).json()["prompt"] == "v"
    moved = patch(client, api_key, url("docs/versions/2", "/versions/1"), {"newLabels": ["staging"]})
    assert moved.status_code == 200
    assert sorted(moved.json()["labels"]) == ["latest", "production", "staging"]


# --- label moves ------------------------------------------------------------------------------------


def test_update_moves_labels_keeps_existing_ones_and_is_audited(client, api_key, project, organization):
    create(client, api_key, name="refund-policy", prompt="one", labels=["production"])
    create(client, api_key, name="refund-policy", prompt="two")
    response = patch(
        client, api_key, url("refund-policy", "/versions/2"), {"newLabels": ["production", "canary"]}
    )
    assert response.status_code == 200
    assert sorted(response.json()["labels"]) == ["canary", "latest", "production"]
    assert get(client, api_key, url("refund-policy")).json()["version"] == 2
    assert get(client, api_key, url("refund-policy"), version="1").json()["labels"] == []

    events = PromptLabelEvent.objects.for_project(project).order_by("created_at", "label")
    assert [(e.label, e.from_version, e.to_version) for e in events] == [
        ("production", None, 1),
        ("canary", None, 2),
        ("production", 1, 2),
    ]
    assert all(e.actor == f"api key {api_key.public}" for e in events)
    audit = AuditLogEntry.objects.filter(
        organization_id=organization.id, action=AuditAction.PROMPT_LABEL_MOVED
    )
    moves = {(e.data["label"], e.data["from_version"], e.data["to_version"]) for e in audit}
    assert moves == {("canary", None, 2), ("production", None, 1), ("production", 1, 2)}
    assert audit.count() == 3
    assert {e.data["project"] for e in audit} == {str(project.id)}
    # The control plane gets ids and versions, not the prompt's name (customer content stays in the region).
    assert all("refund-policy" not in json.dumps(e.data) and e.target_type == "prompt" for e in audit)


def test_moving_a_label_to_where_it_already_is_records_nothing(client, api_key, project):
    create(client, api_key, name="p", prompt="one", labels=["production"])
    assert patch(client, api_key, url("p", "/versions/1"), {"newLabels": ["production"]}).status_code == 200
    assert PromptLabelEvent.objects.for_project(project).count() == 1


def test_update_refuses_latest_unknown_versions_and_bad_bodies(client, api_key):
    create(client, api_key, name="p", prompt="one")
    refused = patch(client, api_key, url("p", "/versions/1"), {"newLabels": ["latest"]})
    assert refused.status_code == 400 and "managed by the server" in refused.json()["message"]
    assert patch(client, api_key, url("p", "/versions/1"), {}).status_code == 400
    assert patch(client, api_key, url("p", "/versions/x"), {"newLabels": []}).status_code == 400
    missing = patch(client, api_key, url("p", "/versions/7"), {"newLabels": ["production"]})
    assert missing.status_code == 404
    assert missing.json() == {
        "message": "Prompt not found: 'p' with version 7",
        "error": "LangfuseNotFoundError",
    }
    assert (
        patch(client, api_key, url("nope", "/versions/1"), {"newLabels": ["production"]}).status_code == 404
    )


def test_the_database_allows_one_version_per_label_per_prompt(project):
    prompt, _ = prompt_create_version(
        project=project, data=parse_create({"name": "p", "prompt": "x"}), actor=None
    )
    db = region_database(project.region)
    with pytest.raises(IntegrityError), transaction.atomic(using=db):
        PromptLabel.objects.for_project(project).create(prompt_id=prompt.id, label="latest", version=1)


def test_a_label_cannot_point_at_a_version_that_does_not_exist(project):
    prompt, _ = prompt_create_version(
        project=project, data=parse_create({"name": "p", "prompt": "x"}), actor=None
    )
    with pytest.raises(IntegrityError), transaction.atomic(using=region_database(project.region)):
        PromptLabel.objects.for_project(project).create(prompt_id=prompt.id, label="production", version=5)


def test_version_content_is_immutable_in_the_database(project):
    _, version = prompt_create_version(
        project=project, data=parse_create({"name": "p", "prompt": "x"}), actor=None
    )
    with (
        pytest.raises(IntegrityError, match="immutable"),
        transaction.atomic(using=region_database(project.region)),
    ):
        PromptVersion.objects.for_project(project).filter(id=version.id).update(text="changed")


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_concurrent_creates_get_distinct_consecutive_versions(project):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def create_one(i):
        try:
            body = {"name": "busy", "prompt": f"text {i}", "labels": ["production"]}
            return prompt_create_version(project=project, data=parse_create(body), actor=None)[1].version
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=6) as pool:
        numbers = sorted(pool.map(create_one, range(12)))
    assert numbers == list(range(1, 13))
    assert Prompt.objects.for_project(project).get(name="busy").latest_version == 12
    labels = dict(PromptLabel.objects.for_project(project).values_list("label", "version"))
    assert labels == {"latest": 12, "production": 12}


# --- cache ----------------------------------------------------------------------------------------


def test_a_label_move_is_visible_on_the_next_fetch(
    client, api_key, project, django_capture_on_commit_callbacks
):
    create(client, api_key, name="p", prompt="one", labels=["production"])
    create(client, api_key, name="p", prompt="two")
    assert get(client, api_key, url("p")).json()["version"] == 1  # now cached
    assert get(client, api_key, url("p"), version="2").json()["labels"] == ["latest"]
    with django_capture_on_commit_callbacks(using=region_database(project.region), execute=True):
        prompt_version_add_labels(project=project, name="p", version=2, labels=["production"], actor=None)
    assert get(client, api_key, url("p")).json()["version"] == 2
    assert sorted(get(client, api_key, url("p"), version="2").json()["labels"]) == ["latest", "production"]


def test_redis_is_invalidated_for_other_processes_not_only_the_local_cache(
    client, api_key, project, monkeypatch
):
    create(client, api_key, name="p", prompt="one", labels=["production"])
    create(client, api_key, name="p", prompt="two")
    assert get(client, api_key, url("p")).json()["version"] == 1
    cache.local.clear()
    with monkeypatch.context() as patched:
        patched.setattr(
            "prompts.selectors.prompt_payload_for", lambda **kw: pytest.fail("database read on a Redis hit")
        )
        assert get(client, api_key, url("p")).json()["version"] == 1

    prompt_version_add_labels(project=project, name="p", version=2, labels=["production"], actor=None)
    cache.local.clear()  # as in another process, whose LRU never saw the write
    assert get(client, api_key, url("p")).json()["version"] == 2


def test_a_cached_404_ends_when_the_prompt_is_created(client, api_key):
    assert get(client, api_key, url("later")).status_code == 404
    create(client, api_key, name="later", prompt="now", labels=["production"])
    assert get(client, api_key, url("later")).json()["prompt"] == "now"


def test_a_label_no_prompt_can_carry_is_a_404_and_never_a_cache_key(client, api_key, project):
    import warnings

    from django.core.cache import cache as shared_cache
    from django.core.cache.backends.base import CacheKeyWarning

    create(client, api_key, name="p", prompt="x", labels=["production"])
    for label in ("Prod \x1e\U00016201", "x" * 2000, "UPPER"):
        response = get(client, api_key, url("p"), label=label)
        assert response.status_code == 404, label
        with warnings.catch_warnings():  # this lookup's own key is the kind the fix keeps out of the cache
            warnings.simplefilter("ignore", CacheKeyWarning)
            key = f"{cache._base(project.id, 'p')}:{cache.selector_key(label=label, version=None)}"
            assert shared_cache.get(key) is None
        assert cache.local.get((project.id, "p", cache.selector_key(label=label, version=None))) is None
    assert get(client, api_key, url("p"), label="production").json()["prompt"] == "x"


def test_fetches_after_the_first_do_not_query_the_region_database(
    client, api_key, project, django_assert_num_queries
):
    create(client, api_key, name="p", prompt="x", labels=["production"])
    get(client, api_key, url("p"))
    # Only key authentication touches the control plane; the prompt comes from the cache.
    with django_assert_num_queries(0, using=region_database(project.region)):
        assert get(client, api_key, url("p")).status_code == 200


# --- list -----------------------------------------------------------------------------------------


def test_the_list_has_langfuse_meta_and_filters(client, api_key):
    create(client, api_key, name="a", prompt="1", labels=["production"], tags=["x"], config={"v": 1})
    create(client, api_key, name="a", prompt="2", config={"v": 2})
    create(client, api_key, name="b/c", prompt="1", tags=["y"])
    create(
        client, api_key, name="d", type="chat", prompt=[{"role": "user", "content": "hi"}], labels=["staging"]
    )

    everything = get(client, api_key, BASE).json()
    assert everything["meta"] == {"page": 1, "limit": 50, "totalItems": 3, "totalPages": 1}
    first = everything["data"][0]
    assert first["name"] == "a"
    assert first["type"] == "text"
    assert first["versions"] == [1, 2]
    assert first["labels"] == ["latest", "production"]
    assert first["tags"] == ["x"]
    assert first["lastConfig"] == {"v": 2}
    assert first["lastUpdatedAt"].endswith("Z")
    assert [row["name"] for row in everything["data"]] == ["a", "b/c", "d"]

    production = get(client, api_key, BASE, label="production").json()
    assert [(r["name"], r["versions"], r["lastConfig"]) for r in production["data"]] == [("a", [1], {"v": 1})]
    assert [r["name"] for r in get(client, api_key, BASE, tag="y").json()["data"]] == ["b/c"]
    assert [r["name"] for r in get(client, api_key, BASE, name="d").json()["data"]] == ["d"]

    paged = get(client, api_key, BASE, page="2", limit="2").json()
    assert [r["name"] for r in paged["data"]] == ["d"]
    assert paged["meta"] == {"page": 2, "limit": 2, "totalItems": 3, "totalPages": 2}
    beyond = get(client, api_key, BASE, page="9", limit="2").json()
    assert beyond["data"] == [] and beyond["meta"]["totalItems"] == 3
    assert get(client, api_key, BASE, fromUpdatedAt="2999-01-01T00:00:00Z").json()["data"] == []


def test_the_list_rejects_bad_parameters(client, api_key):
    assert get(client, api_key, BASE, limit="0").status_code == 400
    assert get(client, api_key, BASE, page="x").status_code == 400
    assert get(client, api_key, BASE, fromUpdatedAt="yesterday").status_code == 400
    assert get(client, api_key, BASE, label="Not A Label").status_code == 400


def test_the_list_runs_a_fixed_number_of_queries(client, api_key, project, django_assert_max_num_queries):
    for i in range(6):
        create(client, api_key, name=f"p{i}", prompt="x", labels=["production"])
        create(client, api_key, name=f"p{i}", prompt="y")
    with django_assert_max_num_queries(1, using=region_database(project.region)):
        assert len(get(client, api_key, BASE).json()["data"]) == 6


# --- compile ----------------------------------------------------------------------------------------


def test_compile_substitutes_and_reports_missing_and_unused(client, api_key):
    create(
        client,
        api_key,
        name="g",
        prompt="Hello {{ name }}, welcome to {{place}}! {{name}}",
        labels=["production"],
    )
    response = post(client, api_key, url("g", "/compile"), {"variables": {"name": "Ada", "extra": 1}})
    assert response.status_code == 200
    body = response.json()
    assert body["prompt"] == "Hello Ada, welcome to {{place}}! Ada"
    assert body["missing"] == ["place"]
    assert body["unused"] == ["extra"]
    assert body["version"] == 1


def test_compile_fills_chat_messages_and_placeholders_by_label_or_version(client, api_key):
    create(
        client,
        api_key,
        name="c",
        type="chat",
        labels=["staging"],
        prompt=[
            {"role": "system", "content": "You are {{persona}}."},
            {"type": "placeholder", "name": "history"},
            {"role": "user", "content": "{{question}}"},
        ],
    )
    body = post(
        client,
        api_key,
        url("c", "/compile"),
        {
            "label": "staging",
            "variables": {
                "persona": "a pirate",
                "question": "Where?",
                "history": [{"role": "user", "content": "hi {{persona}}"}],
            },
        },
    ).json()
    assert body["prompt"] == [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "hi a pirate"},
        {"role": "user", "content": "Where?"},
    ]
    assert body["missing"] == [] and body["unused"] == []
    unresolved = post(client, api_key, url("c", "/compile"), {"version": 1, "variables": {}}).json()
    assert unresolved["missing"] == ["persona", "question", "history"]
    assert {"type": "placeholder", "name": "history"} in unresolved["prompt"]


def test_compile_errors_are_4xx(client, api_key):
    create(client, api_key, name="g", prompt="x", labels=["production"])
    assert post(client, api_key, url("g", "/compile"), {"variables": [1]}).status_code == 400
    assert post(client, api_key, url("g", "/compile"), {"label": "canary"}).status_code == 404
    assert post(client, api_key, url("nope", "/compile"), {}).status_code == 404


# --- auth, methods, isolation -------------------------------------------------------------------------


def test_it_requires_a_secret_key(client, api_key):
    create(client, api_key, name="p", prompt="x", labels=["production"])
    anonymous = client.get(url("p"))
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "UnauthorizedError"
    public_only = client.get(url("p"), HTTP_AUTHORIZATION=f"Bearer {api_key.public}")
    assert public_only.status_code == 401
    bearer = client.get(url("p"), HTTP_AUTHORIZATION=api_key.bearer)
    assert bearer.status_code == 200


def test_wrong_methods_get_405(client, api_key):
    assert client.put(BASE, HTTP_AUTHORIZATION=api_key.basic).status_code == 405
    assert client.delete(url("p"), HTTP_AUTHORIZATION=api_key.basic).status_code == 405
    response = client.put(url("p", "/compile"), HTTP_AUTHORIZATION=api_key.basic)
    assert response.status_code == 405
    assert response.json()["error"] == "MethodNotAllowedError"


def test_a_get_on_a_suffix_route_is_a_fetch_of_the_full_name(client, api_key):
    response = get(client, api_key, url("p", "/versions/1"))
    assert response.status_code == 404
    assert response.json()["message"] == "Prompt not found: 'p/versions/1' with label 'production'"


def test_another_projects_key_sees_nothing(client, api_key, other_api_key, project, other_project):
    create(client, api_key, name="secret/plan", prompt="mine", labels=["production"])
    for params in ({}, {"version": "1"}, {"label": "latest"}):
        response = get(client, other_api_key, url("secret/plan"), **params)
        assert response.status_code == 404
        assert "mine" not in response.content.decode()
    assert get(client, other_api_key, BASE).json()["data"] == []
    assert (
        patch(
            client, other_api_key, url("secret/plan", "/versions/1"), {"newLabels": ["staging"]}
        ).status_code
        == 404
    )
    assert post(client, other_api_key, url("secret/plan", "/compile"), {}).status_code == 404
    assert get(client, other_api_key, url("secret/plan", "/metrics")).status_code == 404
    # The other project gets its own prompt of the same name, with its own version numbers.
    theirs = create(client, other_api_key, name="secret/plan", prompt="theirs", labels=["production"])
    assert theirs["version"] == 1
    assert get(client, api_key, url("secret/plan")).json()["prompt"] == "mine"
    assert get(client, other_api_key, url("secret/plan")).json()["prompt"] == "theirs"
    assert PromptLabel.objects.for_project(project).filter(label="staging").count() == 0
    assert Prompt.objects.for_project(other_project).count() == 1


def test_a_config_nested_as_deep_as_any_stored_json_value_is_kept(client, api_key):
    """100 levels, the limit every stored JSON value keeps (`ingest.contract.MAX_JSON_DEPTH`); one more
    is the 400 of the table above."""
    create(client, api_key, name="deep", prompt="hi", labels=["production"], config=_nested(100))
    config = get(client, api_key, url("deep")).json()["config"]
    for _ in range(99):
        config = config["a"]
    assert config == {"a": 1}


def test_a_value_the_database_refuses_is_a_400_with_its_first_line_only(client, api_key, project):
    """PostgreSQL's message goes on with DETAIL and CONTEXT lines quoting the statement's data: the
    client gets the first line (`tenancy.middleware`)."""
    response = post(client, api_key, BASE, {"name": "nul", "prompt": "hi", "config": {"k": "a\u0000b"}})
    assert response.status_code == 400
    message = response.json()["message"]
    assert message.endswith("unsupported Unicode escape sequence") and "\n" not in message, message
    assert selectors.prompt_by_name(project=project, name="nul") is None
