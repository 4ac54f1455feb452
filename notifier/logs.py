"""Logging: credentials never reach the logs."""

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

# uvicorn logs each request's path with its query string, and `/ws?token=` carries a
# live access token (`?ticket=` a short-lived, single-use one).
_CREDENTIAL_IN_QUERY = re.compile(r"([?&](?:token|access_token|ticket)=)[^&\s\"']+")


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


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's logging config with credentials redacted.

    Given to uvicorn as `log_config`, so every worker process applies it too.
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": RedactCredentials}}
    for name in ("uvicorn.access", "uvicorn.error"):
        config["loggers"][name]["filters"] = ["redact"]
    return config
