"""The limits uvicorn's protocol classes enforce per connection, handed to them by the app.

uvicorn builds its protocol objects itself (from an import string, in every worker), so
they cannot be given the `Settings`. The app's lifespan publishes these limits in the
lifespan state, which uvicorn passes to every protocol it creates.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from notifier.settings import Settings

TRANSPORT_LIMITS = "notifier.transport_limits"
"""The lifespan-state key of the `TransportLimits`."""

WRITE_HIGH_WATER = 64 * 1024
"""Unsent bytes above which a connection stops reading (asyncio's and uvloop's default,
made explicit); a WebSocket resumes reading once its buffer drains to a quarter of it."""


def _default(name: str) -> object:
    return Settings.model_fields[name].default


@dataclass(frozen=True, slots=True)
class TransportLimits:
    max_header_size: int = _default("max_header_size")  # type: ignore[assignment]
    header_timeout: float = _default("header_timeout")  # type: ignore[assignment]
    ws_message_rate: float = _default("ws_client_message_rate")  # type: ignore[assignment]
    ws_message_burst: int = _default("ws_client_message_burst")  # type: ignore[assignment]
    ws_close_timeout: float = _default("ws_close_timeout")  # type: ignore[assignment]
    ws_stuck_timeout: float = _default("ws_stuck_timeout")  # type: ignore[assignment]

    @classmethod
    def from_settings(cls, settings: Settings) -> "TransportLimits":
        return cls(
            max_header_size=settings.max_header_size,
            header_timeout=settings.header_timeout,
            ws_message_rate=settings.ws_client_message_rate,
            ws_message_burst=settings.ws_client_message_burst,
            ws_close_timeout=settings.ws_close_timeout,
            ws_stuck_timeout=settings.ws_stuck_timeout,
        )

    @classmethod
    def of(cls, app_state: Mapping[str, object]) -> "TransportLimits":
        """The app's limits, or the settings' defaults under an app that publishes none."""
        limits = app_state.get(TRANSPORT_LIMITS)
        return limits if isinstance(limits, cls) else cls()
