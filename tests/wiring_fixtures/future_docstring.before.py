"""Orders service.

Mounted by the platform gateway under /orders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# FastAPI is pinned in requirements.txt.
from fastapi import FastAPI

if TYPE_CHECKING:
    from collections.abc import Mapping

app: FastAPI = FastAPI(title="Orders")


def describe(tags: Mapping[str, str]) -> str:
    return ", ".join(tags)
