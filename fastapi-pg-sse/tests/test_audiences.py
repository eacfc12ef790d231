"""A stream carries its user's events, its groups' and its channels' broadcasts, of one channel
or, on the multiplexed route, of several, in one id order (commit order), live and on replay;
never another user's or another group's."""

import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg
import httpx
import pytest
from httpx_sse import ServerSentEvent

from fastapi_pg_sse import Channel
from fastapi_pg_sse.testing import (
    ServedApp,
    connected,
    next_event,
    open_stream,
    sign_token,
)
from tests.app import FEED, NEWS, STREAM
from tests.helpers import committing, emit, new_users, serving

pytestmark = pytest.mark.anyio

MULTIPLEXED = "/realtime/stream"


def multiplexed(
    served_app: ServedApp,
    user_id: str,
    channels: str,
    *,
    groups: list[str] | None = None,
    last_event_id: int | None = None,
) -> AbstractAsyncContextManager[AsyncIterator[ServerSentEvent]]:
    """`user_id`'s multiplexed stream of `channels` (comma-separated), a member of `groups`
    by the token's claim."""
    token = sign_token(user_id, groups=groups or [])
    resume = None if last_event_id is None else str(last_event_id)
    return open_stream(
        f"{served_app.server.url}{MULTIPLEXED}?channels={channels}", token, last_event_id=resume
    )


def channel_stream(
    served_app: ServedApp,
    path: str,
    user_id: str,
    groups: list[str],
    last_event_id: int | None = None,
) -> AbstractAsyncContextManager[AsyncIterator[ServerSentEvent]]:
    token = sign_token(user_id, groups=groups)
    resume = None if last_event_id is None else str(last_event_id)
    return open_stream(served_app.server.url + path, token, last_event_id=resume)


async def to_group(
    connection: asyncpg.Connection, channel: Channel[Any], group: str, kind: str
) -> None:
    await connection.execute(
        "SELECT fastapi_pg_sse.emit_to_group($1, $2, $3, '{}'::jsonb)", channel.name, group, kind
    )


async def to_everyone(connection: asyncpg.Connection, channel: Channel[Any], kind: str) -> None:
    await connection.execute(
        "SELECT fastapi_pg_sse.broadcast($1, $2, '{}'::jsonb)", channel.name, kind
    )


async def events_until(
    events: AsyncIterator[ServerSentEvent], marker_id: int
) -> list[ServerSentEvent]:
    """The events of a stream up to the one with `marker_id`, that one included."""
    received = [await next_event(events)]
    while received[-1].id != str(marker_id):
        received.append(await next_event(events))
    return received


async def test_a_group_event_committing_first_arrives_first_live_and_on_replay(
    served_app: ServedApp,
) -> None:
    """The user's transaction emits first and commits last: the group's event gets the lower id,
    and the stream, which reads both audiences, gets it first, each once, live and on replay."""
    user, group = new_users("ola", "team-ola")
    async with (
        connected(served_app.database_url) as first,
        connected(served_app.database_url) as second,
        channel_stream(served_app, STREAM, user, [group]) as live,
    ):
        async with committing(first) as user_ids:
            await FEED.emit(first, target_user_id=user, event_type="emitted_first")
            async with committing(second) as group_ids:
                await to_group(second, FEED, group, "emitted_second")
        received = [await next_event(live), await next_event(live)]
        marker = await emit(second, FEED, user, "marker")
        assert (await next_event(live)).id == str(marker), "an event came twice"
    assert group_ids[0] < user_ids[0]
    expected = [(str(group_ids[0]), "emitted_second"), (str(user_ids[0]), "emitted_first")]
    assert [(event.id, event.event) for event in received] == expected
    async with channel_stream(
        served_app, STREAM, user, [group], last_event_id=group_ids[0] - 1
    ) as resumed:
        replayed = [await next_event(resumed) for _ in range(3)]
    assert [(e.id, e.event) for e in replayed] == [*expected, (str(marker), "marker")]


async def test_a_transaction_to_a_user_a_group_and_everyone_of_two_channels_is_one_order(
    served_app: ServedApp,
) -> None:
    user, group = new_users("mia", "team-mia")
    async with (
        connected(served_app.database_url) as connection,
        multiplexed(served_app, user, "test_feed,test_news", groups=[group]) as live,
    ):
        async with committing(connection) as ids:
            await FEED.emit(connection, target_user_id=user, event_type="mine")
            await to_group(connection, NEWS, group, "ours")
            await to_everyone(connection, FEED, "all")
            await NEWS.emit(connection, target_user_id=user, event_type="mine")
            await to_everyone(connection, NEWS, "all")
            await to_group(connection, FEED, group, "ours")
        received = [await next_event(live) for _ in ids]
    expected = [
        (str(event_id), name)
        for event_id, name in zip(
            ids,
            [
                "test_feed.mine",
                "test_news.ours",
                "test_feed.all",
                "test_news.mine",
                "test_news.all",
                "test_feed.ours",
            ],
            strict=True,
        )
    ]
    assert [(event.id, event.event) for event in received] == expected
    async with multiplexed(
        served_app, user, "test_news,test_feed", groups=[group], last_event_id=ids[0] - 1
    ) as resumed:
        replayed = [await next_event(resumed) for _ in ids]
    assert [(event.id, event.event) for event in replayed] == expected


@pytest.mark.parametrize("route", ["per-channel", "multiplexed"])
async def test_another_users_or_another_groups_events_never_reach_a_stream(
    served_app: ServedApp, route: str
) -> None:
    user, other, group, other_group = new_users("ida", "ivo", "team-ida", "team-ivo")
    opened = (
        channel_stream(served_app, STREAM, user, [group])
        if route == "per-channel"
        else multiplexed(served_app, user, "test_feed,test_news", groups=[group])
    )
    async with connected(served_app.database_url) as connection, opened as stream:
        async with committing(connection) as ids:
            await FEED.emit(connection, target_user_id=other, event_type="not_mine")
            await to_group(connection, FEED, other_group, "not_ours")
            await NEWS.emit(connection, target_user_id=user, event_type="other_channel")
            await to_group(connection, FEED, group, "ours")
        marker = await emit(connection, FEED, user, "marker")
        received = await events_until(stream, marker)
    prefix = "" if route == "per-channel" else "test_feed."
    expected = [(str(ids[3]), f"{prefix}ours"), (str(marker), f"{prefix}marker")]
    if route == "multiplexed":
        expected.insert(0, (str(ids[2]), "test_news.other_channel"))
    assert [(event.id, event.event) for event in received] == expected


async def test_the_multiplexed_route_resumes_every_channel_from_one_last_event_id(
    served_app: ServedApp,
) -> None:
    (user,) = new_users("rex")
    async with connected(served_app.database_url) as connection:
        before = await emit(connection, NEWS, user, "seen")
        missed = [
            await emit(connection, FEED, user, "missed_feed"),
            await emit(connection, NEWS, user, "missed_news"),
        ]
    async with multiplexed(
        served_app, user, "test_feed,test_news", last_event_id=before
    ) as resumed:
        replayed = [await next_event(resumed) for _ in missed]
    assert [(e.id, e.event) for e in replayed] == [
        (str(missed[0]), "test_feed.missed_feed"),
        (str(missed[1]), "test_news.missed_news"),
    ]


async def test_a_pruned_channel_resets_the_whole_multiplexed_stream_naming_every_channel(
    served_app: ServedApp,
) -> None:
    (user,) = new_users("pia")
    async with connected(served_app.database_url) as connection:
        first = await emit(connection, FEED, user, "kept")
        gone = await emit(connection, NEWS, user, "pruned")
        await connection.execute(
            "SELECT fastapi_pg_sse.continue_after($1, $2, $3)", NEWS.name, gone, user
        )
        newest = await served_app.newest_event_id()
    async with multiplexed(served_app, user, "test_feed,test_news", last_event_id=first) as stream:
        reset = await next_event(stream)
        after = await emit_and_read(served_app, user, stream)
    assert (reset.id, reset.event) == (str(newest), "reset")
    assert json.loads(reset.data) == {"replayable": False, "channels": ["test_feed", "test_news"]}
    assert after.event == "test_feed.after_reset"


async def emit_and_read(
    served_app: ServedApp, user: str, stream: AsyncIterator[ServerSentEvent]
) -> ServerSentEvent:
    await served_app.emit(FEED, user, "after_reset")
    return await next_event(stream)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("", "at least one channel"),
        ("?channels=", "at least one channel"),
        ("?channels=test_feed,,test_news", "an empty name"),
        ("?channels=test_feed,test_feed", "'test_feed' more than once"),
        ("?channels=test_feed,nowhere", "'nowhere'"),
        ("?channels=test_feed&channels=test_news", "given more than once"),
        ("?channels=" + ",".join(["test_feed"] * 5_000), "more channels than the 3"),
        ("?channels=" + "n" * 5_000, "'" + "n" * 64 + "'..."),
    ],
    ids=["none", "empty", "an-empty-name", "repeated", "unknown", "twice", "too-many", "long"],
)
async def test_the_multiplexed_route_refuses_a_list_of_channels_it_cannot_serve_naming_why(
    served_app: ServedApp, query: str, says: str
) -> None:
    async with httpx.AsyncClient(base_url=served_app.server.url, timeout=30) as client:
        response = await client.get(
            MULTIPLEXED + query, headers={"Authorization": f"Bearer {sign_token('nia')}"}
        )
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert says in detail
    assert len(detail) < 500, "it echoes the whole request"


async def test_the_multiplexed_route_needs_a_token(served_app: ServedApp) -> None:
    response = await served_app.get(f"{MULTIPLEXED}?channels=test_feed")
    assert response.status_code == 401


async def test_a_token_whose_groups_claim_is_no_list_of_group_names_is_refused(
    served_app: ServedApp,
) -> None:
    for groups in ("team", [""], [1]):
        token = sign_token("gil", groups=groups)
        response = await served_app.get(STREAM, token=token)
        assert response.status_code == 401, groups
        assert "groups claim" in response.json()["detail"]


async def test_a_user_in_more_groups_than_a_stream_may_read_is_the_servers_fault(
    realtime_database_url: str, pytestconfig: pytest.Config
) -> None:
    environment = {"DATABASE_URL": realtime_database_url, "REALTIME_MAX_GROUPS_PER_STREAM": "2"}
    async with (
        serving("tests.app:app", pytestconfig.rootpath, environment) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
    ):
        token = sign_token("gia", groups=["team-1", "team-2", "team-3"])
        refused = await client.get(STREAM, headers={"Authorization": f"Bearer {token}"})
        async with open_stream(server.url + STREAM, sign_token("gia", groups=["a", "b"])):
            pass  # as many as it may: served
    assert refused.status_code == 500
    assert "REALTIME_MAX_GROUPS_PER_STREAM" in refused.json()["detail"]


async def test_a_stream_of_a_member_of_200_groups_replays_its_groups_events_in_order(
    served_app: ServedApp,
) -> None:
    user, *groups = new_users("moe", *(f"crew-{n}" for n in range(200)))
    async with connected(served_app.database_url) as connection:
        before = await emit(connection, FEED, user, "seen")
        async with committing(connection) as ids:
            for group in (groups[150], groups[3], groups[199]):
                await to_group(connection, FEED, group, "to_crew")
    async with channel_stream(served_app, STREAM, user, groups, last_event_id=before) as resumed:
        replayed = [await next_event(resumed) for _ in ids]
    assert [event.id for event in replayed] == [str(event_id) for event_id in ids]
