"""The demo's project: a fresh copy of examples/shop with a channel generated, as a user would."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "shop"
TSC = REPO / ".tools" / "node_modules" / ".bin" / "tsc"
"""The project-local TypeScript compiler that scripts/_environment.sh installs."""
CHANNEL = ("Stock", "in", "inventory", "--table", "baskets", "--user-column", "user_id")
TYPESCRIPT_FOLDER = "frontend/realtime"
"""Where scaffold writes the TypeScript client, beside the page that imports it."""
APP = "demo.app:app"
"""The demo's routes and page around the shop's app, which it mounts unchanged (demo/app.py):
served from the project's folder, it imports `shop` from there and `demo` from this repository."""
TOKEN_TYPE = "at+jwt"
"""The `typ` of the tokens the demo's sign-in mints (RFC 9068's access tokens); the demo serves
with `REALTIME_JWT_TYPE` set to it, so that a token minted for anything else is refused."""


def prepare_project(destination: Path, *, echo: bool = False) -> Path:
    """Copy examples/shop to `destination`, opt in to the TypeScript client, generate the
    channel with the real CLI, and compile the page; return the project's folder."""
    shutil.copytree(EXAMPLE, destination, ignore=shutil.ignore_patterns("__pycache__", ".*cache"))
    pyproject = destination / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.scaffold]\n", f'[tool.scaffold]\ntypescript = "{TYPESCRIPT_FOLDER}"\n', 1
        )
    )
    scaffold = [sys.executable, "-m", "scaffold", "create-sse-channel", *CHANNEL]
    _run(f"scaffold create-sse-channel {' '.join(CHANNEL)}", scaffold, destination, echo)
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
