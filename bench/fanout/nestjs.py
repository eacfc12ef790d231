"""The NestJS recipe as a peer (bench/peers/nestjs/, its own README): built when it is there
and Node.js is installed, otherwise skipped with the reason."""

import shutil
import subprocess
from pathlib import Path

FOLDER = Path(__file__).resolve().parents[1] / "peers" / "nestjs"
ENTRY = FOLDER / "dist" / "main.js"


def build() -> str | None:
    """Build the peer (`npm ci` when it has no node_modules, then `npm run build`); return why
    it cannot run, or None when `node dist/main.js` is ready."""
    if not (FOLDER / "package.json").exists():
        return f"{FOLDER} is absent"
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "Node.js (node and npm) is not installed"
    steps = [["npm", "run", "build"]]
    if not (FOLDER / "node_modules").exists():
        steps.insert(0, ["npm", "ci", "--no-audit", "--no-fund"])
    for step in steps:
        done = subprocess.run(step, cwd=FOLDER, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return f"`{' '.join(step)}` failed: {(done.stderr or done.stdout).strip()[-500:]}"
    if not ENTRY.exists():
        return f"the build made no {ENTRY.relative_to(FOLDER)}"
    return None
