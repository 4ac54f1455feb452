"""Logs: one line per event, text or JSON (NOTIFIER_LOG_FORMAT), never a credential."""

import asyncio
import json
import logging

import pytest
import websockets
from clients import expect_close, recv_notification

from notifier.logs import JsonFormatter, log_event, uvicorn_log_config

pytestmark = pytest.mark.integration

LOG_TIMEOUT = 10.0


async def wait_for_log(server, needle: str) -> str:
    """The server writes some lines after the client is done (a socket's close): wait."""
    async with asyncio.timeout(LOG_TIMEOUT):
        while True:
            log = server.log()
            if needle in log:
                return log
            await asyncio.sleep(0.05)


def json_lines(log: str) -> list[dict]:
    """Every line from uvicorn's start on; each must be one JSON object."""
    lines = log.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("{"))
    return [json.loads(line) for line in lines[first:] if line.strip()]


async def socket_traffic(api) -> tuple[str, str, str]:
    """A user's socket that receives one notification and closes, then a refused socket."""
    username, token = await api.user_with_token()
    async with websockets.connect(f"{api.server.ws_url}?token={token}&since=0") as ws:
        await api.send(username, "logged")
        await recv_notification(ws)
    bad = "not.a-valid.token"
    async with websockets.connect(f"{api.server.ws_url}?token={bad}") as ws:
        assert await expect_close(ws) == (1008, "invalid token")
    return username, token, bad


async def test_json_logs(server_factory, api_for):
    proc = server_factory(NOTIFIER_LOG_FORMAT="json")
    async with api_for(proc) as api:
        username, token, bad = await socket_traffic(api)
    log = await wait_for_log(proc, '"event":"socket.rejected"')
    await wait_for_log(proc, '"event":"socket.closed"')
    assert token not in log and bad not in log

    entries = json_lines(proc.log())
    assert all({"time", "level", "logger"} <= set(e) for e in entries)
    events = [e for e in entries if e.get("logger") == "notifier.events"]
    opened = next(e for e in events if e["event"] == "socket.opened")
    assert (opened["user"], opened["since"]) == (username, 0)
    closed = next(e for e in events if e["event"] == "socket.closed")
    assert (closed["user"], closed["code"], closed["by"]) == (username, 1000, "client")
    assert closed["duration_s"] >= 0
    rejected = next(e for e in events if e["event"] == "socket.rejected")
    assert rejected["reason"] == "invalid token"
    sent = next(e for e in events if e["event"] == "notification.sent")
    assert (sent["user"], sent["recipients"], sent["broadcast"]) == (username, 1, False)
    assert isinstance(sent["id"], int) and isinstance(sent["sender_id"], int)
    assert sent["idempotent_replay"] is False

    requests = [e for e in entries if e.get("event") == "http.request"]
    login = next(r for r in requests if r["path"] == "/token")
    assert (login["method"], login["status"]) == ("POST", 200)
    accepted = [e["message"] for e in entries if "WebSocket /ws" in e.get("message", "")]
    assert accepted and all("token=[redacted]" in m for m in accepted), accepted


async def test_text_logs_have_one_line_per_event(api):
    username, token, bad = await socket_traffic(api)
    log = await wait_for_log(api.server, f"socket.closed user={username} code=1000")
    assert f"socket.opened user={username} since=0" in log
    assert f"recipients=1 broadcast=false user={username} id=" in log
    assert 'socket.rejected reason="invalid token"' in log
    assert token not in log and bad not in log


def test_event_fields_are_quoted_only_when_needed(caplog):
    with caplog.at_level(logging.INFO, logger="notifier.events"):
        log_event("socket.closed", user="alice", code=1000, reason="token expired", since=None)
    [record] = caplog.records
    assert (
        record.getMessage() == 'socket.closed user=alice code=1000 reason="token expired" since=-'
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["event"] == "socket.closed"
    assert (entry["user"], entry["code"], entry["reason"], entry["since"]) == (
        "alice",
        1000,
        "token expired",
        None,
    )


def test_json_access_lines_are_redacted():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("10.0.0.1:5000", "GET", "/ws?since=4&token=secret.jwt.value", "1.1", 101),
        None,
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["path"] == "/ws?since=4&token=[redacted]"
    assert (entry["event"], entry["status"], entry["client"]) == (
        "http.request",
        101,
        "10.0.0.1:5000",
    )


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_log_config_redacts_on_every_handler(log_format):
    config = uvicorn_log_config(log_format, "debug")
    assert all(h["filters"] == ["redact"] for h in config["handlers"].values())
    assert config["loggers"]["notifier"]["level"] == "DEBUG"
    if log_format == "json":
        assert {h["formatter"] for h in config["handlers"].values()} == {"json"}


def test_log_format_must_be_text_or_json():
    from conftest import TEST_SECRET
    from pydantic import ValidationError

    from notifier.settings import Settings

    with pytest.raises(ValidationError, match="log_format"):
        Settings(secret_key=TEST_SECRET, log_format="xml", _env_file=None)  # type: ignore[call-arg]
