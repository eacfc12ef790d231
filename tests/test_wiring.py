"""Codemod-style tests of scaffold.wiring: each fixture pair is an app module before and after."""

import re
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

from scaffold.errors import BadInput
from scaffold.layout import Router
from scaffold.wiring import missing_wirings, unwire_routers, wire_routers

FIXTURES = Path(__file__).parent / "wiring_fixtures"

STOCK = Router(
    "shop.modules.inventory.adapters.inbound.stock_sse_controller",
    "router",
    "inventory_stock_sse_router",
)
PRICES = Router(
    "shop.modules.catalog.adapters.inbound.price_sse_controller",
    "router",
    "catalog_price_sse_router",
)
REALTIME = Router("shop.sse_channels", "realtime_router", "realtime_router")
LEVELS = Router("inventory.sse.levels", "router", "inventory_levels_sse_router")

# before, after, app_name, first_party, wirings. A project's app module mounts the registry's
# REALTIME router alone, which holds every channel's route; one made by scaffold 0.4 mounted each
# channel's router too.
CASES = [
    pytest.param(
        "typical.before.py", "registry_only.after.py", "app", "shop", [REALTIME], id="registry"
    ),
    pytest.param("typical.before.py", "typical.after.py", "app", "shop", [STOCK], id="typical"),
    pytest.param(
        "existing_includes.before.py",
        "existing_includes.after.py",
        "app",
        "shop",
        [STOCK, PRICES],
        id="existing_includes",
    ),
    pytest.param(
        "typical.after.py", "second_wiring.after.py", "app", "shop", [PRICES], id="second_wiring"
    ),
    pytest.param(
        "future_docstring.before.py",
        "future_docstring.after.py",
        "app",
        "shop",
        [STOCK],
        id="docstring",
    ),
    pytest.param(
        "fastapi_module.before.py",
        "fastapi_module.after.py",
        "api",
        "inventory",
        [LEVELS],
        id="fastapi_module",
    ),
    pytest.param(
        "new_block.before.py",
        "new_block.after.py",
        "app",
        "shop",
        [REALTIME, STOCK],
        id="new_block",
    ),
    pytest.param(
        "factory.before.py",
        "factory.after.py",
        "create_app",
        "shop",
        [REALTIME, STOCK],
        id="factory",
    ),
    pytest.param(
        "async_factory.before.py",
        "async_factory.after.py",
        "make_api",
        "inventory",
        [LEVELS],
        id="async_factory",
    ),
]
CASE_ARGS = ("before", "after", "app_name", "first_party", "wirings")

MINIMAL = "from fastapi import FastAPI\n\napp = FastAPI()\n"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def wire(source: str, *wirings: Router, app_name: str = "app", first_party: str = "shop") -> str:
    return wire_routers(
        source, app_name, wirings, filename="app.py", package=first_party, first_party=first_party
    )


def unwire(source: str, *wirings: Router, app_name: str = "app") -> str:
    return unwire_routers(source, app_name, wirings, filename="app.py", package="shop")


def missing(source: str, *wirings: Router) -> list[Router]:
    return missing_wirings(source, "app", wirings, filename="app.py", package="shop")


def ruff_complaints(source: str, first_party: str, folder: Path) -> str:
    """What `ruff check --select E,F,W,I` and `ruff format --check`, with ruff's defaults, say
    about `source` as a module of a project whose top-level package is `first_party`; "" if
    both pass."""
    # ruff finds first-party modules on disk only when each imported module exists there, so name
    # the package outright instead.
    known = f"lint.isort.known-first-party=['{first_party}']"
    (folder / "app.py").write_text(source)
    commands = (
        ["check", "--isolated", "--no-cache", "--config", known, "--select", "E,F,W,I", "app.py"],
        ["format", "--isolated", "--no-cache", "--check", "--diff", "app.py"],
    )
    runs = [
        subprocess.run(
            [sys.executable, "-m", "ruff", *command], cwd=folder, capture_output=True, text=True
        )
        for command in commands
    ]
    return "".join(run.stdout + run.stderr for run in runs if run.returncode)


@pytest.mark.parametrize(CASE_ARGS, CASES)
def test_wire_matches_fixture(
    before: str, after: str, app_name: str, first_party: str, wirings: list[Router]
) -> None:
    wired = wire(fixture(before), *wirings, app_name=app_name, first_party=first_party)
    assert wired == fixture(after)


@pytest.mark.parametrize(CASE_ARGS, CASES)
def test_wired_fixture_passes_ruff(
    before: str,
    after: str,
    app_name: str,
    first_party: str,
    wirings: list[Router],
    tmp_path: Path,
) -> None:
    if ruff_complaints(fixture(before), first_party, tmp_path):
        pytest.skip(f"ruff rejects {before} already")
    wired = wire(fixture(before), *wirings, app_name=app_name, first_party=first_party)
    assert ruff_complaints(wired, first_party, tmp_path) == ""


def test_ruff_complaints_sees_the_first_party_package(tmp_path: Path) -> None:
    one_block = "from fastapi import FastAPI\nfrom shop.main import app\n\nprint(FastAPI, app)\n"
    assert "I001" in ruff_complaints(one_block, "shop", tmp_path)
    two_blocks = one_block.replace("FastAPI\n", "FastAPI\n\n", 1)
    assert ruff_complaints(two_blocks, "shop", tmp_path) == ""


@pytest.mark.parametrize(CASE_ARGS, CASES)
def test_wire_is_idempotent(
    before: str, after: str, app_name: str, first_party: str, wirings: list[Router]
) -> None:
    wired = wire(fixture(after), *wirings, app_name=app_name, first_party=first_party)
    assert wired == fixture(after)


@pytest.mark.parametrize(CASE_ARGS, CASES)
def test_unwire_restores_fixture(
    before: str, after: str, app_name: str, first_party: str, wirings: list[Router]
) -> None:
    assert unwire(fixture(after), *wirings, app_name=app_name) == fixture(before)
    wired = wire(fixture(before), *wirings, app_name=app_name, first_party=first_party)
    assert unwire(wired, *wirings, app_name=app_name) == fixture(before)


@pytest.mark.parametrize(CASE_ARGS, CASES)
def test_missing_wirings_of_fixtures(
    before: str, after: str, app_name: str, first_party: str, wirings: list[Router]
) -> None:
    for source, expected in ((fixture(before), wirings), (fixture(after), [])):
        found = missing_wirings(source, app_name, wirings, filename="app.py", package=first_party)
        assert found == expected


def test_wiring_the_same_router_twice_in_one_call_adds_it_once() -> None:
    assert wire(fixture("typical.before.py"), STOCK, STOCK) == fixture("typical.after.py")


def test_missing_wirings_reports_a_deleted_include_router_line() -> None:
    source = fixture("second_wiring.after.py").replace(
        "app.include_router(inventory_stock_sse_router)\n", ""
    )
    assert missing(source, STOCK, PRICES) == [STOCK]


def test_wire_restores_a_deleted_include_router_line() -> None:
    source = fixture("typical.after.py").replace(
        "app.include_router(inventory_stock_sse_router)\n", ""
    )
    assert wire(source, STOCK) == fixture("typical.after.py")


def test_missing_wirings_reports_a_deleted_import() -> None:
    source = fixture("second_wiring.after.py").replace(
        f"from {PRICES.module} import (\n    router as catalog_price_sse_router,\n)\n", ""
    )
    assert missing(source, STOCK, PRICES) == [PRICES]


def test_include_router_with_options_counts_as_wired() -> None:
    source = fixture("typical.after.py").replace(
        "app.include_router(inventory_stock_sse_router)",
        'app.include_router(inventory_stock_sse_router, prefix="/sse")',
    )
    assert missing(source, STOCK) == []
    assert wire(source, STOCK) == source
    assert unwire(source, STOCK) == fixture("typical.before.py")


def test_annotated_assignment_and_no_trailing_newline() -> None:
    source = "from fastapi import FastAPI\napp: FastAPI = FastAPI()"
    wired = wire(source, LEVELS, first_party="inventory")
    assert wired == (
        "from fastapi import FastAPI\n"
        "\n"
        "from inventory.sse.levels import router as inventory_levels_sse_router\n"
        "app: FastAPI = FastAPI()\n"
        "app.include_router(inventory_levels_sse_router)"
    )
    assert unwire(wired, LEVELS) == source


def test_windows_line_endings_are_kept() -> None:
    source = MINIMAL.replace("\n", "\r\n")
    wired = wire(source, STOCK)
    assert wired == (
        "from fastapi import FastAPI\r\n"
        "\r\n"
        f"from {STOCK.module} import (\r\n"
        "    router as inventory_stock_sse_router,\r\n"
        ")\r\n"
        "\r\n"
        "app = FastAPI()\r\n"
        "app.include_router(inventory_stock_sse_router)\r\n"
    )
    assert unwire(wired, STOCK) == source


@pytest.mark.parametrize(("length", "wrapped"), [(88, False), (89, True)])
def test_an_import_is_wrapped_once_it_passes_88_characters(length: int, wrapped: bool) -> None:
    module = "shop." + "m" * (length - len("shop. import router as r") - len("from "))
    source = wire(MINIMAL, Router(module, "router", "r"))
    line = f"from {module} import router as r\n"
    assert len(line) == length + 1
    assert (line not in source) is wrapped
    assert (f"from {module} import (\n    router as r,\n)\n" in source) is wrapped


API = Router("shop.api", "router", "api_router")
CATALOG = Router("shop.Catalog.sse", "router", "catalog_sse_router")
ZETA = Router("shop.zeta.sse", "router", "zeta_router")


@pytest.mark.parametrize(
    ("imports", "used", "wired_imports"),
    [
        pytest.param(
            "import shop\n"
            "from shop.Catalog import router as catalog_router\n"
            "\n"
            "# Zeta.\n"
            "from shop.zeta import helper\n",
            "shop, helper",
            "import shop\n"
            "from shop.api import router as api_router\n"
            "from shop.Catalog import router as catalog_router\n"
            "from shop.Catalog.sse import router as catalog_sse_router\n"
            "\n"
            "# Zeta.\n"
            "from shop.zeta import helper\n"
            "from shop.zeta.sse import router as zeta_router\n",
            id="plain_import_and_comment",
        ),
        pytest.param(
            "# Billing.\n"
            "from shop.billing import helper\n"
            "from shop.Catalog import router as catalog_router\n",
            "helper",
            "from shop.api import router as api_router\n"
            "\n"
            "# Billing.\n"
            "from shop.billing import helper\n"
            "from shop.Catalog import router as catalog_router\n"
            "from shop.Catalog.sse import router as catalog_sse_router\n"
            "from shop.zeta.sse import router as zeta_router\n",
            id="commented_first",
        ),
    ],
)
def test_imports_sort_into_the_first_party_block(
    imports: str, used: str, wired_imports: str, tmp_path: Path
) -> None:
    source = (
        "from fastapi import FastAPI\n"
        "\n"
        f"{imports}"
        "\n"
        "from . import local\n"
        "\n"
        f"app = FastAPI(dependencies=[local, {used}])\n"
        "app.include_router(catalog_router)\n"
    )
    assert ruff_complaints(source, "shop", tmp_path) == ""
    wired = wire(source, ZETA, CATALOG, API)
    assert wired.startswith(f"from fastapi import FastAPI\n\n{wired_imports}\nfrom . import")
    assert ruff_complaints(wired, "shop", tmp_path) == ""
    assert unwire(wired, ZETA, CATALOG, API) == source


def test_a_new_first_party_block_goes_above_relative_imports(tmp_path: Path) -> None:
    source = MINIMAL.replace("\n\n", "\n\nfrom . import local\n\n").replace("()", "(debug=local)")
    wired = wire(source, STOCK, REALTIME)
    assert wired.startswith(
        "from fastapi import FastAPI\n"
        "\n"
        f"from {STOCK.module} import (\n"
        "    router as inventory_stock_sse_router,\n"
        ")\n"
        "from shop.sse_channels import realtime_router\n"
        "\n"
        "from . import local\n"
        "\n"
        "app = FastAPI(debug=local)\n"
    )
    assert ruff_complaints(wired, "shop", tmp_path) == ""
    assert unwire(wired, STOCK, REALTIME) == source


def test_wire_into_a_module_without_imports_round_trips() -> None:
    source = '"""The app."""\n\napp = FastAPI()\n'
    wired = wire(source, REALTIME)
    assert wired == (
        '"""The app."""\n'
        "\n"
        "from shop.sse_channels import realtime_router\n"
        "\n"
        "app = FastAPI()\n"
        "app.include_router(realtime_router)\n"
    )
    assert unwire(wired, REALTIME) == source


def test_unwire_removes_only_that_name_from_a_multi_name_import() -> None:
    source = MINIMAL.replace(
        "\n\n",
        f"\nfrom {LEVELS.module} import ADMIN, router as inventory_levels_sse_router\n\n",
    )
    assert unwire(source, LEVELS) == MINIMAL.replace(
        "\n\n", f"\nfrom {LEVELS.module} import ADMIN\n\n"
    )


def test_unwire_removes_only_that_name_from_a_parenthesized_import() -> None:
    source = MINIMAL.replace(
        "\n\n",
        f"\nfrom {LEVELS.module} import (\n"
        "    ADMIN,\n"
        "    router as inventory_levels_sse_router,\n"
        ")\n\n",
    )
    assert unwire(source, LEVELS) == MINIMAL.replace(
        "\n\n", f"\nfrom {LEVELS.module} import (\n    ADMIN,\n)\n\n"
    )


def test_unwire_keeps_comments_and_blank_lines_above_removed_lines() -> None:
    source = (
        "from fastapi import FastAPI\n"
        "\n"
        "# SSE\n"
        "from inventory.sse.levels import router as inventory_levels_sse_router\n"
        "\n"
        "app = FastAPI()\n"
        "\n"
        "# Streams.\n"
        "app.include_router(inventory_levels_sse_router)  # noisy\n"
        "\n"
        "\n"
        "# Health.\n"
        "@app.get('/health')\n"
        "def health() -> None: ...\n"
    )
    assert unwire(source, LEVELS) == (
        "from fastapi import FastAPI\n"
        "\n"
        "# SSE\n"
        "\n"
        "app = FastAPI()\n"
        "\n"
        "# Streams.\n"
        "\n"
        "\n"
        "# Health.\n"
        "@app.get('/health')\n"
        "def health() -> None: ...\n"
    )


def test_unwire_keeps_comments_below_a_removed_last_line() -> None:
    source = MINIMAL + "app.include_router(inventory_levels_sse_router)\n\n# The end.\n"
    assert unwire(source, LEVELS) == MINIMAL + "\n# The end.\n"


def test_unwire_leaves_a_file_without_the_wirings_untouched() -> None:
    source = fixture("existing_includes.before.py")
    assert unwire(source, STOCK, PRICES) == source


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("from fastapi import FastAPI\n\nap = FastAPI()\n", id="other_name"),
        pytest.param(
            "from starlette.applications import Starlette\n\napp = Starlette()\n", id="starlette"
        ),
        pytest.param(
            "from fastapi import FastAPI\n\n\ndef create_app() -> FastAPI:\n    app = FastAPI()\n"
            "    return app\n",
            id="other_factory",
        ),
    ],
)
def test_missing_app_is_bad_input(source: str) -> None:
    message = (
        "shop/main.py defines no 'app = FastAPI(...)' and no factory app() that returns one; set"
        " [tool.scaffold] app to your FastAPI application or to its factory, as module:name"
    )
    for edit in (partial(wire_routers, first_party="shop"), unwire_routers, missing_wirings):
        with pytest.raises(BadInput) as raised:
            edit(source, "app", [STOCK], filename="shop/main.py", package="shop")
        assert str(raised.value) == message


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("    return FastAPI()\n", id="returns_a_call"),
        pytest.param(
            "    app = FastAPI()\n    if app.debug:\n        return app\n", id="no_return"
        ),
        pytest.param("    app = make()\n    return app\n", id="not_annotated"),
    ],
)
def test_a_function_that_is_not_a_factory_is_bad_input(body: str) -> None:
    source = f"from fastapi import FastAPI\n\n\ndef create_app():\n{body}"
    with pytest.raises(BadInput) as raised:
        wire(source, STOCK, app_name="create_app")
    assert str(raised.value) == (
        "app.py: scaffold cannot include routers in create_app(): a factory assigns the app to a"
        " name, as in `app = FastAPI(...)`, and ends with `return app`"
    )


FACTORY = (
    "from fastapi import FastAPI\n"
    "\n"
    "\n"
    "def create_app() -> FastAPI:\n"
    "    application = FastAPI()\n"
    "    return application\n"
)


def test_an_app_made_by_a_factory_is_wired_inside_the_factory() -> None:
    source = f"{FACTORY}\n\napp = create_app()\n"
    wired = wire(source, REALTIME)
    assert wired == (
        "from fastapi import FastAPI\n"
        "\n"
        "from shop.sse_channels import realtime_router\n"
        "\n"
        "\n"
        "def create_app() -> FastAPI:\n"
        "    application = FastAPI()\n"
        "    application.include_router(realtime_router)\n"
        "    return application\n"
        "\n"
        "\n"
        "app = create_app()\n"
    )
    assert missing(wired, REALTIME) == []
    assert unwire(wired, REALTIME) == source


def test_a_factory_annotated_to_return_fastapi_may_build_the_app_in_any_way() -> None:
    source = FACTORY.replace("FastAPI()", "build_base_app()")
    assert missing(source.replace("create_app", "app"), REALTIME) == [REALTIME]
    wired = wire(source, REALTIME, app_name="create_app")
    assert "    application = build_base_app()\n    application.include_router(realtime" in wired


def test_a_factory_includes_its_routers_after_the_last_assignment_of_the_app() -> None:
    source = FACTORY.replace(
        "    return", "    application = with_middleware(application)\n    return"
    )
    wired = wire(source, REALTIME, app_name="create_app")
    assert wired.endswith(
        "    application = with_middleware(application)\n"
        "    application.include_router(realtime_router)\n"
        "    return application\n"
    )


# The Stock router imported and included under other names than the one scaffold writes.
RENAMED_STOCK = [
    pytest.param(
        f"from {STOCK.module} import router as stock_router",
        "stock_router",
        id="router_alias",
    ),
    pytest.param(
        "from shop.modules.inventory.adapters.inbound import stock_sse_controller",
        "stock_sse_controller.router",
        id="controller_module",
    ),
    pytest.param(
        "from shop.modules.inventory.adapters.inbound import stock_sse_controller as stock",
        "stock.router",
        id="controller_module_alias",
    ),
    pytest.param(f"import {STOCK.module} as stock", "stock.router", id="import_as"),
    pytest.param(f"import {STOCK.module}", f"{STOCK.module}.router", id="import"),
    pytest.param(
        "from .modules.inventory.adapters.inbound.stock_sse_controller import router",
        "router",
        id="relative",
    ),
    pytest.param(
        "from .modules.inventory.adapters.inbound import stock_sse_controller as stock",
        "stock.router",
        id="relative_controller_module",
    ),
]


def renamed(template: str, import_line: str, reference: str) -> tuple[str, str]:
    """`template` (a module with an `{include}` line) with and without the renamed wiring."""
    include = f"app.include_router({reference}, tags=['stock'])"
    wired = template.replace("\n\n", f"\n{import_line}\n\n", 1).replace("{include}", include)
    return wired, re.sub(r"\n *\{include\}", "", template)


MODULE_APP = "from fastapi import FastAPI\n\napp = FastAPI()\n{include}\n"
FACTORY_APP = (
    "from fastapi import FastAPI\n\n\ndef create_app() -> FastAPI:\n    app = FastAPI()\n"
    "    {include}\n    return app\n"
)


@pytest.mark.parametrize(("import_line", "reference"), RENAMED_STOCK)
@pytest.mark.parametrize(
    ("template", "app_name"),
    [(MODULE_APP, "app"), (FACTORY_APP, "create_app")],
    ids=["module", "factory"],
)
def test_a_router_is_wired_whatever_name_it_is_imported_under(
    template: str, app_name: str, import_line: str, reference: str
) -> None:
    source, unwired = renamed(template, import_line, reference)
    assert missing_wirings(source, app_name, [STOCK], filename="app.py", package="shop") == []
    assert wire(source, STOCK, app_name=app_name) == source
    assert unwire(source, STOCK, app_name=app_name) == unwired


@pytest.mark.parametrize(("import_line", "reference"), RENAMED_STOCK)
def test_a_router_imported_under_another_name_is_included_under_it(
    import_line: str, reference: str
) -> None:
    source, _ = renamed(MODULE_APP, import_line, reference)
    without_include = source.replace(f"app.include_router({reference}, tags=['stock'])\n", "")
    assert without_include != source
    assert missing(without_include, STOCK) == [STOCK]
    assert wire(without_include, STOCK) == f"{without_include}app.include_router({reference})\n"


def test_an_include_of_a_name_not_bound_to_the_router_does_not_count() -> None:
    source = MINIMAL.replace("\n\n", f"\nfrom {LEVELS.module} import router\n\n")
    assert missing(source + "app.include_router(inventory_levels_sse_router)\n", LEVELS) == [LEVELS]
    assert missing(source + "app.include_router(router.routes)\n", LEVELS) == [LEVELS]
    above_the_package = MINIMAL.replace("\n\n", "\nfrom ..inventory.sse.levels import router\n\n")
    assert missing(above_the_package + "app.include_router(router)\n", LEVELS) == [LEVELS]


@pytest.mark.parametrize(
    ("source", "line", "message"),
    [
        pytest.param(
            "from fastapi import FastAPI\n\napp = FastAPI(\n    title='Shop',\n\n\n@app.get('/')\n"
            "def root() -> None: ...\n",
            3,
            "'(' was never closed",
            id="unclosed_paren",
        ),
        pytest.param(
            "from fastapi import FastAPI\n\napp = FastAPI()\n\n\ndef health() -> None:\n"
            "    pass\n      return None\n",
            8,
            "unexpected indent",
            id="bad_indentation",
        ),
    ],
)
def test_a_syntax_error_is_reported_as_python_reports_it(
    source: str, line: int, message: str
) -> None:
    for edit in (partial(wire_routers, first_party="shop"), unwire_routers, missing_wirings):
        with pytest.raises(BadInput) as raised:
            edit(source, "app", [STOCK], filename="shop/main.py", package="shop")
        assert str(raised.value) == (
            f"shop/main.py, line {line}: {message}; fix it and run the command again"
        )
