"""The generator runs pinned by `golden/`: each case is a list of commands run on the example."""

import re
from collections.abc import Callable
from pathlib import Path

from fastapi_pg_sse.schema import SchemaVersion, creation_sql, migration_sql

from scaffold.render import MIGRATION_HEADER
from tests.helpers import REPO, copy_example, run_scaffold

GOLDEN = REPO / "golden"
RUNTIME_SCHEMA_MIGRATION = re.compile(r"migrations/\d+_fastapi_pg_sse_schema_(\d+)_(\d+)\.sql")
"""The runtime's schema migration of a project with SQL migrations: the runtime's own SQL, which
golden/ does not copy (`without_runtime_schema`)."""
TRIGGERED = ("--table", "baskets", "--user-column", "user_id")
CHOSEN_COLUMNS = ("--columns", "id,stock")

OWN_AUTH_MODULE = '''\
"""The shop's own authentication: a signed session cookie."""

from typing import Annotated

from fastapi import Cookie, HTTPException, status


async def current_user_id(session: Annotated[str | None, Cookie()] = None) -> str:
    if session is None or not session.startswith("user:"):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Sign in first.")
    return session.removeprefix("user:")
'''


def with_own_auth(project: Path) -> None:
    """Give the shop its own auth dependency and name it in `[tool.scaffold]`."""
    (project / "shop" / "auth.py").write_text(OWN_AUTH_MODULE)
    pyproject = project / "pyproject.toml"
    setting = 'tests = "tests"\n'
    pyproject.write_text(
        pyproject.read_text().replace(setting, f'{setting}auth = "shop.auth:current_user_id"\n')
    )


def with_typescript_client(project: Path) -> None:
    """Ask for the TypeScript client in `[tool.scaffold]`."""
    pyproject = project / "pyproject.toml"
    setting = 'tests = "tests"\n'
    pyproject.write_text(
        pyproject.read_text().replace(setting, f'{setting}typescript = "web/realtime"\n')
    )


GROUP_TRIGGERED = ("--table", "notices", "--group-column", "team_id")
NOTICES_MIGRATION = """\
CREATE TABLE notices (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id text NOT NULL,
    body text NOT NULL DEFAULT ''
);
"""


TEAMS_MODULE = '''\
"""Which teams a user is in."""

from fastapi import Request
from fastapi_pg_sse import AuthenticatedUser


def teams_of(user: AuthenticatedUser, request: Request) -> frozenset[str]:
    """The teams the identity provider lists in the user's token."""
    return user.groups
'''


def with_notices_to_teams(project: Path) -> None:
    """Give the shop a table of notices, each to the members of one team, and name the function
    that says which teams a user is in in `[tool.scaffold]`."""
    (project / "migrations" / "0002_create_notices.sql").write_text(NOTICES_MIGRATION)
    (project / "shop" / "teams.py").write_text(TEAMS_MODULE)
    pyproject = project / "pyproject.toml"
    setting = 'tests = "tests"\n'
    pyproject.write_text(
        pyproject.read_text().replace(setting, f'{setting}groups = "shop.teams:teams_of"\n')
    )


ROOM_TRIGGERED = ("--table", "messages", "--group-column", "room_id.team_id")
MESSAGES_MIGRATION = """\
CREATE TABLE rooms (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id text NOT NULL
);
CREATE TABLE messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id bigint NOT NULL REFERENCES rooms,
    body text NOT NULL DEFAULT ''
);
"""


def with_messages_in_team_rooms(project: Path) -> None:
    """Give the shop rooms, each of one team, and their messages, each to the members of its
    room's team: a group found through a foreign key."""
    (project / "migrations" / "0002_create_messages.sql").write_text(MESSAGES_MIGRATION)


LONG_PACKAGE = "warehouse_management_service"


def with_long_package_name(project: Path) -> None:
    """Rename the shop's package to a long name, which makes generated lines long."""
    (project / "shop").rename(project / LONG_PACKAGE)
    for path in (project / "pyproject.toml", project / "tests" / "test_health.py"):
        text = path.read_text()
        path.write_text(
            text.replace('"shop"', f'"{LONG_PACKAGE}"').replace("shop.", f"{LONG_PACKAGE}.")
        )


CASES: dict[str, list[tuple[str, ...]]] = {
    "stock-in-inventory": [("Stock", "in", "inventory")],
    "stock-level-in-warehouse-ops-with-trigger": [
        ("StockLevel", "in", "warehouse-ops", *TRIGGERED),
    ],
    "second-channel": [
        ("Stock", "in", "inventory"),
        ("StockLevel", "in", "warehouse-ops", *TRIGGERED),
    ],
    "stock-in-inventory-with-own-auth": [("Stock", "in", "inventory")],
    "stock-in-inventory-with-chosen-columns": [
        ("Stock", "in", "inventory", *TRIGGERED, *CHOSEN_COLUMNS),
    ],
    "long-names": [
        ("StockLevelAdjustment", "in", "inventory-replenishment"),
        ("Stock", "in", "inventory", *TRIGGERED),
    ],
    "notice-in-teams-with-group-trigger": [("Notice", "in", "teams", *GROUP_TRIGGERED)],
    "message-in-chat-with-group-trigger-through-a-foreign-key": [
        ("Message", "in", "chat", *ROOM_TRIGGERED),
    ],
    "typescript-client": [
        ("Stock", "in", "inventory"),
        ("StockLevel", "in", "warehouse-ops", *TRIGGERED),
    ],
}
SETUPS: dict[str, Callable[[Path], None]] = {
    "stock-in-inventory-with-own-auth": with_own_auth,
    "long-names": with_long_package_name,
    "typescript-client": with_typescript_client,
    "notice-in-teams-with-group-trigger": with_notices_to_teams,
    "message-in-chat-with-group-trigger-through-a-foreign-key": with_messages_in_team_rooms,
}


def without_runtime_schema(files: dict[str, bytes]) -> dict[str, bytes]:
    """`files` (a snapshot) without the runtime's schema migrations, each checked to hold exactly
    what the runtime ships, under scaffold's header: the first creates the schema, each later
    one upgrades it."""
    kept = {}
    schema_migrations = []
    for path, text in sorted(files.items()):
        match = RUNTIME_SCHEMA_MIGRATION.fullmatch(path)
        if match is None:
            kept[path] = text
            continue
        version = SchemaVersion(int(match.group(1)), int(match.group(2)))
        sql = migration_sql(version) if schema_migrations else creation_sql(version)
        schema_migrations.append(path)
        assert text.decode() == f"-- {MIGRATION_HEADER}\n{sql}", (
            f"{path} is not the runtime's schema {version}"
        )
    return kept


def generate(case: str, destination: Path) -> Path:
    """Copy `examples/shop` to `destination`, prepare it, and run the case's commands in it."""
    project = copy_example(destination)
    if setup := SETUPS.get(case):
        setup(project)
    for arguments in CASES[case]:
        result = run_scaffold("create-sse-channel", *arguments, cwd=project)
        assert result.exit_code == 0, result.stderr
    return project
