# Sourced by the scripts beside it: creates or refreshes .venv with the tool, the runtime
# (fastapi-pg-sse, built from this repository) and their test tools.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -e ".[test]" -e "./fastapi-pg-sse[testing,prometheus]"
# TypeScript, to compile the generated client in the tests: a project-local copy, fetched from
# npm only when missing (major version pinned: the client targets it).
if [ ! -x .tools/node_modules/.bin/tsc ]; then
    npm install --silent --no-audit --no-fund --prefix .tools typescript@5
fi
# The AsyncAPI project's own parser, which the tests validate AsyncAPI documents with
# (scripts/validate_asyncapi.cjs): fetched the same way, major version pinned.
if [ ! -f .tools/node_modules/@asyncapi/parser/package.json ]; then
    npm install --silent --no-audit --no-fund --prefix .tools @asyncapi/parser@3
fi
# Redocly's linter, which the tests validate OpenAPI documents with (scripts/validate_openapi.py,
# which turns its usage data and update check off), and Swagger UI's files, which FastAPI's /docs
# loads from a CDN and the tests serve from here: fetched the same way, major versions pinned.
if [ ! -x .tools/node_modules/.bin/redocly ]; then
    npm install --silent --no-audit --no-fund --prefix .tools @redocly/cli@2
fi
if [ ! -f .tools/node_modules/swagger-ui-dist/package.json ]; then
    npm install --silent --no-audit --no-fund --prefix .tools swagger-ui-dist@5
fi
# Chromium, for the demo and its browser proofs: Debian's package, driven by Playwright with
# that executable (Playwright downloads no browser here). Installed only when missing.
# Without root, only a warning: the live demo needs no browser, its proofs and the tests do.
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "warning: Chromium is missing; the browser proofs (./scripts/demo --check, and" \
            "./scripts/test) need it: run 'sudo apt-get install -y chromium'" >&2
    fi
fi
