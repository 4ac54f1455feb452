"""The load generator process: runs one scenario against one server and writes its result.

    python -m bench.loadgen SPEC.json RESULT.json

The orchestrator (`bench.run`) starts it pinned to another core than the server. It
measures its own CPU per phase so the table can say when the generator, not the server,
was the limit.
"""

import asyncio
import contextlib
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench import wsclient
from bench.httpclient import HttpPool, Response

SATURATED = 0.90
"""A phase in which the generator used more than this share of its core is flagged."""

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Spec:
    target: str  # "notifier" | "baseline"
    host: str
    port: int
    server_pid: int
    secret_key: str
    admin: str
    user_prefix: str
    users: int
    scenario: str
    params: dict[str, Any]

    def user(self, index: int) -> str:
        return f"{self.user_prefix}{index:05d}"


# Measuring


def server_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def server_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def latency_summary(seconds: list[float]) -> dict[str, float | int | None]:
    as_ms = [s * 1000 for s in seconds]
    return {
        "count": len(as_ms),
        "p50_ms": percentile(as_ms, 0.50),
        "p99_ms": percentile(as_ms, 0.99),
        "max_ms": max(as_ms) if as_ms else None,
    }


@dataclass
class Phase:
    """Wall time, this process's CPU and the server's CPU over one measured stretch."""

    name: str
    server_pid: int
    wall: float = 0.0
    cpu: float = 0.0
    server_cpu: float = 0.0
    _start: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __enter__(self) -> "Phase":
        self._start = (time.monotonic(), time.process_time(), server_cpu_seconds(self.server_pid))
        return self

    def __exit__(self, *_exc: object) -> None:
        wall0, cpu0, server0 = self._start
        self.wall = time.monotonic() - wall0
        self.cpu = time.process_time() - cpu0
        self.server_cpu = server_cpu_seconds(self.server_pid) - server0

    def report(self) -> dict[str, Any]:
        share = self.cpu / self.wall if self.wall else 0.0
        return {
            "phase": self.name,
            "wall_s": round(self.wall, 3),
            "loadgen_cpu": round(share, 3),
            "loadgen_saturated": share > SATURATED,
            "server_cpu_s": round(self.server_cpu, 3),
        }


class RssSampler:
    """Samples the server's RSS every `interval` seconds while running."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self._pid = pid
        self._interval = interval
        self.samples: list[tuple[float, int]] = []
        self._task: asyncio.Task[None] | None = None
        self._t0 = 0.0

    async def _run(self) -> None:
        while True:
            self.samples.append((round(time.monotonic() - self._t0, 2), server_rss_kib(self._pid)))
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# Talking to the server


@dataclass
class ClientState:
    """What the generator remembers about one socket (its `tag`)."""

    user: int
    last_id: int = 0
    last_broadcast: int = -1
    out_of_order: int = 0
    """Notification ids at or below one this socket already had: ids must only grow."""
    broadcasts: int = 0
    broadcasts_seen: set[int] = field(default_factory=set)


def decode(payload: bytes) -> tuple[dict[str, Any], int | None] | None:
    """The `data` and id of a notification frame; None for any other frame."""
    message = orjson.loads(payload)
    if message.get("type") != "notification":
        return None
    notification = message["notification"]
    return notification.get("data") or {}, notification.get("id")


class Server:
    """The HTTP and WebSocket routes of the server under test, Notifier's or the baseline's."""

    def __init__(self, spec: Spec) -> None:
        from notifier.auth.keys import KeySet
        from notifier.auth.tokens import TokenCodec

        self.spec = spec
        self.notifier = spec.target == "notifier"
        # Tokens are minted with the server's own secret and claims, as POST /token would.
        self._codec = TokenCodec(KeySet.shared_secret(spec.secret_key), 6 * 3600)
        self._tokens: dict[int, str] = {}
        admin = self._codec.issue(spec.admin, True, "bench-admin").token
        self.headers = {"Authorization": f"Bearer {admin}"}

    def token(self, user: int) -> str:
        token = self._tokens.get(user)
        if token is None:
            token = self._tokens[user] = self._codec.issue(
                self.spec.user(user), False, f"bench-{user}"
            ).token
        return token

    def ws_path(self, user: int, since: int | None = None) -> str:
        path = f"/ws?token={self.token(user)}"
        if since is not None and self.notifier:
            path += f"&since={since}"
        return path

    def send_path(self, user: int) -> str:
        name = self.spec.user(user)
        return f"/users/{name}/notifications" if self.notifier else f"/send/{name}"

    @property
    def broadcast_path(self) -> str:
        return "/notifications/broadcast" if self.notifier else "/broadcast"

    def pool(self, size: int) -> HttpPool:
        return HttpPool(self.spec.host, self.spec.port, size, self.headers)

    async def connect(
        self,
        user: int,
        on_message: wsclient.OnMessage,
        *,
        since: int | None = None,
        offer_deflate: bool = False,
        receive_buffer: int | None = None,
        state: ClientState | None = None,
    ) -> wsclient.WsClient:
        return await wsclient.connect(
            self.spec.host,
            self.spec.port,
            self.ws_path(user, since),
            on_message,
            tag=state or ClientState(user),
            offer_deflate=offer_deflate,
            receive_buffer=receive_buffer,
        )

    async def connect_many(
        self,
        users: Iterable[int],
        on_message: wsclient.OnMessage,
        concurrency: int,
        **options: Any,
    ) -> tuple[list[wsclient.WsClient], list[str]]:
        """Open one socket per user, at most `concurrency` handshakes in flight."""
        gate = asyncio.Semaphore(concurrency)
        errors: list[str] = []

        async def one(user: int) -> wsclient.WsClient | None:
            async with gate:
                try:
                    return await self.connect(user, on_message, **options)
                except (OSError, wsclient.HandshakeError, TimeoutError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    return None

        opened = await asyncio.gather(*(one(u) for u in users))
        return [c for c in opened if c is not None], errors


def content(title: str, data: dict[str, Any], body: str = "") -> bytes:
    return orjson.dumps({"title": title, "body": body, "data": data})


# Targeted traffic bookkeeping (S2, S4, S5)


@dataclass
class Sent:
    user: int
    at: float
    phase: str
    status: int = 0  # 0 while in flight; -1 on a transport error or timeout
    answered_at: float = 0.0
    notification_id: int | None = None


@dataclass
class Targeted:
    """Every targeted POST by sequence number, and what the sockets received."""

    sent: dict[int, Sent] = field(default_factory=dict)
    received: dict[int, float] = field(default_factory=dict)
    received_id: dict[int, int | None] = field(default_factory=dict)
    duplicates: int = 0
    wrong_user: int = 0
    next_seq: int = 0

    def on_message(self, client: wsclient.WsClient, payload: bytes) -> None:
        now = time.monotonic()
        decoded = decode(payload)
        if decoded is None:
            return
        data, notification_id = decoded
        state: ClientState = client.tag  # type: ignore[assignment]
        if notification_id is not None:
            if notification_id <= state.last_id:
                state.out_of_order += 1
            state.last_id = notification_id
        seq = data.get("seq")
        if seq is None:
            b = data.get("b")
            if b is not None:
                # Concurrent broadcasts may commit in another order than they were fired:
                # only a repeat is wrong here.
                if b in state.broadcasts_seen:
                    self.duplicates += 1
                    return
                state.broadcasts_seen.add(b)
                state.broadcasts += 1
            return
        sent = self.sent.get(seq)
        if sent is not None and sent.user != state.user:
            self.wrong_user += 1
        if seq in self.received:
            self.duplicates += 1
            return
        self.received[seq] = now
        self.received_id[seq] = notification_id

    def accepted(self, phase: str, users: set[int] | None = None) -> list[int]:
        return [
            seq
            for seq, sent in self.sent.items()
            if sent.phase == phase
            and 200 <= sent.status < 300
            and (users is None or sent.user in users)
        ]

    def summary(self, phase: str, users: set[int] | None = None) -> dict[str, Any]:
        """Latency from the POST's (scheduled) send time to the frame, loss and errors."""
        in_phase = [
            s for s in self.sent.values() if s.phase == phase and (users is None or s.user in users)
        ]
        accepted = self.accepted(phase, users)
        latencies = [self.received[q] - self.sent[q].at for q in accepted if q in self.received]
        lost = [q for q in accepted if q not in self.received]
        mismatched = sum(
            1
            for q in accepted
            if self.sent[q].notification_id is not None
            and q in self.received
            and self.received_id[q] != self.sent[q].notification_id
        )
        statuses: dict[str, int] = {}
        for s in in_phase:
            if not 200 <= s.status < 300:
                key = "timeout/error" if s.status <= 0 else str(s.status)
                statuses[key] = statuses.get(key, 0) + 1
        return {
            "posts": len(in_phase),
            "accepted": len(accepted),
            "errors": statuses,
            "lost": len(lost),
            "id_mismatch": mismatched,
            **latency_summary(latencies),
        }

    async def post(
        self,
        server: Server,
        pool: HttpPool,
        user: int,
        phase: str,
        at: float,
        body: str = "",
        timeout: float = 10.0,
    ) -> None:
        seq = self.next_seq
        self.next_seq += 1
        sent = self.sent[seq] = Sent(user, at, phase)
        payload = content("bench notification", {"seq": seq, "t": at}, body)
        try:
            response: Response = await pool.request(
                "POST", server.send_path(user), payload, timeout
            )
        except (OSError, TimeoutError, ValueError):
            sent.status = -1
            return
        sent.status = response.status
        sent.answered_at = time.monotonic()
        if server.notifier and 200 <= response.status < 300:
            sent.notification_id = orjson.loads(response.body).get("id")

    async def drain(self, seqs: Callable[[], list[int]], timeout: float) -> None:
        """Wait until every accepted POST in `seqs()` has reached its socket, or `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(q in self.received for q in seqs()):
                return
            await asyncio.sleep(0.05)


async def offered_rate(
    rate: float,
    duration: float,
    fire: Callable[[float], Any],
    tasks: set[asyncio.Task[Any]],
) -> int:
    """Call `fire(scheduled_time)` `rate` times a second for `duration` (open loop).

    Latency is measured from the scheduled time, so a server that falls behind is not
    excused by the generator waiting for it (no coordinated omission).
    """
    start = time.monotonic()
    count = int(rate * duration)
    for i in range(count):
        at = start + i / rate
        delay = at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(fire(at))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    return count


async def settle(tasks: set[asyncio.Task[Any]], timeout: float) -> None:
    if tasks:
        await asyncio.wait(set(tasks), timeout=timeout)


def close_all(clients: Iterable[wsclient.WsClient]) -> None:
    for client in clients:
        client.drop()


def pick(rng: random.Random, users: list[int]) -> int:
    return users[rng.randrange(len(users))]


async def run(spec: Spec) -> dict[str, Any]:
    from bench import scenarios

    scenario = getattr(scenarios, spec.scenario)
    server = Server(spec)
    cpu0, wall0 = time.process_time(), time.monotonic()
    result = await scenario(server, spec.params)
    result["loadgen_cpu_total"] = round(
        (time.process_time() - cpu0) / max(time.monotonic() - wall0, 1e-9), 3
    )
    return result


def main() -> None:
    spec_path, result_path = sys.argv[1], sys.argv[2]
    with open(spec_path, "rb") as spec_file:
        spec = Spec(**orjson.loads(spec_file.read()))
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        runner = asyncio.run
    result = runner(run(spec))
    with open(result_path, "wb") as result_file:
        result_file.write(orjson.dumps(result, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
