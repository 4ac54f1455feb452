"""The close codes and reasons a client sees, in one place so docs and code agree.

Part of the wire protocol: `api`, `auth` and `delivery` all speak it, so it sits at the
top of the package beside them and imports nothing of Notifier's.

- 1008 (policy violation): the credentials are not acceptable. The reason says which:
  "no token", "invalid token", "token expired", "unknown user", "origin not allowed",
  "invalid since". Log in again (or renew the token) before reconnecting.
- 1011 (internal error): the server failed this socket; reconnect with `since`.
- 1012 (service restart): the server is shutting down; reconnect with `since` after the
  delay the reason names ("server restarting; retry_after_ms=2375"). Each socket gets its
  own random delay, so a rolling restart does not bring every client back at once.
- 1013 (try again later): the client read nothing for NOTIFIER_WS_STUCK_TIMEOUT seconds
  while frames waited for it (a socket that merely falls behind catches up from the store
  instead); reconnect with `since`.
"""

import random
from typing import NamedTuple


class Close(NamedTuple):
    code: int
    reason: str


POLICY_VIOLATION = 1008

# Credentials refused (the reasons `TokenError` carries, on connect and on renewal).
INVALID_TOKEN = Close(POLICY_VIOLATION, "invalid token")
UNKNOWN_USER = Close(POLICY_VIOLATION, "unknown user")
INVALID_TICKET = Close(POLICY_VIOLATION, "invalid ticket")
TOKEN_EXPIRED = Close(POLICY_VIOLATION, "token expired")
ORIGIN_NOT_ALLOWED = Close(POLICY_VIOLATION, "origin not allowed")
NO_TOKEN = Close(POLICY_VIOLATION, "no token")
INVALID_SINCE = Close(POLICY_VIOLATION, "invalid since")
TOKEN_REVOKED = Close(POLICY_VIOLATION, "token revoked")
USER_DISABLED = Close(POLICY_VIOLATION, "user disabled")
WRONG_USER = Close(POLICY_VIOLATION, "wrong user")
QUERY_TOKEN_NOT_ALLOWED = Close(POLICY_VIOLATION, "query token not allowed")
TOO_MANY_SOCKETS = Close(POLICY_VIOLATION, "too many sockets")
TOO_MANY_MESSAGES = Close(POLICY_VIOLATION, "too many messages")
INVALID_MESSAGE = Close(POLICY_VIOLATION, "invalid message")
BINARY_NOT_SUPPORTED = Close(1003, "binary frames not supported")
INTERNAL_ERROR = Close(1011, "internal error")
QUEUE_OVERFLOW = Close(1013, "slow consumer")


def rejected(reason: str) -> Close:
    """1008 with a `TokenError` reason (each has its constant above)."""
    return Close(POLICY_VIOLATION, reason)


def listed() -> list[Close]:
    """Every fixed close above, in order (the 1012 of `shutdown` has a variable reason)."""
    return [value for value in globals().values() if isinstance(value, Close)]


def shutdown(spread_ms: int, rng: random.Random | None = None) -> Close:
    """1012 with a jittered reconnect hint, between 10 % of `spread_ms` and all of it."""
    delay = (rng or random).randint(spread_ms // 10, spread_ms)
    return Close(1012, f"server restarting; retry_after_ms={delay}")
