"""The few calls of the Langfuse-compatible public API the CLI makes (Basic auth `pk:sk`).

Keys and host come from `LOOKGLASS_PUBLIC_KEY` / `LOOKGLASS_SECRET_KEY` / `LOOKGLASS_HOST`, or the
Langfuse SDKs' `LANGFUSE_PUBLIC_KEY` / `LANGFUSE_SECRET_KEY` / `LANGFUSE_HOST` (`LANGFUSE_BASE_URL`),
so a CI job already set up for Langfuse needs nothing new.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from urllib.parse import quote

import httpx

USER_AGENT = "lookglass-cli/0.1"
# Retried: the server's rate limits (429 + Retry-After) and a restarting server (502/503/504).
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_ATTEMPTS = 4
PAGE_LIMIT = 100


class ConfigError(Exception):
    """Missing or unusable configuration; the CLI exits with status 3."""


class ApiError(Exception):
    def __init__(self, method: str, path: str, status: int, body: str):
        self.status = status
        super().__init__(f"{method} {path} answered {status}: {body[:300]}")


@dataclass(frozen=True)
class Settings:
    host: str
    public_key: str
    secret_key: str

    @classmethod
    def from_env(cls, host: str | None = None, env=None) -> Settings:
        env = os.environ if env is None else env

        def first(*names: str) -> str | None:
            for name in names:
                if env.get(name):
                    return env[name]
            return None

        host = host or first("LOOKGLASS_HOST", "LANGFUSE_HOST", "LANGFUSE_BASE_URL")
        public = first("LOOKGLASS_PUBLIC_KEY", "LANGFUSE_PUBLIC_KEY")
        secret = first("LOOKGLASS_SECRET_KEY", "LANGFUSE_SECRET_KEY")
        missing = [
            name
            for name, value in (
                ("LOOKGLASS_HOST (or LANGFUSE_HOST)", host),
                ("LOOKGLASS_PUBLIC_KEY (or LANGFUSE_PUBLIC_KEY)", public),
                ("LOOKGLASS_SECRET_KEY (or LANGFUSE_SECRET_KEY)", secret),
            )
            if not value
        ]
        if missing:
            raise ConfigError("set " + ", ".join(missing))
        if not host.startswith(("http://", "https://")):
            raise ConfigError(f"the host must be an http(s) URL, not {host!r}")
        return cls(host.rstrip("/"), public, secret)


def segment(value: str) -> str:
    """A path segment: dataset and run names may contain `/`."""
    return quote(value, safe="")


class Api:
    def __init__(self, settings: Settings, *, timeout: float = 30.0, max_connections: int = 20):
        self.settings = settings
        self.client = httpx.AsyncClient(
            base_url=settings.host,
            auth=(settings.public_key, settings.secret_key),
            timeout=timeout,
            headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(max_connections=max_connections),
        )

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.client.aclose()

    async def request(self, method: str, path: str, *, json=None, params=None, ok=(200, 201, 202, 207)):
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = await self.client.request(method, path, json=json, params=params)
            except httpx.TransportError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise ApiError(method, path, 0, f"{type(exc).__name__}: {exc}") from None
                await asyncio.sleep(0.5 * 2**attempt)
                continue
            if response.status_code in RETRY_STATUSES and attempt < MAX_ATTEMPTS:
                await asyncio.sleep(_retry_after(response, attempt))
                continue
            if response.status_code not in ok:
                raise ApiError(method, path, response.status_code, response.text)
            return response.json() if response.content else None
        raise AssertionError("unreachable")

    # --- datasets -------------------------------------------------------------------------------

    async def dataset(self, name: str) -> dict:
        return await self.request("GET", f"/api/public/v2/datasets/{segment(name)}")

    async def dataset_items(self, name: str) -> list[dict]:
        items, page = [], 1
        while True:
            body = await self.request(
                "GET", "/api/public/dataset-items", params={"datasetName": name, "page": page, "limit": PAGE_LIMIT}
            )
            items.extend(body["data"])
            if page >= body["meta"].get("totalPages", 0):
                return items
            page += 1

    async def runs(self, dataset: str) -> list[dict]:
        body = await self.request(
            "GET", f"/api/public/datasets/{segment(dataset)}/runs", params={"page": 1, "limit": PAGE_LIMIT}
        )
        return body["data"]

    async def run(self, dataset: str, run: str) -> dict:
        return await self.request("GET", f"/api/public/datasets/{segment(dataset)}/runs/{segment(run)}")

    async def trace_scores(self, trace_id: str) -> list[dict]:
        body = await self.request("GET", "/api/public/scores", params={"traceId": trace_id, "limit": 100})
        return body["data"]

    # --- recording ------------------------------------------------------------------------------

    async def ingest(self, events: list[dict]) -> list[str]:
        """Send a batch; returns the per-event error messages (a 207 lists them)."""
        body = await self.request("POST", "/api/public/ingestion", json={"batch": events})
        return [f"{e.get('id')}: {e.get('message') or e.get('error')}" for e in (body or {}).get("errors", [])]

    async def run_item(self, payload: dict) -> dict:
        return await self.request("POST", "/api/public/dataset-run-items", json=payload)

    async def evaluator_names(self) -> set[str] | None:
        """Names and ids of the project's evaluators (`GET /api/public/v2/evaluators`, cursor
        pages), or None when the server has no such list."""
        names, cursor = set(), None
        for _ in range(100):
            params = {"limit": 50, **({"cursor": cursor} if cursor else {})}
            try:
                body = await self.request("GET", "/api/public/v2/evaluators", params=params)
            except ApiError as exc:
                if exc.status in (404, 405):
                    return None
                raise
            for evaluator in body.get("data", []):
                names.update(str(evaluator[key]) for key in ("name", "id") if evaluator.get(key))
            cursor = (body.get("meta") or {}).get("cursor")
            if not cursor:
                break
        return names

    async def judge(self, payload: dict) -> dict:
        return await self.request("POST", "/api/public/lookglass/judge", json=payload)


def _retry_after(response: httpx.Response, attempt: int) -> float:
    try:
        return min(float(response.headers.get("Retry-After", "")), 30.0)
    except ValueError:
        return 0.5 * 2**attempt
