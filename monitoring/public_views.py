"""Langfuse-compatible metrics endpoints (plain views, project key auth like the rest of /api/public):
`GET /api/public/metrics` (v1), `GET /api/public/v2/metrics` and `GET /api/public/metrics/daily`.
Parsing and answering live in `monitoring.metrics`; a bad query is a 400 with the reason."""

from __future__ import annotations

import psycopg.errors
from django.db import DataError, InterfaceError, OperationalError

from monitoring import metrics
from tenancy.http.endpoint import endpoint
from tenancy.http.errors import HttpError, json_response, unavailable
from tenancy.http.params import InvalidParams, query_datetime, query_int, query_list

TOO_LONG = (f"the query ran longer than {metrics.RAW_STATEMENT_TIMEOUT_MS // 1000} s; narrow the time range, "
            "add filters, or ask what the rollups hold (see the metrics API docs)")


def _answer(call):
    try:
        return call()
    except metrics.MetricsQueryError as exc:
        raise HttpError(400, str(exc)) from None
    except InvalidParams as exc:
        raise HttpError(400, exc.message) from None
    except DataError as exc:
        # A value the database cannot compare (e.g. a number beyond its range): the client's query.
        first_line = str(exc).partition("\n")[0]
        raise HttpError(400, f"the query cannot be answered: {first_line[:200]}") from None
    except OperationalError as exc:
        if isinstance(exc.__cause__, psycopg.errors.QueryCanceled):
            raise HttpError(400, TOO_LONG) from None
        raise unavailable("the database is unavailable; retry later") from exc
    except InterfaceError as exc:
        raise unavailable("the database is unavailable; retry later") from exc


def _metrics(request, principal, version: int):
    def run():
        query = metrics.parse_query(request.GET.get("query"), version=version)
        result = metrics.run_query(project=principal.project, query=query)
        # Where the answer came from, for operators (Langfuse clients ignore unknown headers).
        return json_response({"data": result["data"]}, headers={"X-Lookglass-Metrics-Source": result["source"]})

    return _answer(run)


@endpoint("GET")
def metrics_v1(request, principal):
    return _metrics(request, principal, 1)


@endpoint("GET")
def metrics_v2(request, principal):
    return _metrics(request, principal, 2)


@endpoint("GET")
def metrics_daily(request, principal):
    def run():
        query = request.GET
        since, until = query_datetime(query, "fromTimestamp"), query_datetime(query, "toTimestamp")
        if since and until and since > until:
            raise InvalidParams("`fromTimestamp` must not be after `toTimestamp`")
        payload = metrics.daily_metrics(
            project=principal.project,
            page=query_int(query, "page", 1, low=1, high=1_000_000),
            limit=query_int(query, "limit", 50, low=1, high=metrics.DAILY_MAX_LIMIT),
            trace_name=query.get("traceName"),
            user_id=query.get("userId"),
            tags=query_list(query, "tags"),
            environments=query_list(query, "environment"),
            since=since,
            until=until,
        )
        return json_response(payload)

    return _answer(run)
