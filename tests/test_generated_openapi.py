"""A generated app's OpenAPI document tells a front-end developer what each stream sends: every
event type with its payload's schema, how to authenticate, where to resume, and the responses
the route really gives."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.golden_cases import GOLDEN

TRIGGERED_EVENTS = ["stock_level_created", "stock_level_updated", "stock_level_deleted"]


def _openapi(project: Path) -> dict[str, Any]:
    """The document of the project's app, imported in a process of its own."""
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from shop.main import app; print(json.dumps(app.openapi()))",
        ],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    document: dict[str, Any] = json.loads(completed.stdout)
    return document


def test_each_stream_route_documents_its_events_auth_resume_and_real_responses() -> None:
    document = _openapi(GOLDEN / "second-channel")
    declared = {
        "/inventory/events/stock/stream": ["stock_updated"],
        "/warehouse-ops/events/stock-level/stream": TRIGGERED_EVENTS,
    }
    for path, event_types in declared.items():
        operation = document["paths"][path]["get"]
        assert set(operation["responses"]) == {"200", "400", "401", "429", "503"}, path
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
            for entry in stream["text/event-stream"]["itemSchema"]["oneOf"]
        ]
        assert events == [*event_types, "reset", "expired", "revoked"], path
    assert set(document["components"]["securitySchemes"]) == {
        "bearerToken",
        "tokenCookie",
        "tokenQuery",
    }


def test_a_trigger_events_payload_schema_is_the_tables_row() -> None:
    document = _openapi(GOLDEN / "second-channel")
    operation = document["paths"]["/warehouse-ops/events/stock-level/stream"]["get"]
    entries = operation["responses"]["200"]["content"]["text/event-stream"]["itemSchema"]["oneOf"]
    for entry in entries[:3]:
        row = entry["properties"]["data"]["contentSchema"]
        assert row["required"] == ["id", "user_id", "stock"]
        assert {name: field["type"] for name, field in row["properties"].items()} == {
            "id": "integer",
            "user_id": "string",
            "stock": "integer",
        }
