"""Opaque credentials (refresh tokens, tickets): random values stored only as digests."""

import hashlib
import secrets


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(value: str) -> str:
    """SHA-256 suffices: the values are 256 random bits, not guessable passwords."""
    return hashlib.sha256(value.encode()).hexdigest()
