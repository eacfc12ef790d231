#!/usr/bin/env python3
"""Validate OpenAPI documents with the tools teams gate CI and generate clients with:
`openapi-spec-validator` (the `test` extra) and `@redocly/cli lint` with its minimal ruleset
(in .tools/, which scripts/_environment.sh installs), offline:

    python scripts/validate_openapi.py openapi.json [more.json ...]

Neither reads inside an extension, so the schema of each event of a stream (the media type's
`x-oai-itemSchema`, OpenAPI 3.2's `itemSchema` in a 3.1 document) is checked against JSON Schema
2020-12's own meta-schema too, as a client generator would read it.

Prints each error as `file: tool: message (at pointer)`, one a line; Redocly's warnings (an app
without `servers`, a route without `security`) are the app's choices, not errors. Exit status: 0
every document is valid, 1 one has errors, 2 a file cannot be read or a validator is missing.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fastapi_pg_sse.openapi import ITEM_SCHEMA
from jsonschema import Draft202012Validator
from openapi_spec_validator.shortcuts import get_validator_cls

REDOCLY = Path(__file__).resolve().parent.parent / ".tools" / "node_modules" / ".bin" / "redocly"
OFFLINE = {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_NOTIFICATIONS": "true"}
"""Redocly's documented switches for its usage data and its update check, the only requests
`lint` of a self-contained document makes."""


def spec_validator_errors(path: Path) -> Iterator[str]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    for error in get_validator_cls(document)(document).iter_errors():
        yield f"{path}: openapi-spec-validator: {error.message} (at {_pointer(error.path)})"
    meta_schema = Draft202012Validator(Draft202012Validator.META_SCHEMA)
    for where, item_schema in _item_schemas(document):
        for error in meta_schema.iter_errors(item_schema):
            at = _pointer([*where, ITEM_SCHEMA, *error.path])
            yield f"{path}: JSON Schema 2020-12: {error.message} (at {at})"


def _item_schemas(document: dict[str, Any]) -> Iterator[tuple[list[str], Any]]:
    """Each `x-oai-itemSchema` of a response's media type, with where its media type is."""
    for route, path_item in document.get("paths", {}).items():
        for method, operation in path_item.items():
            for status, response in operation.get("responses", {}).items():
                for media_type, content in response.get("content", {}).items():
                    if ITEM_SCHEMA in content:
                        where = ["paths", route, method, "responses", status, "content"]
                        yield [*where, media_type], content[ITEM_SCHEMA]


def _pointer(parts: Iterable[object]) -> str:
    return "#" + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def redocly_errors(paths: list[Path]) -> Iterator[str]:
    linted = subprocess.run(
        [str(REDOCLY), "lint", "--extends", "minimal", "--format", "json", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **OFFLINE},
    )
    if linted.returncode not in (0, 1) or not linted.stdout.startswith("{"):
        raise OSError(f"redocly lint failed: {linted.stderr.strip()}")
    for problem in _reports(linted.stdout):
        if problem["severity"] == "error":
            [where, *_] = problem["location"]
            source = where["source"]["ref"]
            yield f"{source}: redocly: {problem['message']} (at {where['pointer']})"


def _reports(printed: str) -> Iterator[dict[str, Any]]:
    """The problems of each document's JSON report: Redocly prints one report a document."""
    decoder, start = json.JSONDecoder(), 0
    while start < len(printed.rstrip()):
        report, start = decoder.raw_decode(printed, start)
        yield from report["problems"]


def main(files: list[str]) -> int:
    if not files:
        print("usage: python scripts/validate_openapi.py FILE [FILE ...]", file=sys.stderr)
        return 2
    if not REDOCLY.exists():
        print(f"error: {REDOCLY} is missing: run `source scripts/_environment.sh`", file=sys.stderr)
        return 2
    paths = [Path(file) for file in files]
    try:
        errors = [
            *(error for path in paths for error in spec_validator_errors(path)),
            *redocly_errors(paths),
        ]
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(*errors, sep="\n", end="\n" if errors else "")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
