"""What the proofs do and read in the demo's database, as an app or a DBA would in SQL."""

import asyncpg


async def add_basket(database_url: str, user: str) -> None:
    """Insert a basket of `user`'s: the trigger emits a `stock_created` event to them."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("INSERT INTO baskets (user_id, stock) VALUES ($1, 1)", user)
    finally:
        await connection.close()


async def events_of(database_url: str, user: str) -> list[tuple[str, str]]:
    """`user`'s events (id, type) on the channel, in order: what their page must show."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT id, type FROM fastapi_pg_sse.events"
            " WHERE channel = 'inventory_stock' AND target_user_id = $1 ORDER BY id",
            user,
        )
    finally:
        await connection.close()
    return [(str(row["id"]), row["type"]) for row in rows]
