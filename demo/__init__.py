"""The live demo: a generated channel in a copy of examples/shop, served, shown in a browser.

`./scripts/demo` runs it for a person (`python -m demo`); `./scripts/demo --check` and
tests/test_demo.py prove it in headless Chromium (see `proofs`).
"""
