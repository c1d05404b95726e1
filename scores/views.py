"""Langfuse score configs (`/api/public/score-configs`): plain Django views like the other
Langfuse-compatible endpoints (they authenticate with project keys and shape answers exactly).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, InterfaceError, OperationalError
from django.views.decorators.csrf import csrf_exempt

from scores import selectors, services
from scores.models import ScoreConfigDataType
from tenancy.authentication import AuthenticationFailed, authenticate_header
from tenancy.http.body import streams_body
from tenancy.http.errors import (
    json_response,
)
from tenancy.http.plain import int_param as _int_param
from tenancy.http.plain import method_not_allowed_response as _method_not_allowed
from tenancy.http.plain import read_json_or_response as _read_json
from tenancy.http.plain import unauthorized_response as _unauthorized
from tenancy.http.plain import unavailable_response as _unavailable

MAX_PAGE_LIMIT = 100






def _authenticate(request):
    try:
        return authenticate_header(request.META.get("HTTP_AUTHORIZATION")), None
    except AuthenticationFailed as exc:
        return None, _unauthorized(exc.message)
    except (OperationalError, InterfaceError):
        return None, _unavailable()




# --- /api/public/score-configs ------------------------------------------------------------------


def _validation_message(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(
            f"{_CAMEL.get(name, name)}: {' '.join(messages)}" if name != "__all__" else " ".join(messages)
            for name, messages in exc.message_dict.items()
        )
    return " ".join(exc.messages)


_CAMEL = {
    "data_type": "dataType",
    "min_value": "minValue",
    "max_value": "maxValue",
    "is_archived": "isArchived",
}
_CONFIG_BODY = {
    "name": "name",
    "dataType": "data_type",
    "minValue": "min_value",
    "maxValue": "max_value",
    "categories": "categories",
    "description": "description",
    "isArchived": "is_archived",
}


def _config_fields(payload, *, allowed: set[str]) -> dict:
    if not isinstance(payload, dict):
        raise ValidationError("the body must be a JSON object")
    out = {}
    for key, value in payload.items():
        if key not in allowed:
            raise ValidationError(
                f"unknown or read-only field {key[:60]!r}; expected {', '.join(sorted(allowed))}"
            )
        target = _CONFIG_BODY[key]
        if target in ("min_value", "max_value") and value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValidationError({target: ["must be a number"]})
            value = float(value)
        if target == "is_archived" and not isinstance(value, bool):
            raise ValidationError({target: ["must be true or false"]})
        if (
            target in ("name", "description", "data_type")
            and value is not None
            and not isinstance(value, str)
        ):
            raise ValidationError({target: ["must be a string"]})
        out[target] = value
    return out


@streams_body
@csrf_exempt
def score_configs(request):
    """`GET` (paginated list) and `POST` (create) `/api/public/score-configs`."""
    if request.method not in ("GET", "POST"):
        return _method_not_allowed(["GET", "POST"])
    principal, error = _authenticate(request)
    if error is not None:
        return error
    project = principal.project
    if request.method == "GET":
        try:
            page = _int_param(request, "page", 1, low=1)
            limit = _int_param(request, "limit", 50, low=1, high=MAX_PAGE_LIMIT)
        except ValueError as exc:
            return json_response({"message": "Invalid request data", "error": str(exc)}, status=400)
        configs, total = selectors.score_config_page(project=project, page=page, limit=limit)
        return json_response(
            {
                "data": [selectors.score_config_to_langfuse(c) for c in configs],
                "meta": selectors.page_meta(page=page, limit=limit, total=total),
            }
        )
    payload, error = _read_json(request, limit=settings.FEEDBACK_MAX_BODY_BYTES)
    if error is not None:
        return error
    try:
        fields = _config_fields(payload, allowed=set(_CONFIG_BODY) - {"isArchived"})
        missing = [key for key in ("name", "data_type") if not fields.get(key)]
        if missing:
            raise ValidationError({key: ["is required"] for key in missing})
        if fields["data_type"] not in ScoreConfigDataType.values:
            raise ValidationError({"data_type": [f"must be one of {', '.join(ScoreConfigDataType.values)}"]})
        config = services.score_config_create(project=project, actor=principal, **fields)
    except ValidationError as exc:
        return json_response(
            {"message": "Invalid request data", "error": _validation_message(exc)}, status=400
        )
    except IntegrityError:
        return json_response(
            {"message": "Invalid request data", "error": "name: a live score config with this name exists"},
            status=409,
        )
    return json_response(selectors.score_config_to_langfuse(config))


@streams_body
@csrf_exempt
def score_config_detail(request, config_id: str):
    """`GET` and `PATCH /api/public/score-configs/{id}`; another project's config answers 404 exactly
    like a missing one."""
    if request.method not in ("GET", "PATCH"):
        return _method_not_allowed(["GET", "PATCH"])
    principal, error = _authenticate(request)
    if error is not None:
        return error
    config = None
    try:
        config = selectors.score_config_get(project=principal.project, config_id=uuid.UUID(config_id))
    except ValueError:
        pass
    if config is None:
        return json_response(
            {"error": "LangfuseNotFoundError", "message": "Score config not found"}, status=404
        )
    if request.method == "GET":
        return json_response(selectors.score_config_to_langfuse(config))
    payload, error = _read_json(request, limit=settings.FEEDBACK_MAX_BODY_BYTES)
    if error is not None:
        return error
    try:
        fields = _config_fields(payload, allowed=set(_CONFIG_BODY) - {"dataType"})
        config = services.score_config_update(config=config, actor=principal, **fields)
    except ValidationError as exc:
        return json_response(
            {"message": "Invalid request data", "error": _validation_message(exc)}, status=400
        )
    except IntegrityError:
        return json_response(
            {"message": "Invalid request data", "error": "name: a live score config with this name exists"},
            status=409,
        )
    return json_response(selectors.score_config_to_langfuse(config))
