"""An application observed as the README's "Metrics" and "Health checks" sections say: the test
app's channels and stream routes, then the python block of each section, run in turn as modules
of their own whose import of the project's app (`shop.main`) is answered by this one."""

import re
import sys
import types
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from fastapi_pg_sse import create_realtime_router
from tests.app import FEED, NEWS, ORDERS, jwt_router

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(section: str) -> str:
    """The python block of the README's section titled `section`."""
    text = README.read_text(encoding="utf-8").split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert block is not None, f"the README's {section!r} section has a python block"
    return block.group(1)


app = FastAPI(title="fastapi-pg-sse tests, observed as the README says")
app.include_router(create_realtime_router([FEED, NEWS, ORDERS]))
app.include_router(jwt_router)
shop = types.ModuleType("shop.main")
shop.app = app  # type: ignore[attr-defined]
sys.modules.setdefault("shop", types.ModuleType("shop"))
sys.modules["shop.main"] = shop
for section in ("Metrics", "Health checks"):
    namespace: dict[str, Any] = {"__name__": f"readme_{section.lower().replace(' ', '_')}"}
    exec(readme_block(section), namespace)
