# Written by scaffold once: yours to edit, scaffold never checks or rewrites it.
"""The baskets row that the trigger tests insert: its `user_column` holds a new user.

`insert_row` fills the columns that need a value from the table's definition; when a valid row
needs more, insert it here yourself.
"""

import asyncpg
from fastapi_pg_sse.testing import insert_row


async def insert_baskets_row(
    connection: asyncpg.Connection, user_column: str
) -> asyncpg.Record:
    return await insert_row(connection, "baskets", fill=[user_column])
