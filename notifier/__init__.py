"""Notifier: authenticated live notifications over WebSocket with a stored inbox."""

__version__ = "0.1.0"
