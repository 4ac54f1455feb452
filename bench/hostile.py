"""Hostile transport probes against a Notifier server on loopback: ping floods, slow heads.

    python -m bench.hostile --ping-flood [--source DIR] [--connections 20] [--seconds 15]
                            [--linger 35]
    python -m bench.hostile --slow-heads [--source DIR] [--connections 500] [--seconds 15]

Each run starts `python -m notifier serve` from `--source` (a checkout; default this one)
in a temporary directory, attacks it, and prints the server's RSS and its open
connections before and after. Bounded in count and time; loopback only. The attack
primitives are also what tests/test_hostile_transport.py uses.
"""

import argparse
import base64
import contextlib
import json
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
ADMIN = "admin"
ADMIN_PASSWORD = "hostile-probe-password-1"
SECRET = "hostile-probe-secret-key-0123456789abcdef0123456789abcdef"


def ping_frame(payload_size: int = 125) -> bytes:
    """A client (masked) ping frame with the largest payload a control frame may carry."""
    mask = os.urandom(4)
    payload = os.urandom(payload_size)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([0x89, 0x80 | payload_size]) + mask + masked


PING = ping_frame()


def rss_kib(pid: int) -> int:
    """The process's resident set size (VmRSS) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def established(port: int) -> int:
    """Established TCP connections whose local port is `port` (the server's side)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    count += 1
    return count


def raw_socket(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        # Before connect, so the advertised window stays small.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect((HOST, port))
    return sock


def ws_handshake(port: int, query: str = "", rcvbuf: int | None = 4096) -> socket.socket:
    """A raw socket past the WebSocket handshake (101), then non-blocking."""
    sock = raw_socket(port, rcvbuf)
    key = base64.b64encode(os.urandom(16)).decode()
    path = "/ws" + (f"?{query}" if query else "")
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: leave the frames after the head unread
        if not chunk:
            raise ConnectionError("closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"handshake refused: {head[:80]!r}")
    sock.setblocking(False)
    return sock


def flood_pings(socks: list[socket.socket], seconds: float) -> tuple[list[socket.socket], int]:
    """Send pings on every socket for `seconds`, reading nothing; returns the sockets the
    server has not closed and the bytes sent."""
    burst = PING * 512
    open_socks = list(socks)
    sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and open_socks:
        progress = False
        for sock in list(open_socks):
            try:
                sent += sock.send(burst)
                progress = True
            except BlockingIOError:
                pass  # the server stopped reading (or has not caught up): try later
            except OSError:
                open_socks.remove(sock)  # the server closed or aborted it
        if not progress:
            time.sleep(0.005)
    return open_socks, sent


def open_slow_heads(port: int, count: int) -> tuple[list[socket.socket], list[socket.socket]]:
    """`count` connections: half begin a head (to drip), half send nothing at all."""
    dripping, silent = [], []
    for index in range(count):
        sock = raw_socket(port)
        if index % 2 == 0:
            sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\n".encode())
            dripping.append(sock)
        else:
            silent.append(sock)
        sock.setblocking(False)
    return dripping, silent


def drip_until_closed(
    dripping: list[socket.socket], silent: list[socket.socket], seconds: float, every: float
) -> float:
    """Send one more header line every `every` s on the `dripping` heads until the server
    has closed every connection or `seconds` pass; when the last one closed (or `seconds`)."""
    selector = selectors.DefaultSelector()
    for sock in dripping + silent:
        selector.register(sock, selectors.EVENT_READ, sock in dripping)
    started = time.monotonic()
    next_drip = started + every
    while selector.get_map() and time.monotonic() - started < seconds:
        for key, _ in selector.select(timeout=0.1):
            sock = key.fileobj
            try:
                data = sock.recv(65536)  # type: ignore[union-attr]
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                selector.unregister(sock)
        if time.monotonic() >= next_drip:
            next_drip += every
            for key in list(selector.get_map().values()):
                if key.data:
                    with contextlib.suppress(OSError):
                        key.fileobj.send(b"X-Slow: 1\r\n")  # type: ignore[union-attr]
    left = len(selector.get_map())
    selector.close()
    return time.monotonic() - started if not left else seconds


# The command line: a server of its own, the attack, the figures.


@dataclass
class ProbeServer:
    source: Path
    workdir: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            self.port = sock.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
        env.update(
            PYTHONPATH=str(self.source),
            NOTIFIER_DATABASE_URL=f"sqlite+aiosqlite:///{self.workdir / 'notifier.db'}",
            NOTIFIER_SECRET_KEY=SECRET,
            NOTIFIER_ADMIN_USERNAME=ADMIN,
            NOTIFIER_ADMIN_PASSWORD=ADMIN_PASSWORD,
            NOTIFIER_LOG_LEVEL="warning",
            **self.env_overrides,
        )
        log = (self.workdir / "server.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "notifier", "serve", "--port", str(self.port)],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    "the server exited: " + (self.workdir / "server.log").read_text()[-2000:]
                )
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://{HOST}:{self.port}/healthz", timeout=1),
            ):
                return
            time.sleep(0.1)
        raise RuntimeError("the server did not start; see " + str(self.workdir / "server.log"))

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(15)

    def admin_token(self) -> str:
        body = urllib.parse.urlencode({"username": ADMIN, "password": ADMIN_PASSWORD}).encode()
        with urllib.request.urlopen(f"http://{HOST}:{self.port}/token", body, timeout=30) as r:
            return json.load(r)["access_token"]

    def figures(self) -> str:
        assert self.process is not None
        rss = rss_kib(self.process.pid) / 1024
        return f"RSS {rss:.1f} MiB, {established(self.port)} open connections"


@contextlib.contextmanager
def probe_server(source: Path, **env_overrides: str) -> Iterator[ProbeServer]:
    with tempfile.TemporaryDirectory(prefix="hostile-") as workdir:
        server = ProbeServer(source, Path(workdir), env_overrides)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def ping_flood(server: ProbeServer, connections: int, seconds: float, linger: float) -> None:
    token = server.admin_token()
    print(f"before: {server.figures()}")
    socks = [
        ws_handshake(server.port, f"token={token}" if index % 2 else "token=bad")
        for index in range(connections)
    ]
    print(f"{connections} sockets open (half with a bad token): {server.figures()}")
    still_open, sent = flood_pings(socks, seconds)
    refused_open = sum(
        1 for index, sock in enumerate(socks) if sock in still_open and index % 2 == 0
    )
    print(f"after {seconds:.0f} s of pings, reading nothing: {server.figures()}")
    print(
        f"  {sent / 2**20:.0f} MiB of pings sent; sockets the server has not closed: "
        f"{len(still_open)} (refused ones: {refused_open})"
    )
    if linger:
        # The attacker keeps its sockets (and reads nothing): what does the server still hold?
        time.sleep(linger)
        print(f"{linger:.0f} s later, the sockets still held by the client: {server.figures()}")
    for sock in socks:
        sock.close()


def slow_heads(server: ProbeServer, connections: int, seconds: float) -> None:
    print(f"before: {server.figures()}")
    dripping, silent = open_slow_heads(server.port, connections)
    time.sleep(0.5)
    print(f"{connections} slow heads open (half silent): {server.figures()}")
    took = drip_until_closed(dripping, silent, seconds, every=1.0)
    print(f"after {took:.1f} s of one header line a second: {server.figures()}")
    for sock in dripping + silent:
        sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    attack = parser.add_mutually_exclusive_group(required=True)
    attack.add_argument("--ping-flood", action="store_true")
    attack.add_argument("--slow-heads", action="store_true")
    parser.add_argument("--source", type=Path, default=ROOT, help="the checkout to serve")
    parser.add_argument("--connections", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument(
        "--linger", type=float, default=35.0, help="ping flood: seconds to hold the sockets after"
    )
    args = parser.parse_args()
    if not 0 < args.seconds <= 120 or not 0 <= args.linger <= 120:
        parser.error("--seconds, --linger: at most 120")
    print(f"serving {args.source.resolve()}")
    if args.ping_flood:
        # A message rate high enough that the write-side bound, not the rate, is what holds.
        with probe_server(args.source, NOTIFIER_WS_CLIENT_MESSAGE_RATE="1000000") as server:
            ping_flood(server, min(args.connections or 20, 200), args.seconds, args.linger)
    else:
        with probe_server(args.source, NOTIFIER_HEADER_TIMEOUT="2") as server:
            slow_heads(server, min(args.connections or 500, 2000), args.seconds)


if __name__ == "__main__":
    main()
