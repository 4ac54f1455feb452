"""`/ws?since=<id>`: replay of stored notifications, then live ones, with no gap or duplicate.

Live notifications sent while a socket replays are the hard case: a notification may be
both in the replay and queued live, and each socket must still see every id once, in order.
"""

import asyncio
import itertools
from contextlib import AsyncExitStack

import pytest
from clients import connect, recv_notification, recv_until

pytestmark = [pytest.mark.integration, pytest.mark.backends]

# Replays of hundreds of rows: more room than the shared default.
TIMEOUT = 10.0


def ids_of(notifications: list[dict]) -> list[int]:
    return [n["id"] for n in notifications]


async def send_concurrently(api, username: str, count: int, prefix: str, workers: int = 16):
    """POST `count` notifications to one user with `workers` requests in flight at once."""
    counter = itertools.count()
    sent: list[dict] = []

    async def worker() -> None:
        while (i := next(counter)) < count:
            sent.append(await api.send(username, f"{prefix}-{i}"))

    await asyncio.gather(*(worker() for _ in range(workers)))
    return sent


async def test_since_replays_newer_ones_then_live(api):
    username, token = await api.user_with_token()
    other, _ = await api.user_with_token()
    sent = [await api.send(username, f"n{i}", data={"i": i}) for i in range(5)]
    # Another user's notification, newer than all of this user's.
    foreign = await api.send(other, "foreign")
    assert foreign["id"] > sent[-1]["id"]

    async with AsyncExitStack() as stack:
        from_second = await connect(api, token, stack, since=sent[1]["id"])
        from_zero = await connect(api, token, stack, since=0)
        from_last = await connect(api, token, stack, since=sent[-1]["id"])
        from_beyond = await connect(api, token, stack, since=foreign["id"])
        live = await api.send(username, "live")

        assert await recv_until(from_second, live["id"], TIMEOUT) == [*sent[2:], live]
        assert await recv_until(from_zero, live["id"], TIMEOUT) == [*sent, live]
        assert await recv_notification(from_last, TIMEOUT) == live
        assert await recv_notification(from_beyond, TIMEOUT) == live

        # After the replay each socket just goes on live, with nothing repeated.
        after = await api.send(username, "after")
        for ws in (from_second, from_zero, from_last, from_beyond):
            assert await recv_notification(ws, TIMEOUT) == after


async def test_socket_without_since_gets_no_replay(api):
    username, token = await api.user_with_token()
    await api.send(username, "old")
    async with AsyncExitStack() as stack:
        ws = await connect(api, token, stack)
        live = await api.send(username, "live")
        assert await recv_notification(ws, TIMEOUT) == live


async def test_replay_racing_concurrent_sends(api):
    username, token = await api.user_with_token()
    other, _ = await api.user_with_token()
    earlier = await send_concurrently(api, username, 50, "early")

    total = 100
    sends_done = 0
    progress = asyncio.Condition()
    racing: list[dict] = []
    counter = itertools.count()

    async def sender() -> None:
        nonlocal sends_done
        while (i := next(counter)) < total:
            racing.append(await api.send(username, f"race-{i}"))
            if i % 7 == 0:
                # Interleave another user's notifications; they must never be replayed.
                await api.send(other, f"other-{i}")
            async with progress:
                sends_done += 1
                progress.notify_all()

    async def reader(ws) -> list[dict]:
        return await recv_until(ws, lambda n: n["title"] == "marker", TIMEOUT)

    readers: list[asyncio.Task[list[dict]]] = []

    async def connector(stack: AsyncExitStack, after_sends: int) -> None:
        async with progress:
            await progress.wait_for(lambda: sends_done >= after_sends)
        ws = await connect(api, token, stack, since=0)
        readers.append(asyncio.create_task(reader(ws)))

    async with AsyncExitStack() as stack:
        moments = [0, 5, 20, 35, 50, 65, 80, 95]
        async with asyncio.timeout(30):
            await asyncio.gather(
                *(sender() for _ in range(8)), *(connector(stack, m) for m in moments)
            )
        assert sends_done == total
        marker = await api.send(username, "marker")
        results = await asyncio.wait_for(asyncio.gather(*readers), TIMEOUT)

    expected = [*sorted(ids_of([*earlier, *racing])), marker["id"]]
    assert len(set(expected)) == 50 + total + 1
    assert len(results) == len(moments)
    for received in results:
        got = ids_of(received)
        assert got == expected, (
            f"missing={sorted(set(expected) - set(got))} "
            f"extra={sorted(set(got) - set(expected))} duplicates={len(got) - len(set(got))}"
        )
        assert all(n["username"] == username for n in received)


async def test_replay_of_more_than_one_page(api):
    username, token = await api.user_with_token()
    sent = await send_concurrently(api, username, 520, "bulk", workers=24)
    ids = sorted(ids_of(sent))
    assert len(set(ids)) == 520

    async with AsyncExitStack() as stack:
        # 520 rows (two pages), exactly 500 rows (a full page, then an empty one), 501 rows.
        cases = {0: ids, ids[19]: ids[20:], ids[18]: ids[19:]}
        sockets = {since: await connect(api, token, stack, since=since) for since in cases}
        marker = await api.send(username, "marker")

        async def read(ws) -> list[int]:
            return ids_of(await recv_until(ws, marker["id"], TIMEOUT))

        results = await asyncio.wait_for(
            asyncio.gather(*(read(ws) for ws in sockets.values())), TIMEOUT
        )
    for (since, expected), got in zip(cases.items(), results, strict=True):
        assert got == [*expected, marker["id"]], f"since={since}: {len(got)} frames"

    # Contents are replayed as stored, not just ids.
    by_id = {n["id"]: n for n in sent}
    async with AsyncExitStack() as stack:
        ws = await connect(api, token, stack, since=ids[-3])
        assert [await recv_notification(ws, TIMEOUT) for _ in range(2)] == [
            by_id[i] for i in ids[-2:]
        ]


async def test_replay_returns_only_own_notifications(api):
    user_a, token_a = await api.user_with_token()
    user_b, token_b = await api.user_with_token()
    mine, theirs = [], []
    for i in range(6):
        mine.append(await api.send(user_a, f"a{i}"))
        theirs.append(await api.send(user_b, f"b{i}"))
    response = await api.client.post(
        "/notifications",
        json={"usernames": [user_b, user_a], "title": "both"},
        headers=await api.admin_headers(),
    )
    assert response.status_code == 201, response.text
    for_b, for_a = response.json()["notifications"]
    mine.append(for_a)
    theirs.append(for_b)

    async with AsyncExitStack() as stack:
        ws_a = await connect(api, token_a, stack, since=0)
        ws_b = await connect(api, token_b, stack, since=theirs[0]["id"])
        marker_a = await api.send(user_a, "marker")
        marker_b = await api.send(user_b, "marker")
        got_a = await recv_until(ws_a, marker_a["id"], TIMEOUT)
        got_b = await recv_until(ws_b, marker_b["id"], TIMEOUT)

    assert got_a == [*mine, marker_a]
    assert got_b == [*theirs[1:], marker_b]
    assert not set(ids_of(got_a)) & set(ids_of(got_b))


async def test_since_beyond_every_issued_id_still_gets_new_ones(api):
    """A `since` from another database (say, before a reset) must not mute the socket."""
    username, token = await api.user_with_token()
    async with AsyncExitStack() as stack:
        ws = await connect(api, token, stack, since=10**15)
        sent = [await api.send(username, f"after-reset-{i}") for i in range(3)]
        received = [await recv_notification(ws, within=TIMEOUT) for _ in sent]
    assert received == sent
