"""`db.sending.store_sends` (through `Store.send_batch`) on real SQLite and PostgreSQL:
one batch, each send failing alone, per-user stream order, and idempotency keys kept
with a snapshot of what the first send stored."""

import json
from datetime import UTC, datetime

import pytest
from conftest import unique_name
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from notifier.db.models import IdempotencyKey, Message, User
from notifier.db.records import MessageContent
from notifier.db.sending import (
    IdempotencyKeyReusedError,
    IdempotentRequest,
    SendRequest,
    SendResult,
    UnknownUsersError,
)
from notifier.db.store import Store

pytestmark = [pytest.mark.backends, pytest.mark.integration]

DATA = {"n": 1, "ratio": 1e16, "nested": {"é": ["ü", None, True]}, "big": 2**70}


async def _users(store: Store, count: int) -> list[tuple[int, str]]:
    users = [await store.create_user(unique_name(), "h", False) for _ in range(count)]
    return [(user.id, user.username) for user in users]


def _content(title: str) -> MessageContent:
    return MessageContent(title, "body", DATA)


def _key(request_hash: str = "h1") -> IdempotentRequest:
    return IdempotentRequest(unique_name("key"), request_hash)


async def test_a_batch_stores_each_valid_send_and_fails_the_others_alone(store: Store) -> None:
    [(admin_id, _), (_a_id, a), (_b_id, b)] = await _users(store, 3)
    outcomes = await store.send_batch(
        [
            SendRequest([a], _content("one"), admin_id),
            SendRequest([a, "nobody-" + unique_name()], _content("lost"), admin_id),
            SendRequest([b, a], _content("two"), admin_id),
        ]
    )
    first, unknown, second = outcomes
    assert isinstance(unknown, UnknownUsersError) and unknown.usernames[0].startswith("nobody-")
    assert isinstance(first, SendResult) and isinstance(second, SendResult)
    assert not first.replayed and not second.replayed

    [one] = first.entries
    assert (one.username, one.previous_id, one.unread_count) == (a, 0, 1)
    to_b, to_a = second.entries  # request order, not id order
    assert (to_b.username, to_b.previous_id, to_b.unread_count) == (b, 0, 1)
    # a's stream: ids in commit order, each naming the one before.
    assert (to_a.username, to_a.previous_id, to_a.unread_count) == (a, one.notification_id, 2)
    assert to_a.notification_id > one.notification_id

    assert second.stored is not None
    assert second.stored.usernames == (b, a)
    assert second.stored.notification_ids == (to_b.notification_id, to_a.notification_id)
    assert [n.content.title for n in second.stored.notifications] == ["two", "two"]

    # The failed send left nothing behind: no message titled "lost".
    def lost(connection: Connection) -> int:
        return connection.scalar(select(func.count()).where(Message.title == "lost")) or 0

    assert await store.units.read(lost) == 0
    page, unread = await store.since(_a_id, 0, 10)
    assert [n.id for n in page] == [one.notification_id, to_a.notification_id]
    assert unread == 2
    assert page[0].content == MessageContent("one", "body", DATA)


async def test_a_broadcast_reaches_every_user_and_keeps_only_a_count(store: Store) -> None:
    [(admin_id, _), *_rest] = await _users(store, 2)

    def users(connection: Connection) -> int:
        return connection.scalar(select(func.count()).select_from(User)) or 0

    [outcome] = await store.send_batch([SendRequest(None, _content("all"), admin_id, _key())])
    assert isinstance(outcome, SendResult) and outcome.stored is not None
    assert len(outcome.entries) == outcome.stored.recipient_count == await store.units.read(users)
    assert outcome.stored.notification_ids == () and outcome.stored.notifications == []
    assert outcome.stored.created_at == outcome.entries[0].created_at


async def test_a_retry_replays_the_snapshot_of_the_first_send_and_stores_nothing(
    store: Store,
) -> None:
    [(admin_id, _), (user_id, name)] = await _users(store, 2)
    key = _key()
    [first] = await store.send_batch([SendRequest([name], _content("once"), admin_id, key)])
    [retry] = await store.send_batch([SendRequest([name], _content("once"), admin_id, key)])
    assert isinstance(first, SendResult) and isinstance(retry, SendResult)
    assert retry.replayed and retry.entries == []
    # Read back from the database, equal field for field (data and instant included).
    assert retry.stored == first.stored
    assert await store.stream_head(user_id) == first.entries[0].notification_id

    [reused] = await store.send_batch(
        [SendRequest([name], _content("other"), admin_id, IdempotentRequest(key.key, "h2"))]
    )
    assert isinstance(reused, IdempotencyKeyReusedError)
    # Keys belong to their sender: another admin's identical key is a new send.
    [(other_admin, _)] = await _users(store, 1)
    [theirs] = await store.send_batch([SendRequest([name], _content("once"), other_admin, key)])
    assert isinstance(theirs, SendResult) and not theirs.replayed


async def test_repeats_of_a_key_within_one_batch_answer_like_the_first(store: Store) -> None:
    [(admin_id, _), (_user_id, name)] = await _users(store, 2)
    key = _key()
    request = SendRequest([name], _content("dup"), admin_id, key)
    changed = SendRequest([name], _content("dup"), admin_id, IdempotentRequest(key.key, "other"))
    first, repeat, conflict = await store.send_batch([request, request, changed])
    assert isinstance(first, SendResult) and isinstance(repeat, SendResult)
    assert repeat.replayed and repeat.entries == [] and repeat.stored == first.stored
    assert isinstance(conflict, IdempotencyKeyReusedError)
    page, _unread = await store.since(_user_id, 0, 10)
    assert len(page) == 1


async def test_a_key_kept_by_a_version_before_snapshots_replays_its_body(store: Store) -> None:
    """Rows written before the snapshot format (within the 24-hour window of an upgrade)
    hold the response body itself: it is answered as it is."""
    [(admin_id, _), (_user_id, name)] = await _users(store, 2)
    key = _key()
    body = json.dumps({"id": 7, "username": name, "title": "old"})

    def keep_legacy(session: Session) -> None:
        session.add(
            IdempotencyKey(
                sender_id=admin_id,
                key=key.key,
                request_hash=key.request_hash,
                status_code=201,
                response=body,
                created_at=datetime.now(UTC),
            )
        )

    await store.units.write(keep_legacy)
    [retry] = await store.send_batch([SendRequest([name], _content("old"), admin_id, key)])
    assert isinstance(retry, SendResult)
    assert retry.replayed and retry.stored is None and retry.legacy_response == body
