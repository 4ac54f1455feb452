"""The token-lifecycle queries on both databases: rotation, reuse detection, throttling
counters and single-use tickets, including races between concurrent callers (as two
workers would race)."""

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from notifier.db.auth_store import AuthStore, Rotation
from notifier.db.store import Store

pytestmark = [pytest.mark.integration, pytest.mark.backends]


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[tuple[Store, AuthStore]]:
    store = Store(database_url)
    yield store, AuthStore(store.units)
    await store.close()


_counter = iter(range(10**6))


async def _user(store: Store) -> tuple[int, str]:
    name = f"u{next(_counter)}-{time.time_ns()}"
    user = await store.create_user(name, "hash", False)
    return user.id, name


async def _session(auth: AuthStore, user_id: int, refresh: str, now: int) -> str:
    session_id = f"s-{refresh}"
    await auth.open_session(session_id, user_id, refresh, now, now + 100, now + 100)
    return session_id


async def test_rotation_then_reuse_revokes_the_session(stores) -> None:
    store, auth = stores
    user_id, name = await _user(store)
    now = int(time.time())
    session_id = await _session(auth, user_id, f"r1-{now}-{user_id}", now)

    first = await auth.rotate_refresh(
        f"r1-{now}-{user_id}", f"r2-{now}-{user_id}", now, now + 100, now + 100
    )
    assert first.outcome is Rotation.ROTATED and first.session_id == session_id
    assert (await auth.credentials(name, session_id)).session_revoked is False

    reused = await auth.rotate_refresh(
        f"r1-{now}-{user_id}", f"r3-{now}-{user_id}", now, now + 100, now + 100
    )
    assert reused.outcome is Rotation.REUSED
    assert (await auth.credentials(name, session_id)).session_revoked is True
    # The successor issued before the reuse is dead too: the whole family is revoked.
    successor = await auth.rotate_refresh(
        f"r2-{now}-{user_id}", f"r4-{now}-{user_id}", now, now + 100, now + 100
    )
    assert successor.outcome is Rotation.REVOKED


async def test_concurrent_rotations_of_one_token_let_exactly_one_through(stores) -> None:
    store, auth = stores
    user_id, _name = await _user(store)
    now = int(time.time())
    await _session(auth, user_id, f"race-{user_id}", now)
    results = await asyncio.gather(
        *(
            auth.rotate_refresh(f"race-{user_id}", f"next-{user_id}-{i}", now, now + 100, now + 100)
            for i in range(5)
        )
    )
    outcomes = sorted(result.outcome.value for result in results)
    assert outcomes.count("rotated") == 1, outcomes
    assert set(outcomes) <= {"rotated", "reused"}


async def test_within_the_grace_every_concurrent_rotation_gets_a_successor(stores) -> None:
    store, auth = stores
    user_id, name = await _user(store)
    now = int(time.time())
    session_id = await _session(auth, user_id, f"tabs-{user_id}", now)
    results = await asyncio.gather(
        *(
            auth.rotate_refresh(
                f"tabs-{user_id}", f"tab-{user_id}-{i}", now, now + 100, now + 100, 10
            )
            for i in range(8)
        )
    )
    outcomes = sorted(result.outcome.value for result in results)
    assert outcomes == ["reissued"] * 7 + ["rotated"], outcomes
    assert {result.session_id for result in results} == {session_id}
    assert (await auth.credentials(name, session_id)).session_revoked is False
    # Each successor is usable once, and the session stays live.
    for i in range(8):
        spent = await auth.rotate_refresh(
            f"tab-{user_id}-{i}", f"next-{user_id}-{i}", now + 1, now + 100, now + 100, 10
        )
        assert spent.outcome is Rotation.ROTATED
    assert (await auth.credentials(name, session_id)).session_revoked is False


async def test_the_grace_is_counted_from_the_first_use(stores) -> None:
    store, auth = stores
    user_id, name = await _user(store)
    now = int(time.time())
    session_id = await _session(auth, user_id, f"g-{user_id}", now)
    rotate = auth.rotate_refresh
    first = await rotate(f"g-{user_id}", f"g1-{user_id}", now, now + 100, now + 100, 5)
    assert first.outcome is Rotation.ROTATED
    # A reissue at the window's last second does not move the window.
    last = await rotate(f"g-{user_id}", f"g2-{user_id}", now + 5, now + 100, now + 100, 5)
    assert last.outcome is Rotation.REISSUED
    late = await rotate(f"g-{user_id}", f"g3-{user_id}", now + 6, now + 100, now + 100, 5)
    assert late.outcome is Rotation.REUSED
    assert (await auth.credentials(name, session_id)).session_revoked is True
    for successor in (f"g1-{user_id}", f"g2-{user_id}"):
        dead = await rotate(successor, f"x-{successor}", now + 6, now + 100, now + 100, 5)
        assert dead.outcome is Rotation.REVOKED


async def test_unknown_and_expired_refresh_tokens(stores) -> None:
    store, auth = stores
    user_id, _name = await _user(store)
    now = int(time.time())
    assert (await auth.rotate_refresh("nope", "x", now, now, now)).outcome is Rotation.UNKNOWN
    await auth.open_session(
        f"old-{user_id}", user_id, f"old-{user_id}", now - 50, now - 10, now + 10
    )
    expired = await auth.rotate_refresh(
        f"old-{user_id}", f"new-{user_id}", now, now + 100, now + 100
    )
    assert expired.outcome is Rotation.EXPIRED


async def test_attempt_counter_counts_every_concurrent_attempt(stores) -> None:
    _store, auth = stores
    key = f"user:race-{time.time_ns()}"
    now = int(time.time())
    counted = await asyncio.gather(*(auth.count_attempts([key], now, 60) for _ in range(20)))
    assert sorted(c[key][0] for c in counted) == list(range(1, 21))
    # Two keys in one statement.
    both = await auth.count_attempts([key, key + "-b"], now, 60)
    assert both == {key: (21, 0), key + "-b": (1, 0)}
    # A new window starts over.
    assert (await auth.count_attempts([key], now + 61, 60))[key] == (1, 0)


async def test_exactly_one_racer_wins_a_lock_and_locks_double(stores) -> None:
    _store, auth = stores
    key = f"addr:{time.time_ns()}"
    now = int(time.time())
    await auth.count_attempts([key], now, 600)
    won = await asyncio.gather(*(auth.lock_if_unlocked(key, now, 30, 600) for _ in range(5)))
    assert sorted(won, key=str) == [now + 30] + [None] * 4
    assert await auth.locked_until([key, "user:other"]) == now + 30
    # Once it has expired, the next lock lasts twice as long, up to the cap.
    assert await auth.lock_if_unlocked(key, now + 31, 30, 600) == now + 31 + 60
    assert await auth.lock_if_unlocked(key, now + 100, 30, 600) == now + 100 + 120
    assert await auth.lock_if_unlocked(key, now + 300, 500, 600) == now + 300 + 600
    assert await auth.locked_until([key]) == now + 900
    # A new window forgets the earlier locks.
    assert (await auth.count_attempts([key], now + 2000, 600))[key] == (1, now + 900)


async def test_clearing(stores) -> None:
    _store, auth = stores
    key = f"addr:{time.time_ns()}"
    now = int(time.time())
    await auth.count_attempts([key], now, 60)
    await auth.lock_if_unlocked(key, now, 30, 60)
    await auth.clear_failures(key)
    assert await auth.locked_until([key]) == 0
    assert (await auth.count_attempts([key], now, 60))[key] == (1, 0)


async def test_a_ticket_is_taken_once_even_by_racing_workers(stores) -> None:
    store, auth = stores
    user_id, name = await _user(store)
    now = int(time.time())
    ticket = f"t-{user_id}"
    await auth.add_ticket(ticket, user_id, None, None, now + 600, now, now + 30)
    taken = await asyncio.gather(*(auth.consume_ticket(ticket, now) for _ in range(5)))
    winners = [t for t in taken if t is not None]
    assert len(winners) == 1
    assert winners[0].user.username == name
    assert await auth.consume_ticket(ticket, now) is None


async def test_expired_ticket_is_refused(stores) -> None:
    store, auth = stores
    user_id, _name = await _user(store)
    now = int(time.time())
    await auth.add_ticket(f"late-{user_id}", user_id, None, None, now + 600, now - 60, now - 30)
    assert await auth.consume_ticket(f"late-{user_id}", now) is None


async def test_disable_revokes_sessions_and_tickets(stores) -> None:
    store, auth = stores
    user_id, name = await _user(store)
    now = int(time.time())
    session_id = await _session(auth, user_id, f"d-{user_id}", now)
    await auth.add_ticket(f"dt-{user_id}", user_id, session_id, None, now + 600, now, now + 30)
    flags = await auth.set_disabled(name, True, now)
    assert flags is not None and flags.disabled
    found = await auth.credentials(name, session_id)
    assert found.disabled and found.session_revoked
    assert await auth.consume_ticket(f"dt-{user_id}", now) is None
    assert await auth.set_disabled("no-such-user", True, now) is None
    enabled = await auth.set_disabled(name, False, now)
    assert enabled is not None and not enabled.disabled
    # Enabling does not bring revoked sessions back.
    assert (await auth.credentials(name, session_id)).session_revoked


async def test_revoking_a_session_without_a_row_records_it(stores) -> None:
    store, auth = stores
    _user_id, name = await _user(store)
    now = int(time.time())
    assert await auth.revoke_session("jti:abc" + name[-8:], name, now, now + 60, "revoked")
    assert (await auth.credentials(name, "jti:abc" + name[-8:])).session_revoked
    # Revoking again reports nothing new; another user's name cannot revoke it.
    assert not await auth.revoke_session("jti:abc" + name[-8:], name, now, now + 60, "revoked")
    assert await auth.revoke_user_sessions("no-such-user", now, "x") is None


async def test_quiet_counters_are_forgotten_but_locks_are_kept(stores) -> None:
    _store, auth = stores
    now = int(time.time())
    quiet, locked = f"user:quiet-{now}-{time.time_ns()}", f"user:locked-{time.time_ns()}"
    await auth.count_attempts([quiet], now - 100, 60)
    await auth.count_attempts([locked], now - 100, 60)
    await auth.lock_if_unlocked(locked, now - 100, 200, 600)
    await auth.forget_attempts(now, 60)
    # The quiet key starts over; the locked one still holds its lock and its count.
    assert (await auth.count_attempts([quiet], now, 60))[quiet] == (1, 0)
    assert (await auth.count_attempts([locked], now, 60))[locked] == (1, now + 100)


async def test_hot_path_reads_see_every_committed_write(stores: tuple[Store, AuthStore]) -> None:
    """The credentials and stream-head reads (`db.units`: inline on a held connection on
    SQLite) see writes committed through the async engine and through the writer thread
    at once: a stale snapshot would reject a new user or replay from an old head."""
    from notifier.db.records import MessageContent
    from notifier.db.sending import SendRequest

    store, auth = stores
    user_id, name = await _user(store)  # written through the writer path
    found = await auth.credentials(name, None)
    assert found is not None and found.user.id == user_id and not found.disabled
    assert await store.stream_head(user_id) == 0

    heads = []
    for title in ("one", "two"):
        [outcome] = await store.send_batch(
            [SendRequest([name], MessageContent(title, "", {}), user_id)]
        )
        heads.append(outcome.entries[0].notification.id)  # type: ignore[union-attr]
        assert await store.stream_head(user_id) == heads[-1]
    page, unread = await store.since(user_id, 0, 10)
    assert [n.id for n in page] == heads and [n.content.title for n in page] == ["one", "two"]
    assert unread == 2
    assert (await store.since(user_id, heads[-1], 10)) == ([], 2)

    await auth.set_disabled(name, True, int(time.time()))
    found = await auth.credentials(name, None)
    assert found is not None and found.disabled


async def test_a_closed_store_opens_again(database_url: str) -> None:
    """An app's lifespan can run twice on one runtime (schemathesis, TestClient): after
    `close()` the hot-path reader and the writer thread come back on first use."""
    from notifier.db.records import MessageContent
    from notifier.db.sending import SendRequest

    store = Store(database_url)
    auth = AuthStore(store.units)
    user_id, name = await _user(store)
    for _ in range(2):
        await store.send_batch([SendRequest([name], MessageContent("t", "", {}), user_id)])
        assert await auth.credentials(name, None) is not None
        await store.close()
    assert await store.stream_head(user_id) > 0
    await store.close()
