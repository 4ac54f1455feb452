"""Unit tests of the hub: routing to a user's local sockets, closes, and its counters."""

import pytest
from connection_fakes import (
    FakeSocket,
    FakeStore,
    FastSocket,
    fast_connection,
    make_connection,
    settle,
)

from notifier import closes
from notifier.delivery.frames import CloseRequest, Publication, Recipient, UserFrame
from notifier.delivery.hub import Hub
from notifier.metrics import Metrics

pytestmark = pytest.mark.unit


async def test_hub_delivers_to_every_socket_of_the_recipient_only():
    hub = Hub(Metrics())
    a1, a2, b = FakeSocket(), FakeSocket(), FakeSocket()
    connections = [
        make_connection(a1, user="a"),
        make_connection(a2, user="a"),
        make_connection(b, user="b"),
    ]
    for connection in connections:
        assert hub.add(connection)
        connection.start(0, catch_up=False)
    hub.dispatch(Publication('"title":"t"', [Recipient("a", 1, 0, 1)], 0.0))
    hub.dispatch(UserFrame("b", "read-event"))
    await settle()
    assert (
        a1.sent
        == a2.sent
        == [
            '{"type":"notification","notification":{"id":1,"username":"a",'
            '"title":"t"},"unread_count":1}'
        ]
    )
    assert b.sent == ["read-event"]
    assert hub.count("a") == 2 and hub.count("b") == 1
    assert not hub.remove(connections[0])
    assert hub.remove(connections[1])
    assert not hub.has_user("a")
    await hub.close_all(lambda: closes.shutdown(1000))
    [(code, reason)] = b.closes
    assert code == 1012 and reason.startswith("server restarting; retry_after_ms=")
    assert not hub.add(make_connection(FakeSocket(), user="c"))


async def test_hub_closes_only_the_named_sessions():
    hub = Hub(Metrics())
    kept, revoked = FakeSocket(), FakeSocket()
    first, second = make_connection(kept, user="a"), make_connection(revoked, user="a")
    first.session_id, second.session_id = "s1", "s2"
    for connection in (first, second):
        hub.add(connection)
        connection.start(0, catch_up=False)
    hub.dispatch(CloseRequest("a", 1008, "token revoked", ("s2",)))
    await settle()
    assert revoked.closes == [(1008, "token revoked")]
    assert kept.closes == []
    await first.stop_writer()


async def test_the_hub_counts_frames_written_at_once_per_publication():
    metrics = Metrics()
    hub = Hub(metrics)
    sockets = [FastSocket() for _ in range(3)]
    for i, socket in enumerate(sockets):
        connection = fast_connection(socket, FakeStore())
        connection.username = f"u{i}"
        hub.add(connection)
        connection.start(0, catch_up=False)
    recipients = [Recipient(f"u{i}", 10 + i, 0, 1) for i in range(3)]
    hub.dispatch(Publication('"title":"t"', recipients, 0.0))
    assert all(len(socket.written_now) == 1 for socket in sockets)
    assert metrics.live_deliveries._value.get() == 3
    assert metrics.delivery_latency._sum.get() > 0
    [count] = [
        s.value for s in metrics.delivery_latency.collect()[0].samples if s.name.endswith("_count")
    ]
    assert count == 1
    await hub.close_all(lambda: closes.shutdown(1000))
