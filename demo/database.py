"""What the proofs do and read in the demo's database, as an app or a DBA would in SQL."""

import asyncpg


async def add_basket(database_url: str, user: str) -> None:
    """Insert a basket of `user`'s: the trigger emits a `stock_created` event to them."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("INSERT INTO baskets (user_id, stock) VALUES ($1, 1)", user)
    finally:
        await connection.close()


def team_of(user: str) -> str:
    """The team a user of the demo is in unless the page names one (the sign-in's default)."""
    return f"{user}-team"


async def events_of(database_url: str, user: str, team: str | None = None) -> list[tuple[str, str]]:
    """The events (id, type) of `user`'s page, in order: their stock events, and the notices to
    their team (by default, a team of their own)."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT id, type FROM fastapi_pg_sse.events"
            " WHERE (channel = 'inventory_stock' AND target_user_id = $1 AND target_group = '')"
            " OR (channel = 'teams_notice' AND target_user_id = '' AND target_group = $2)"
            " ORDER BY id",
            user,
            team or team_of(user),
        )
    finally:
        await connection.close()
    return [(str(row["id"]), row["type"]) for row in rows]
