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

import orjson
from uvicorn.config import LOGGING_CONFIG

LogFormat = Literal["text", "json"]

events = logging.getLogger("notifier.events")

# uvicorn logs each request's path with its query string, and `/ws?token=` carries a
# live access token (`?ticket=` a short-lived, single-use one).
_CREDENTIAL_IN_QUERY = re.compile(r"([?&](?:token|access_token|ticket)=)[^&\s\"']+")
_BARE_WORD = re.compile(r"^[\w.:/@+-]+$")


def redact(text: str) -> str:
    return _CREDENTIAL_IN_QUERY.sub(r"\1[redacted]", text)


class RedactCredentials(logging.Filter):
    """Rewrites token query parameters in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
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
        if record.exc_info:
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
