"""The five scenarios of `make bench`. Each is bounded in time and count and stops by itself.

Every scenario takes the `Server` under test and its parameters (chosen by `bench.run`)
and returns a JSON-able result. Latency is always measured in this one process: from the
time a POST was (scheduled to be) sent, carried in the notification's `data`, to the
moment its frame is parsed off the socket.
"""

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench import wsclient
from bench.loadgen import (
    ClientState,
    Phase,
    RssSampler,
    Server,
    Targeted,
    close_all,
    content,
    decode,
    latency_summary,
    offered_rate,
    pick,
    server_rss_kib,
    settle,
)

CONNECT_CONCURRENCY = 100
"""Handshakes in flight at once while opening sockets (a crowd arriving, not a storm)."""


# S1 sockets


async def s1_sockets(server: Server, params: dict[str, Any]) -> dict[str, Any]:
    """Open 1,000 / 5,000 / 10,000 sockets: connect rate, RSS per socket, and a check that
    every socket still receives a notification afterwards."""
    pid = server.spec.server_pid
    offer_deflate = bool(params["offer_deflate"])
    hits: dict[int, int] = {}

    def on_message(_client: wsclient.WsClient, payload: bytes) -> None:
        decoded = decode(payload)
        if decoded is not None and "check" in decoded[0]:
            check = decoded[0]["check"]
            hits[check] = hits.get(check, 0) + 1

    pool = server.pool(2)
    clients: list[wsclient.WsClient] = []

    async def check(round_: int) -> dict[str, Any]:
        open_now = sum(1 for c in clients if c.open)
        started = time.monotonic()
        response = await pool.request(
            "POST", server.broadcast_path, content("check", {"check": round_}), timeout=60
        )
        deadline = started + 60
        while hits.get(round_, 0) < open_now and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return {
            "status": response.status,
            "open_sockets": open_now,
            "received": hits.get(round_, 0),
            "seconds": round(time.monotonic() - started, 3),
        }

    warm_count = int(params.get("warm", 10))
    warm, errors = await server.connect_many(
        range(warm_count), on_message, warm_count, offer_deflate=offer_deflate
    )
    clients += warm
    await check(0)
    await asyncio.sleep(1.0)
    rss_before = server_rss_kib(pid)
    steps = []
    for round_, size in enumerate(params["sizes"], start=1):
        with Phase(f"connect to {size}", pid) as phase:
            new, step_errors = await server.connect_many(
                range(len(clients), size),
                on_message,
                CONNECT_CONCURRENCY,
                offer_deflate=offer_deflate,
            )
        clients += new
        errors += step_errors
        # Let writer tasks start and buffers settle before reading RSS.
        await asyncio.sleep(1.0)
        rss = server_rss_kib(pid)
        measured = len(clients) - len(warm)
        steps.append(
            {
                "sockets": len(clients),
                "connect_errors": len(step_errors),
                "connect_rate": round(len(new) / phase.wall, 1) if phase.wall else None,
                "rss_kib": rss,
                "rss_per_socket_kib": round((rss - rss_before) / measured, 2) if measured else None,
                "deflate_negotiated": sum(1 for c in clients if c.deflate),
                "server_cpu_per_connect_ms": round(1000 * phase.server_cpu / max(len(new), 1), 3),
                "check": await check(round_),
                **phase.report(),
            }
        )
    result = {
        "offer_deflate": offer_deflate,
        "rss_before_kib": rss_before,
        "rss_after_checks_kib": server_rss_kib(pid),
        "steps": steps,
        "connect_errors_sample": errors[:5],
        "still_open": sum(1 for c in clients if c.open),
    }
    close_all(clients)
    pool.close()
    return result


# S2 targeted


async def s2_targeted(server: Server, params: dict[str, Any]) -> dict[str, Any]:
    """1,000 users, POSTs to random users at fixed offered rates, then flat out."""
    pid = server.spec.server_pid
    users = list(range(int(params["users"])))
    tracker = Targeted()
    clients, errors = await server.connect_many(users, tracker.on_message, CONNECT_CONCURRENCY)
    pool = server.pool(int(params.get("pool", 256)))
    rng = random.Random(2)
    p99_limit_ms = float(params.get("p99_limit_ms", 100))

    async def fire_targeted(name: str, at: float) -> None:
        await tracker.post(server, pool, pick(rng, users), name, at)

    # Warm-up, not measured: first requests pay for imports, pools and caches.
    warm: set[asyncio.Task[Any]] = set()
    warm_seconds = float(params.get("warm_seconds", 1))
    await offered_rate(100, warm_seconds, lambda at: fire_targeted("warm-up", at), warm)
    await settle(warm, 10)

    steps = []
    highest_held = 0.0
    for rate in params["rates"]:
        name = f"{rate}/s"
        tasks: set[asyncio.Task[Any]] = set()
        with Phase(name, pid) as phase:
            await offered_rate(
                rate, float(params["step_seconds"]), lambda at, n=name: fire_targeted(n, at), tasks
            )
            await settle(tasks, 15)
        await tracker.drain(lambda n=name: tracker.accepted(n), 3.0)
        summary = tracker.summary(name)
        held = (
            not summary["errors"]
            and summary["lost"] == 0
            and summary["id_mismatch"] == 0
            and summary["p99_ms"] is not None
            and summary["p99_ms"] < p99_limit_ms
        )
        steps.append({"offered_rate": rate, "held": held, **summary, **phase.report()})
        if not held:
            break
        highest_held = rate

    name = "flat out"
    deadline = time.monotonic() + float(params["flat_seconds"])

    async def worker() -> None:
        while time.monotonic() < deadline:
            await tracker.post(server, pool, pick(rng, users), name, time.monotonic())

    with Phase(name, pid) as phase:
        await asyncio.gather(*(worker() for _ in range(int(params["flat_concurrency"]))))
    await tracker.drain(lambda: tracker.accepted(name), 3.0)
    flat = tracker.summary(name)
    flat["throughput"] = round(flat["accepted"] / phase.wall, 1)
    flat["server_cpu_per_post_us"] = round(1e6 * phase.server_cpu / max(flat["accepted"], 1), 1)
    flat.update(phase.report())

    result = {
        "users": len(users),
        "sockets": len(clients),
        "connect_errors": len(errors),
        "p99_limit_ms": p99_limit_ms,
        "steps": steps,
        "highest_held_rate": highest_held,
        "flat": flat,
        "duplicates": tracker.duplicates,
        "wrong_user": tracker.wrong_user,
        "out_of_order": sum(c.tag.out_of_order for c in clients),  # type: ignore[attr-defined]
    }
    close_all(clients)
    pool.close()
    return result


# S3 broadcast


@dataclass
class Broadcasts:
    """Per broadcast: when it was sent, how many sockets have it, and when the last got it."""

    sockets: int
    sent: dict[int, float] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)
    duplicates: int = 0

    def on_message(self, client: wsclient.WsClient, payload: bytes) -> None:
        now = time.monotonic()
        decoded = decode(payload)
        if decoded is None:
            return
        b = decoded[0].get("b")
        if b is None:
            return
        state: ClientState = client.tag  # type: ignore[assignment]
        if b <= state.last_broadcast:
            self.duplicates += 1
            return
        state.last_broadcast = b
        self.counts[b] = self.counts.get(b, 0) + 1
        self.last[b] = now

    def complete(self, b: int) -> bool:
        return self.counts.get(b, 0) >= self.sockets

    async def wait(self, ids: list[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(self.complete(b) for b in ids) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)


async def s3_broadcast(server: Server, params: dict[str, Any]) -> dict[str, Any]:
    """N sockets, repeated broadcasts: deliveries/s and time until the last socket has one."""
    pid = server.spec.server_pid
    users = range(int(params["users"]))
    placeholder = Broadcasts(0)
    clients, errors = await server.connect_many(users, placeholder.on_message, CONNECT_CONCURRENCY)
    tracker = Broadcasts(len(clients))
    for client in clients:
        client.on_message = tracker.on_message
    pool = server.pool(2)
    timeout = float(params.get("timeout", 60))
    next_id = 0

    async def broadcast() -> tuple[int, float, int]:
        nonlocal next_id
        b, next_id = next_id, next_id + 1
        tracker.sent[b] = time.monotonic()
        response = await pool.request(
            "POST", server.broadcast_path, content("bench broadcast", {"b": b, "t": 0}), timeout
        )
        return b, time.monotonic() - tracker.sent[b], response.status

    warm, *_ = await broadcast()
    await tracker.wait([warm], timeout)

    # One at a time: the time until the last socket has each broadcast.
    completion, post_seconds, statuses = [], [], []
    with Phase("one at a time", pid) as one_phase:
        for _ in range(int(params["sequential"])):
            b, answered, status = await broadcast()
            await tracker.wait([b], timeout)
            statuses.append(status)
            post_seconds.append(answered)
            if tracker.complete(b):
                completion.append(tracker.last[b] - tracker.sent[b])
            await asyncio.sleep(0.02)

    # Back to back (each POST answered before the next): sustained deliveries per second.
    burst: list[int] = []
    with Phase("back to back", pid) as burst_phase:
        start = time.monotonic()
        for _ in range(int(params["burst"])):
            b, _answered, status = await broadcast()
            burst.append(b)
            statuses.append(status)
        await tracker.wait(burst, timeout)
        finished = max((tracker.last.get(b, start) for b in burst), default=start)
    delivered = sum(tracker.counts.get(b, 0) for b in burst)
    span = finished - start
    result = {
        "sockets": len(clients),
        "connect_errors": len(errors),
        "post_errors": sum(1 for s in statuses if not 200 <= s < 300),
        "one_at_a_time": {
            "broadcasts": int(params["sequential"]),
            "complete": len(completion),
            "completion": latency_summary(completion),
            "post_answer": latency_summary(post_seconds),
            **one_phase.report(),
        },
        "back_to_back": {
            "broadcasts": len(burst),
            "complete": sum(1 for b in burst if tracker.complete(b)),
            "deliveries": delivered,
            "deliveries_per_s": round(delivered / span, 1) if span > 0 else None,
            "server_cpu_per_delivery_us": round(
                1e6 * burst_phase.server_cpu / max(delivered, 1), 2
            ),
            **burst_phase.report(),
        },
        "duplicates": tracker.duplicates,
    }
    close_all(clients)
    pool.close()
    return result


# S4 slow consumers


@dataclass
class Feed:
    """Large notifications for the stuck sockets' users, tracked per (tick, user)."""

    status: dict[tuple[int, int], int] = field(default_factory=dict)
    phase: dict[int, str] = field(default_factory=dict)
    got: dict[int, set[int]] = field(default_factory=dict)
    duplicates: int = 0

    def on_data(self, user: int, data: dict[str, Any]) -> None:
        tick = data.get("f")
        if tick is None:
            return
        seen = self.got.setdefault(user, set())
        if tick in seen:
            self.duplicates += 1
        seen.add(tick)

    def accepted(self, user: int) -> list[int]:
        return [t for (t, u), s in self.status.items() if u == user and 200 <= s < 300]

    def errors(self, phase: str) -> int:
        return sum(
            1 for (t, _), s in self.status.items() if self.phase[t] == phase and not 200 <= s < 300
        )


async def s4_slow_consumers(server: Server, params: dict[str, Any]) -> dict[str, Any]:
    """S2 at a fixed rate plus broadcasts, first with every socket reading, then with 1 % of
    the sockets never reading. Reports the other sockets' latency in both phases, RSS over
    time, and what became of the stuck sockets once they read again.

    A stuck socket only overflows once the kernel's buffers (several MiB on loopback) and
    the server's queue are full, so the stuck sockets' users also get a stream of large
    notifications (`feed_per_second` ticks of ~20 KiB each): one multi-recipient POST per
    tick on Notifier, one POST per stuck user on the baseline, which has no multi-send.
    """
    pid = server.spec.server_pid
    count = int(params["users"])
    users = list(range(count))
    stuck_count = max(1, round(count * float(params.get("stuck_share", 0.01))))
    stride = count // stuck_count
    stuck = sorted(i * stride for i in range(stuck_count))
    stuck_set = set(stuck)
    others = [u for u in users if u not in stuck_set]
    others_set = set(others)
    tracker = Targeted()
    feed = Feed()
    broadcast_sent: dict[int, tuple[str, float]] = {}
    broadcast_status: dict[int, int] = {}
    broadcast_hits: dict[int, int] = {}
    broadcast_last: dict[int, float] = {}

    def on_message(client: wsclient.WsClient, payload: bytes) -> None:
        tracker.on_message(client, payload)
        state: ClientState = client.tag  # type: ignore[assignment]
        decoded = decode(payload)
        if decoded is None:
            return
        data = decoded[0]
        if state.user in stuck_set:
            feed.on_data(state.user, data)
        elif "b" in data:
            b = data["b"]
            broadcast_hits[b] = broadcast_hits.get(b, 0) + 1
            broadcast_last[b] = time.monotonic()

    # Stuck clients are spread among the others in connection order, as they would be in
    # life (a server that walks its sockets in order meets them along the way). Their small
    # receive buffer does not change how much the server's side of the connection buffers.
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    errors: list[str] = []

    async def open_socket(user: int) -> wsclient.WsClient | None:
        async with gate:
            try:
                return await server.connect(
                    user, on_message, receive_buffer=4096 if user in stuck_set else None
                )
            except (OSError, wsclient.HandshakeError, TimeoutError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return None

    opened = await asyncio.gather(*(open_socket(u) for u in users))
    reading = [c for u, c in zip(users, opened, strict=True) if c and u not in stuck_set]
    stuck_clients = [c for u, c in zip(users, opened, strict=True) if c and u in stuck_set]
    targeted_pool = server.pool(256)
    feed_pool = server.pool(64)
    broadcast_pool = server.pool(32)
    rng = random.Random(4)
    rate = float(params["rate"])
    feed_rate = float(params["feed_per_second"])
    seconds = float(params["phase_seconds"])
    interval = float(params.get("broadcast_interval", 0.5))
    post_timeout = float(params.get("post_timeout", 5))
    # Near the largest notification Notifier accepts (body 4,000 chars, data 16 KiB).
    feed_body = "f" * 4000
    feed_pad = "p" * 16000
    feed_frame_kib = round((len(feed_body) + len(feed_pad) + 300) / 1024, 1)
    next_tick = 0
    next_broadcast = 0

    async def fire_targeted(phase: str, at: float) -> None:
        await tracker.post(server, targeted_pool, pick(rng, users), phase, at, timeout=post_timeout)

    async def post_feed(tick: int, recipients: list[int], path: str, body: bytes) -> None:
        try:
            response = await feed_pool.request("POST", path, body, post_timeout)
            status = response.status
        except (OSError, TimeoutError, ValueError):
            status = -1
        for user in recipients:
            feed.status[(tick, user)] = status

    async def fire_feed(phase: str, at: float) -> None:
        nonlocal next_tick
        tick, next_tick = next_tick, next_tick + 1
        feed.phase[tick] = phase
        data = {"f": tick, "t": at, "pad": feed_pad}
        if server.notifier:
            names = [server.spec.user(u) for u in stuck]
            body = orjson.dumps(
                {"usernames": names, "title": "bench feed", "body": feed_body, "data": data}
            )
            await post_feed(tick, stuck, "/notifications", body)
        else:
            body = content("bench feed", data, feed_body)
            await asyncio.gather(*(post_feed(tick, [u], server.send_path(u), body) for u in stuck))

    async def fire_broadcast(phase: str, at: float) -> None:
        nonlocal next_broadcast
        b, next_broadcast = next_broadcast, next_broadcast + 1
        broadcast_sent[b] = (phase, at)
        try:
            response = await broadcast_pool.request(
                "POST",
                server.broadcast_path,
                content("bench broadcast", {"b": b, "t": at}),
                post_timeout,
            )
            broadcast_status[b] = response.status
        except (OSError, TimeoutError, ValueError):
            broadcast_status[b] = -1

    sampler = RssSampler(pid)
    sampler.start()

    async def run_phase(name: str) -> dict[str, Any]:
        first_sample = len(sampler.samples)
        tasks: set[asyncio.Task[Any]] = set()
        with Phase(name, pid) as phase:
            await asyncio.gather(
                offered_rate(rate, seconds, lambda at: fire_targeted(name, at), tasks),
                offered_rate(feed_rate, seconds, lambda at: fire_feed(name, at), tasks),
                offered_rate(1 / interval, seconds, lambda at: fire_broadcast(name, at), tasks),
            )
            # Requests held by a blocked server time out on their own (post_timeout).
            await settle(tasks, post_timeout + 2)
        await tracker.drain(lambda: tracker.accepted(name, others_set), 3.0)
        ids = [b for b, (p, _) in broadcast_sent.items() if p == name]
        completion = [
            broadcast_last[b] - broadcast_sent[b][1]
            for b in ids
            if broadcast_hits.get(b, 0) >= len(reading)
        ]
        rss = [kib for _, kib in sampler.samples[first_sample:]]
        return {
            "others_targeted": tracker.summary(name, others_set),
            "broadcasts": len(ids),
            "broadcast_errors": sum(1 for b in ids if not 200 <= broadcast_status.get(b, 0) < 300),
            "broadcasts_reaching_every_reading_socket": len(completion),
            "broadcast_completion": latency_summary(completion),
            "feed_ticks": sum(1 for p in feed.phase.values() if p == name),
            "feed_post_errors": feed.errors(name),
            "rss_max_kib": max(rss) if rss else None,
            **phase.report(),
        }

    reading_phase = await run_phase("all reading")
    for client in stuck_clients:
        client.pause()
    stuck_phase = await run_phase("1% stuck")

    # The stuck sockets read again: do they catch up, or how were they closed?
    for client in stuck_clients:
        client.resume()
    broadcasts_ok = [b for b, s in broadcast_status.items() if 200 <= s < 300]
    expected = {
        u: [q for q, s in tracker.sent.items() if s.user == u and 200 <= s.status < 300]
        for u in stuck
    }
    deadline = time.monotonic() + float(params["resume_seconds"])

    def missing(client: wsclient.WsClient) -> int:
        state: ClientState = client.tag  # type: ignore[assignment]
        targeted = sum(1 for q in expected[state.user] if q not in tracker.received)
        fed = len(set(feed.accepted(state.user)) - feed.got.get(state.user, set()))
        return targeted + fed + max(0, len(broadcasts_ok) - state.broadcasts)

    while time.monotonic() < deadline and not all(
        c.closed.done() or missing(c) == 0 for c in stuck_clients
    ):
        await asyncio.sleep(0.1)
    await sampler.stop()
    counters = await server_counters(broadcast_pool)
    outcomes: dict[str, int] = {}
    for client in stuck_clients:
        if client.close_code is not None:
            key = f"closed {client.close_code} {client.close_reason}".strip()
        elif missing(client) == 0:
            key = "caught up, still open"
        else:
            key = "open, not caught up"
        outcomes[key] = outcomes.get(key, 0) + 1

    rise = None
    p99_a = reading_phase["others_targeted"]["p99_ms"]
    p99_b = stuck_phase["others_targeted"]["p99_ms"]
    if p99_a and p99_b is not None:
        rise = round(100 * (p99_b / p99_a - 1), 1)
    stuck_ticks = stuck_phase["feed_ticks"]
    result = {
        "users": count,
        "stuck_sockets": len(stuck_clients),
        "connect_errors": len(errors),
        "rate": rate,
        "feed_per_second": feed_rate,
        "feed_frame_kib": feed_frame_kib,
        "backlog_per_stuck_socket_kib": round(stuck_ticks * feed_frame_kib),
        "phases": {"all reading": reading_phase, "1% stuck": stuck_phase},
        "others_p99_rise_percent": rise,
        "stuck_outcomes": outcomes,
        "server_counters": counters,
        "stuck_missing_notifications": sum(missing(c) for c in stuck_clients),
        "duplicates": tracker.duplicates + feed.duplicates,
        "out_of_order": sum(c.tag.out_of_order for c in reading + stuck_clients),  # type: ignore[attr-defined]
        "rss_samples": sampler.samples,
    }
    close_all(reading + stuck_clients)
    for pool in (targeted_pool, feed_pool, broadcast_pool):
        pool.close()
    return result


async def server_counters(pool: Any) -> dict[str, float]:
    """Notifier's queue-overflow and delivery counters from /metrics, when it serves them."""
    wanted = ("notifier_queue_overflows_total", "notifier_deliveries_total")
    try:
        response = await pool.request("GET", "/metrics", timeout=10)
    except (OSError, TimeoutError, ValueError):
        return {}
    if response.status != 200:
        return {}
    counters = {}
    for line in response.body.decode(errors="replace").splitlines():
        if line.startswith(wanted):
            name, _, value = line.rpartition(" ")
            counters[name] = float(value)
    return counters


# S5 reconnect storm


async def s5_reconnect_storm(server: Server, params: dict[str, Any]) -> dict[str, Any]:
    """1,000 clients drop at once and reconnect with `since` while sends continue."""
    pid = server.spec.server_pid
    users = list(range(int(params["users"])))
    tracker = Targeted()
    states = {u: ClientState(u) for u in users}
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def first_connect(user: int) -> wsclient.WsClient:
        async with gate:
            return await server.connect(user, tracker.on_message, state=states[user])

    clients = await asyncio.gather(*(first_connect(u) for u in users))
    pool = server.pool(256)
    rng = random.Random(5)
    rate = float(params["rate"])
    before, after = float(params["before_seconds"]), float(params["after_seconds"])
    away = float(params["away_seconds"])
    name = "storm"
    tasks: set[asyncio.Task[Any]] = set()

    async def fire(at: float) -> None:
        await tracker.post(server, pool, pick(rng, users), name, at)

    reconnected_at: dict[int, float] = {}
    failures: list[str] = []

    async def reconnect(user: int) -> wsclient.WsClient | None:
        # Real clients retry with backoff; a failed handshake during a storm is not fatal.
        for attempt in range(5):
            try:
                client = await server.connect(
                    user, tracker.on_message, since=states[user].last_id, state=states[user]
                )
            except (OSError, wsclient.HandshakeError, TimeoutError) as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            reconnected_at[user] = time.monotonic()
            return client
        return None

    with Phase("storm", pid) as phase:
        sending = asyncio.create_task(offered_rate(rate, before + away + after, fire, tasks))
        await asyncio.sleep(before)
        dropped_at = time.monotonic()
        for client in clients:
            client.drop()
        await asyncio.sleep(away)
        storm_at = time.monotonic()
        new_clients = await asyncio.gather(*(reconnect(u) for u in users))
        all_reconnected = time.monotonic() - storm_at
        await sending
        await settle(tasks, 15)
    await tracker.drain(lambda: tracker.accepted(name), float(params.get("drain_seconds", 5)))

    accepted = tracker.accepted(name)
    # Stored before the user's new socket was up and not received on the old one: only a
    # replay from the store (`since`) can bring these.
    owed = [
        q
        for q in accepted
        if tracker.sent[q].answered_at < reconnected_at.get(tracker.sent[q].user, float("inf"))
        and not tracker.received.get(q, float("inf")) < dropped_at
    ]
    missed = [q for q in accepted if q not in tracker.received]
    owed_received = [tracker.received[q] - storm_at for q in owed if q in tracker.received]
    caught_up = max(owed_received, default=0.0) if len(owed_received) == len(owed) else None
    summary = tracker.summary(name)
    result = {
        "users": len(users),
        "reconnected": sum(1 for c in new_clients if c is not None),
        "reconnect_failures": len(failures),
        "reconnect_failure_sample": failures[:5],
        "all_reconnected_s": round(all_reconnected, 3),
        "away_s": away,
        "stored_while_away": len(owed),
        "caught_up_s": round(caught_up, 3) if caught_up is not None else None,
        "posts": summary["posts"],
        "accepted": summary["accepted"],
        "post_errors": summary["errors"],
        "missed": len(missed),
        "doubled": tracker.duplicates,
        "out_of_order": sum(s.out_of_order for s in states.values()),
        "id_mismatch": summary["id_mismatch"],
        "latency": {k: summary[k] for k in ("p50_ms", "p99_ms", "max_ms")},
        **phase.report(),
    }
    close_all(c for c in new_clients if c is not None)
    pool.close()
    return result
