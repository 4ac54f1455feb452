"""Logging: one line per event, as text or JSON, and credentials never reach the logs.

Events (`log_event`) go to the `notifier.events` logger with their fields kept apart from
the message, so the JSON format can emit them as keys:

    text: INFO:     socket.closed user=alice code=1000 reason="" by=client duration_s=12.5
    json: {"time": "...", "level": "info", "logger": "notifier.events", "event": "socket.closed",
           "user": "alice", "code": 1000, "reason": "", "by": "client", "duration_s": 12.5}

uvicorn's access lines become `http.request` events in JSON (client, method, path, status).
"""

import copy
import logging
import re
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

import orjson
from uvicorn.config import LOGGING_CONFIG

LogFormat = Literal["text", "json"]

events = logging.getLogger("notifier.events")

# uvicorn logs each request's path with its query string, and `/ws?token=` carries a
# live access token (`?ticket=` a short-lived, single-use one). The server decodes
# parameter names (`%74oken` is `token`), so the redaction does too.
_QUERY = re.compile(r"\?([^\s?]+)")
# Quoting around a logged path ("GET /ws?token=... HTTP/1.1") is not part of the query.
_QUOTES = "\"')"
_CREDENTIAL_NAME = re.compile(r"token|ticket|passw|secret|api_?key|auth|session", re.IGNORECASE)
_BARE_WORD = re.compile(r"^[\w.:/@+-]+$")
REDACTED = "[redacted]"


def _redact_query(match: re.Match[str]) -> str:
    text = match.group(1)
    query = text.rstrip(_QUOTES)
    if "=" not in query:
        return match.group(0)
    # The parser Starlette reads the query with, so a name is judged as the server reads it.
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(_CREDENTIAL_NAME.search(name) for name, _value in pairs):
        return match.group(0)
    kept = [(name, REDACTED if _CREDENTIAL_NAME.search(name) else value) for name, value in pairs]
    return "?" + urlencode(kept, safe="[]") + text[len(query) :]


def redact(text: str) -> str:
    """`text` with the value of every credential query parameter replaced by [redacted]."""
    return _QUERY.sub(_redact_query, text) if "?" in text else text


class RedactCredentials(logging.Filter):
    """Rewrites credentials in a record's message, arguments, fields and traceback."""

    _exceptions = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        fields = getattr(record, "event_fields", None)
        if isinstance(fields, dict):
            record.event_fields = {
                key: redact(value) if isinstance(value, str) else value
                for key, value in fields.items()
            }
        if record.exc_info and not record.exc_text:
            # Formatters reuse `exc_text` when set, so both formats print the redacted one.
            record.exc_text = self._exceptions.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _text_value(value: object) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if _BARE_WORD.match(text) else orjson.dumps(text).decode()


def log_event(event: str, level: int = logging.INFO, **fields: object) -> None:
    """Log one event with its fields (never pass a credential as a field)."""
    if not events.isEnabledFor(level):
        return
    text = " ".join([event, *(f"{key}={_text_value(value)}" for key, value in fields.items())])
    events.log(level, "%s", text, extra={"event": event, "event_fields": fields})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, then the event's fields or message."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        event = getattr(record, "event", None)
        if event is not None:
            entry["event"] = event
            entry.update(getattr(record, "event_fields", {}))
        elif record.name == "uvicorn.access" and isinstance(record.args, tuple):
            entry.update(_access_fields(record.args))
        else:
            entry["message"] = redact(record.getMessage())
        if record.exc_text:
            entry["exception"] = redact(record.exc_text)
        elif record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def _access_fields(args: tuple[object, ...]) -> dict[str, object]:
    # uvicorn's access record: (client address, method, path with query, HTTP version, status).
    client, method, path, http_version, status = (*args, None, None, None, None, None)[:5]
    return {
        "event": "http.request",
        "client": client,
        "method": method,
        "path": redact(str(path)),
        "http_version": http_version,
        "status": status,
    }


def uvicorn_log_config(log_format: LogFormat = "text", log_level: str = "info") -> dict[str, Any]:
    """uvicorn's logging config, plus Notifier's own loggers, with credentials redacted.

    Given to uvicorn as `log_config`, so every worker process applies it too. The filter
    sits on the handlers, so it also covers records that propagate to them.
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": RedactCredentials}}
    if log_format == "json":
        config["formatters"] = {"json": {"()": JsonFormatter}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
        if log_format == "json":
            handler["formatter"] = "json"
    for name in ("uvicorn.access", "uvicorn.error"):
        config["loggers"][name]["filters"] = ["redact"]
    config["loggers"]["notifier"] = {
        "handlers": ["default"],
        "level": log_level.upper(),
        "propagate": False,
    }
    return config
