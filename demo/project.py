"""The demo's project: a fresh copy of examples/shop with two channels generated, as a user would:
each basket's stock events to its user, and each team's notices to the team's members."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "shop"
TSC = REPO / ".tools" / "node_modules" / ".bin" / "tsc"
"""The project-local TypeScript compiler that scripts/_environment.sh installs."""
CHANNELS = (
    ("Stock", "in", "inventory", "--table", "baskets", "--user-column", "user_id"),
    ("Notice", "in", "teams", "--table", "notices", "--group-column", "team_id"),
)
"""The channels the demo generates: a row of `baskets` to the user it names, a row of `notices`
to the members of the team it names (the group its trigger emits to)."""
NOTICES_MIGRATION = (
    "0002_create_notices.sql",
    """\
-- The team notices of the demo: each to the members of one team.
CREATE TABLE notices (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id text NOT NULL,
    body text NOT NULL
);
""",
)
TYPESCRIPT_FOLDER = "frontend/realtime"
"""Where scaffold writes the TypeScript client, beside the page that imports it."""
APP = "demo.app:app"
"""The demo's routes and page around the shop's app, which it mounts unchanged (demo/app.py):
served from the project's folder, it imports `shop` from there and `demo` from this repository."""
TOKEN_TYPE = "at+jwt"
"""The `typ` of the tokens the demo's sign-in mints (RFC 9068's access tokens); the demo serves
with `REALTIME_JWT_TYPE` set to it, so that a token minted for anything else is refused."""


def prepare_project(destination: Path, *, echo: bool = False) -> Path:
    """Copy examples/shop to `destination`, opt in to the TypeScript client, add the notices
    table, generate the channels with the real CLI, and compile the page; return the project's
    folder."""
    shutil.copytree(EXAMPLE, destination, ignore=shutil.ignore_patterns("__pycache__", ".*cache"))
    pyproject = destination / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.scaffold]\n", f'[tool.scaffold]\ntypescript = "{TYPESCRIPT_FOLDER}"\n', 1
        )
    )
    name, sql = NOTICES_MIGRATION
    (destination / "migrations" / name).write_text(sql)
    for channel in CHANNELS:
        scaffold = [sys.executable, "-m", "scaffold", "create-sse-channel", *channel]
        _run(f"scaffold create-sse-channel {' '.join(channel)}", scaffold, destination, echo)
    _run("tsc --project frontend", [str(TSC), "--project", "frontend"], destination, echo)
    return destination


def _run(title: str, command: list[str], cwd: Path, echo: bool) -> None:
    if echo:
        print(f"==> {title}")
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if echo:
        print(result.stdout, end="")
    if result.returncode != 0:
        raise RuntimeError(f"{title} failed:\n{result.stdout}{result.stderr}")
