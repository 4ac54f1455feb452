"""A real browser (Debian's headless Chromium) against the real server.

The point is what a browser can observe: a rejected socket must reach the page as a
close event with code 1008 and a reason, not as an HTTP 403 on the handshake (which a
browser reports only as a network error, close code 1006, with no reason).

The test serves the page from its own small HTTP server; the page reports what it sees
by fetching `/report?...` on that same server, and the test waits for those requests.
Chromium is run headless and killed (its whole process group) when the test is done.
Install the browser with `scripts/install-browser.sh`.
"""

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from conftest import make_token, unique_name

CHROMIUM = "/usr/bin/chromium"
REPORT_TIMEOUT = 10.0


@pytest.fixture(scope="session", autouse=True)
def _require_chromium() -> None:
    # Session scope, so it runs before (and saves starting) the session-wide server.
    if os.path.exists(CHROMIUM):
        return
    reason = f"{CHROMIUM} is missing; run scripts/install-browser.sh"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


# The page opens the socket given in its own query string and reports every event.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>notifier browser test</title></head>
<body><pre id="log"></pre>
<script>
const log = document.getElementById("log");
function report(event, fields) {
  const params = new URLSearchParams(Object.assign({event: event}, fields));
  log.textContent += event + " " + JSON.stringify(fields) + "\\n";
  fetch("/report?" + params.toString(), {cache: "no-store"});
}
try {
  const target = new URLSearchParams(location.search).get("ws");
  const ws = new WebSocket(target);
  ws.onopen = () => report("open", {});
  ws.onerror = () => report("error", {});
  ws.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    report("message", {type: frame.type, title: frame.notification.title});
  };
  ws.onclose = (event) => report("close", {
    code: String(event.code), reason: event.reason, clean: String(event.wasClean),
  });
} catch (error) {
  report("exception", {message: String(error)});
}
</script></body></html>
"""


class PageServer:
    """Serves PAGE at `/` and turns each `/report?...` into an item on an asyncio queue."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.reports: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        reports, body = self.reports, PAGE.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/":
                    self._reply(200, "text/html; charset=utf-8", body)
                elif url.path == "/report":
                    query = parse_qs(url.query, keep_blank_values=True)
                    fields = {key: values[-1] for key, values in query.items()}
                    loop.call_soon_threadsafe(reports.put_nowait, fields)
                    self._reply(204, "text/plain", b"")
                else:
                    self._reply(404, "text/plain", b"not found")

            def _reply(self, status: int, content_type: str, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self) -> "PageServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@dataclass
class Browser:
    pages: PageServer
    process: subprocess.Popen[bytes]
    log_path: str

    async def next_report(self) -> dict[str, str]:
        try:
            return await asyncio.wait_for(self.pages.reports.get(), REPORT_TIMEOUT)
        except TimeoutError:
            pytest.fail(f"no report from the page within {REPORT_TIMEOUT}s\n{self.diagnostics()}")

    async def report_of(self, event: str, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
        """The next report, which must be `event` (reports named in `skip` are passed over)."""
        while True:
            report = await self.next_report()
            if report.get("event") in skip:
                continue
            assert report.get("event") == event, f"{report}\n{self.diagnostics()}"
            return report

    def diagnostics(self) -> str:
        state = "running" if self.process.poll() is None else f"exited {self.process.returncode}"
        try:
            with open(self.log_path, errors="replace") as log:
                output = log.read()[-4000:]
        except OSError:
            output = ""
        return f"chromium {state}; its output:\n{output}"


@contextlib.contextmanager
def chromium(url: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    profile = tempfile.mkdtemp(prefix="notifier-chromium-")
    log_path = os.path.join(profile, "chromium.log")
    log = open(log_path, "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            url,  # without --dump-dom, headless chromium stays up until it is killed
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so its children die with it
    )
    try:
        yield process, log_path
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        log.close()
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.asynccontextmanager
async def open_page(ws_url: str) -> AsyncIterator[Browser]:
    with (
        PageServer(asyncio.get_running_loop()) as pages,
        chromium(f"{pages.url}?{urlencode({'ws': ws_url})}") as (process, log_path),
    ):
        yield Browser(pages, process, log_path)


async def test_browser_sees_rejection_as_close_1008_with_reason(server):
    bad_token = make_token(unique_name(), key="not-the-server-secret-key-at-all-000000")
    async with open_page(f"{server.ws_url}?token={bad_token}") as browser:
        # The server accepts, then closes, so "open" comes first. A 403 on the handshake
        # would show up as "error" and then a close with 1006 and no reason.
        closed = await browser.report_of("close", skip=("open",))
    assert closed["code"] == "1008", closed
    assert closed["reason"] == "invalid token", closed
    assert closed["clean"] == "true", closed


async def test_browser_receives_notification(api):
    username, token = await api.user_with_token()
    async with open_page(f"{api.server.ws_url}?token={token}") as browser:
        await browser.report_of("open")
        sent = await api.send(username, "hello from the test")
        received = await browser.report_of("message")
    assert received == {"event": "message", "type": "notification", "title": sent["title"]}
