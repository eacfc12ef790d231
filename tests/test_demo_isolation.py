"""The live demo's routes (a sign-in that mints a token for any user name) never reach the
shop: they belong to the demo's own app (demo/app.py), which mounts the shop's. Whatever of
the shop a deployment imports, its app has no demo route, and the shop's wheel holds no demo
code."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.helpers import EXAMPLE

ROUTES_AFTER_IMPORTING_EVERY_MODULE = """
import importlib, json, pkgutil
from fastapi.routing import iter_route_contexts
import shop
for module in pkgutil.walk_packages(shop.__path__, "shop."):
    importlib.import_module(module.name)
from shop.main import app
print(json.dumps([context.path for context in iter_route_contexts(app.routes)]))
"""
"""Prints the paths of `shop.main:app`'s routes (those of included routers and mounts too) once
every module of `shop` is imported."""


def test_importing_every_module_of_the_shop_leaves_its_app_without_demo_routes(
    tmp_path: Path,
) -> None:
    project = shutil.copytree(
        EXAMPLE, tmp_path / "shop", ignore=shutil.ignore_patterns("__pycache__", ".*cache")
    )
    result = subprocess.run(
        [sys.executable, "-c", ROUTES_AFTER_IMPORTING_EVERY_MODULE],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    paths = json.loads(result.stdout)
    assert "/health" in paths
    assert not [path for path in paths if path == "/" or path.startswith("/demo")]


def test_the_shops_wheel_holds_no_demo_code(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", tmp_path],
        cwd=EXAMPLE,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("shop-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        sources = {name: archive.read(name) for name in archive.namelist()}
    assert "shop/main.py" in sources
    assert not [name for name in sources if "demo" in name or "frontend" in name]
    assert not [name for name, source in sources.items() if b"sign-in" in source]
