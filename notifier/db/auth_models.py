"""Tables behind the token lifecycle: sessions (token families), refresh tokens, login
throttling and WebSocket tickets.

Instants these tables compare in queries are Unix seconds (integers), which compare the
same way on SQLite and PostgreSQL whatever the connection's time zone.
"""

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from notifier.db.models import Base, BigId


class AuthSession(Base):
    """One login: every access and refresh token issued from it carries its id (`sid`).

    Rows are also written for revoked tokens that predate sessions (id `jti:<hash>`), so
    that one query answers "is this token revoked?" for every token.
    """

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    """When the last token of this session stops working; the row can go after that."""
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    revoked_reason: Mapped[str | None] = mapped_column(String(32))


class RefreshToken(Base):
    """A refresh token, by the SHA-256 of its value. Used ones stay until they expire, so a
    second use is recognised as theft."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)


class LoginThrottle(Base):
    """Login attempts counted per key (`user:<name>` or `addr:<address>`) in a window."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    """Attempts counted in the window (a successful login is uncounted)."""
    window_started_at: Mapped[int] = mapped_column(BigInteger, index=True)
    locked_until: Mapped[int] = mapped_column(BigInteger, default=0)
    lockouts: Mapped[int] = mapped_column(Integer, default=0)
    """Locks taken in the window; each one lasts twice as long as the one before."""


class WsTicket(Base):
    """A single-use WebSocket ticket, by the SHA-256 of its value."""

    __tablename__ = "ws_tickets"

    ticket_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    session_id: Mapped[str | None] = mapped_column(String(64))
    origin: Mapped[str | None] = mapped_column(String(255))
    token_expires_at: Mapped[int] = mapped_column(BigInteger)
    """The `exp` of the access token the ticket was bought with: the socket's deadline."""
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
