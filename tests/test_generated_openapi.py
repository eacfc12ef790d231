"""A generated app's OpenAPI document tells a front-end developer what each stream sends: every
event type with its payload's schema, how to authenticate, where to resume, and the responses
the route really gives; it is valid OpenAPI 3.1 for the tools teams gate CI with, and FastAPI's
`/docs` shows its stream routes."""

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi_pg_sse.openapi import ITEM_SCHEMA
from playwright.async_api import Page, Route, expect

from demo.browser import WAIT_MS, chromium
from tests.golden_cases import CASES, GOLDEN, generate
from tests.helpers import REPO, app_openapi, openapi_errors
from tests.served import serve_shop

TRIGGERED_EVENTS = ["stock_level_created", "stock_level_updated", "stock_level_deleted"]


def test_each_stream_route_documents_its_events_auth_resume_and_real_responses() -> None:
    document = app_openapi(GOLDEN / "second-channel")
    declared = {
        "/inventory/events/stock/stream": ["stock_updated"],
        "/warehouse-ops/events/stock-level/stream": TRIGGERED_EVENTS,
    }
    for path, event_types in declared.items():
        operation = document["paths"][path]["get"]
        assert set(operation["responses"]) == {"200", "400", "401", "429"}, path
        assert operation["security"] == [
            {"bearerToken": []},
            {"tokenCookie": []},
            {"tokenQuery": []},
        ]
        assert [(p["in"], p["name"]) for p in operation["parameters"]] == [
            ("header", "Last-Event-ID"),
            ("query", "last_event_id"),
        ]
        stream = operation["responses"]["200"]["content"]
        assert list(stream) == ["text/event-stream"], "no JSON body the route never sends"
        events = [
            entry["properties"]["event"]["const"]
            for entry in stream["text/event-stream"][ITEM_SCHEMA]["oneOf"]
        ]
        assert events == [*event_types, "reset", "expired", "revoked"], path
    assert set(document["components"]["securitySchemes"]) == {
        "bearerToken",
        "tokenCookie",
        "tokenQuery",
    }


def test_a_trigger_events_payload_schema_is_the_tables_row() -> None:
    document = app_openapi(GOLDEN / "second-channel")
    operation = document["paths"]["/warehouse-ops/events/stock-level/stream"]["get"]
    entries = operation["responses"]["200"]["content"]["text/event-stream"][ITEM_SCHEMA]["oneOf"]
    for entry in entries[:3]:
        row = entry["properties"]["data"]["contentSchema"]
        assert row["required"] == ["id", "user_id", "stock"]
        assert {name: field["type"] for name, field in row["properties"].items()} == {
            "id": "integer",
            "user_id": "string",
            "stock": "integer",
        }


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_openapi_document_of_every_golden_case_is_valid_openapi_3_1(
    tmp_path: Path, case: str
) -> None:
    """As `openapi-spec-validator` and `@redocly/cli lint` (its minimal ruleset) read it."""
    document = app_openapi(GOLDEN / case)
    assert document["openapi"] == "3.1.0"
    written = tmp_path / "openapi.json"
    written.write_text(json.dumps(document), encoding="utf-8")
    assert openapi_errors(written) == ""


SWAGGER_UI = REPO / ".tools" / "node_modules" / "swagger-ui-dist"
"""Swagger UI's files, from npm (`scripts/_environment.sh`): FastAPI's /docs loads them from
jsDelivr's `swagger-ui-dist@5`, which the tests do not reach."""
SWAGGER_UI_CDN = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/"
NOT_THE_APP = re.compile(r"^(?!http://127\.0\.0\.1:)")


@pytest.mark.e2e
def test_docs_render_each_stream_route_and_its_event_stream_in_chromium(
    tmp_path: Path, postgres_url: str
) -> None:
    """FastAPI's Swagger UI, as the app serves it at /docs, its files served locally."""
    project = generate("second-channel", tmp_path / "shop")
    paths = app_openapi(project)["paths"]
    streams = [path for path, item in paths.items() if _streams(item["get"])]
    # Each channel's route, and the runtime's stream of many channels.
    assert len(streams) == len(CASES["second-channel"]) + 1
    assert "/realtime/stream" in streams
    with serve_shop(project, postgres_url) as served:
        asyncio.run(_render_docs(served.server.url, streams))


def _streams(operation: dict[str, Any]) -> bool:
    return "text/event-stream" in operation["responses"]["200"].get("content", {})


async def _render_docs(url: str, streams: list[str]) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        await page.route(NOT_THE_APP, _refuse)
        await page.route(f"{SWAGGER_UI_CDN}*", _swagger_ui_file)
        await page.goto(f"{url}/docs")
        for path in streams:
            await _expand(page, path)
        body = page.locator("body")
        await expect(body).not_to_contain_text("Resolver error")
        await expect(body).not_to_contain_text("Unable to render")


async def _expand(page: Page, path: str) -> None:
    """Open the GET of `path` and see its 200 with the `text/event-stream` media type, and the
    429 it answers when the caller has too many streams open."""
    operation = page.locator(".opblock-get", has=page.locator(f'[data-path="{path}"]'))
    await operation.locator(".opblock-summary").click(timeout=WAIT_MS)
    ok = operation.locator('tr.response[data-code="200"]')
    await expect(ok).to_be_visible(timeout=WAIT_MS)
    await expect(ok).to_contain_text("text/event-stream", timeout=WAIT_MS)
    too_many = operation.locator('tr.response[data-code="429"]')
    await expect(too_many).to_be_visible(timeout=WAIT_MS)


async def _swagger_ui_file(route: Route) -> None:
    await route.fulfill(path=SWAGGER_UI / route.request.url.removeprefix(SWAGGER_UI_CDN))


async def _refuse(route: Route) -> None:
    """Anything but the app and Swagger UI's files (FastAPI's favicon): nothing leaves."""
    await route.abort()
