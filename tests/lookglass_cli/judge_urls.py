"""URLconfs for the CLI's judge tests: the real site, with the judge routes answered in front of it.

- `without_judge`: the judge endpoint answers 404 as on a server that predates it.
- `fake_judge`: a judge that scores 1 when the expected output is in the output, with reasoning,
  and one evaluator, `correctness` (and `hallucination`, where higher is worse), in the v2 list.
  It checks the request shape the CLI sends; the server's real judge is tested in tests/evals.
"""

import json

from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

NOT_FOUND = {"error": "LangfuseNotFoundError", "message": "Route not found"}


@csrf_exempt
def _missing(request):
    return JsonResponse(NOT_FOUND, status=404)


@csrf_exempt
def _judge(request):
    body = json.loads(request.body or b"{}")
    if not body.get("evaluator"):
        return JsonResponse({"message": "`evaluator` (a name or an id) is required."}, status=400)
    assert "traceId" not in body and isinstance(body.get("latencyMs"), float), body
    hit = str(body.get("expectedOutput")) in str(body.get("output"))
    if body["evaluator"] == "hallucination":
        value, better = (0.0 if hit else 1.0), False
    else:
        value, better = (1.0 if hit else 0.0), True
    return JsonResponse({"evaluator": body["evaluator"], "status": "completed", "value": value, "dataType": "NUMERIC",
                         "reasoning": f"expected {body.get('expectedOutput')!r} {'found' if hit else 'missing'}",
                         "higherIsBetter": better})


def _evaluators(request):
    return JsonResponse({"data": [{"id": "ev-1", "name": "correctness"}, {"id": "ev-2", "name": "hallucination"}],
                         "meta": {}})


def _site():
    return path("", include("config.urls"))


without_judge = [path("api/public/lookglass/judge", _missing), _site()]
fake_judge = [
    path("api/public/lookglass/judge", _judge),
    path("api/public/v2/evaluators", _evaluators),
    _site(),
]
