"""Pruning beside emitters: the DELETE takes no lock an emitter waits for, and the commit turn a
prune takes as it ends (to raise the channel's horizon) is held until its transaction ends. So
a prune on a connection of its own (autocommit) holds emitters only for its own commit, while
one inside a transaction of the caller's holds every emitting commit until that transaction
ends: the README tells a scheduled job to prune outside one. How long a big prune takes beside
emitters is `bench/prune_at_scale.py`'s to measure."""

import asyncio
from datetime import timedelta

import pytest

from fastapi_pg_sse.channel import resume_bounds
from fastapi_pg_sse.testing import connected
from tests.helpers import blocking_pids, emit, new_channel, wait_until_blocked

pytestmark = pytest.mark.anyio


async def test_a_prune_inside_a_transaction_holds_emitting_commits_until_it_ends(
    realtime_database_url: str,
) -> None:
    channel = new_channel("prune")
    async with (
        connected(realtime_database_url) as pruner,
        connected(realtime_database_url) as emitter,
    ):
        old = await emit(pruner, channel, "pat")
        await pruner.execute(
            "UPDATE fastapi_pg_sse.events SET created_at = created_at - interval '2 days'"
            " WHERE id = $1",
            old,
        )
        transaction = pruner.transaction()
        await transaction.start()
        assert await channel.prune(pruner, keep=timedelta(days=1)) == 1
        emitting = asyncio.create_task(emit(emitter, channel, "pat", "meanwhile"))
        async with connected(realtime_database_url) as watcher:
            await wait_until_blocked(watcher, emitter.get_server_pid())
            assert await blocking_pids(watcher, emitter.get_server_pid()) == [
                pruner.get_server_pid()
            ]
            await transaction.commit()
            meanwhile = await emitting
            assert meanwhile > (await resume_bounds(watcher, channel, "pat"))[0] == old
