# Sourced by the scripts beside it: creates or refreshes .venv with the tool, the runtime
# (fastapi-pg-sse, built from this repository) and their test tools.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -e ".[test]" -e "./fastapi-pg-sse[testing]"
# TypeScript, to compile the generated client in the tests: a project-local copy, fetched from
# npm only when missing (major version pinned: the client targets it).
if [ ! -x .tools/node_modules/.bin/tsc ]; then
    npm install --silent --no-audit --no-fund --prefix .tools typescript@5
fi
# Chromium, for the demo and its browser proofs: Debian's package, driven by Playwright with
# that executable (Playwright downloads no browser here). Installed only when missing.
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: Chromium is missing: run 'sudo apt-get install -y chromium'" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
