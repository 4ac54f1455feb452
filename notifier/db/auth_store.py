"""Queries behind the token lifecycle: credentials checks, sessions, refresh-token rotation,
login throttling and WebSocket tickets.

Every query runs as a unit of the store's `UnitRunner` (`db.units`), so auth writes take
the same writer path as sends: on SQLite this process's one writer thread, on PostgreSQL
a transaction per unit. Every write that another worker may race is decided by one write
statement (an upsert, a conditional UPDATE, a DELETE ... RETURNING), so the database
serialises it: SQLite's write transactions take the write lock up front (BEGIN IMMEDIATE)
and PostgreSQL locks the row, with no read-then-write window.
"""

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    case,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from notifier.db.auth_models import AuthSession, LoginThrottle, RefreshToken, WsTicket
from notifier.db.dialect import dialect_of
from notifier.db.models import User
from notifier.db.records import StoredUser
from notifier.db.units import UnitRunner


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user as a credential check sees them, with the state of one session."""

    user: StoredUser
    disabled: bool
    tokens_valid_after: int
    session_revoked: bool


@dataclass(frozen=True, slots=True)
class AccountFlags:
    username: str
    is_admin: bool
    disabled: bool
    created_at: datetime


class Rotation(enum.Enum):
    ROTATED = "rotated"
    REISSUED = "reissued"
    """Spent, but within the reuse grace: another successor was issued, nothing revoked."""
    UNKNOWN = "unknown"
    REUSED = "reused"
    REVOKED = "revoked"
    EXPIRED = "expired"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class RotationResult:
    outcome: Rotation
    user: StoredUser | None = None
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class Ticket:
    user: StoredUser
    disabled: bool
    session_id: str | None
    origin: str | None
    token_expires_at: int
    session_revoked: bool


def _stored_user(row: User) -> StoredUser:
    return StoredUser(row.id, row.username, row.password_hash, row.is_admin, row.created_at)


_CREDENTIAL_COLUMNS = (
    User.id,
    User.username,
    User.password_hash,
    User.is_admin,
    User.created_at,
    User.disabled,
    User.tokens_valid_after,
)


_CREDENTIALS = (
    select(*_CREDENTIAL_COLUMNS, AuthSession.revoked_at)
    # A NULL session id matches no row: tokens without a session are never session-revoked.
    .outerjoin(
        AuthSession,
        and_(AuthSession.id == bindparam("session_id"), AuthSession.user_id == User.id),
    )
    .where(User.username == bindparam("username"))
)
"""Built once: it runs for every authenticated request and socket."""


def _session_revoked(session_id: str | None) -> ColumnElement[bool]:
    return and_(AuthSession.id == session_id, AuthSession.user_id == User.id)


class AuthStore:
    def __init__(self, units: UnitRunner) -> None:
        self._units = units

    # Credentials

    async def credentials(self, username: str, session_id: str | None) -> Credentials | None:
        """The user and whether `session_id` is revoked, in one indexed query."""

        def check(connection: Connection) -> Credentials | None:
            params = {"username": username, "session_id": session_id}
            row = connection.execute(_CREDENTIALS, params).first()
            if row is None:
                return None
            user_id, name, password_hash, is_admin, created_at, disabled, valid_after, revoked = row
            user = StoredUser(user_id, name, password_hash, is_admin, created_at)
            return Credentials(user, disabled, valid_after, revoked is not None)

        # Every authenticated request and socket runs this: one unit, not a hop per statement.
        return await self._units.read(check)

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        def store(session: Session) -> None:
            session.execute(
                update(User).where(User.id == user_id).values(password_hash=password_hash)
            )

        await self._units.write(store)

    async def change_password(self, user_id: int, password_hash: str, now: int) -> None:
        """Store a new password hash and revoke every session of the user, atomically."""

        def change(session: Session) -> None:
            session.execute(
                update(User)
                .where(User.id == user_id)
                .values(password_hash=password_hash, tokens_valid_after=now + 1)
            )
            _revoke_all(session, user_id, now, "password changed")

        await self._units.write(change)

    async def set_disabled(self, username: str, disabled: bool, now: int) -> AccountFlags | None:
        """Disable (revoking every session) or enable a user; None for an unknown name."""

        def flag(session: Session) -> AccountFlags | None:
            values: dict[str, object] = {"disabled": disabled}
            if disabled:
                values["tokens_valid_after"] = now + 1
            row = session.execute(
                update(User)
                .where(User.username == username)
                .values(**values)
                .returning(User.id, User.username, User.is_admin, User.disabled, User.created_at)
            ).first()
            if row is None:
                return None
            if disabled:
                _revoke_all(session, row.id, now, "user disabled")
            return AccountFlags(row.username, row.is_admin, row.disabled, row.created_at)

        return await self._units.write(flag)

    async def revoke_user_sessions(self, username: str, now: int, reason: str) -> int | None:
        """Revoke every token of a user; the number of sessions revoked, None if unknown."""

        def revoke(session: Session) -> int | None:
            user_id = session.scalar(
                update(User)
                .where(User.username == username)
                .values(tokens_valid_after=now + 1)
                .returning(User.id)
            )
            if user_id is None:
                return None
            return _revoke_all(session, user_id, now, reason)

        return await self._units.write(revoke)

    # Sessions and refresh tokens

    async def open_session(
        self,
        session_id: str,
        user_id: int,
        refresh_hash: str,
        now: int,
        refresh_expires_at: int,
        session_expires_at: int,
    ) -> None:
        def open_(session: Session) -> None:
            # Sessions whose last token has expired are no longer needed to refuse anything.
            session.execute(delete(AuthSession).where(AuthSession.expires_at < now))
            session.add(
                AuthSession(
                    id=session_id, user_id=user_id, created_at=now, expires_at=session_expires_at
                )
            )
            session.flush()
            session.add(
                RefreshToken(
                    token_hash=refresh_hash,
                    session_id=session_id,
                    created_at=now,
                    expires_at=refresh_expires_at,
                )
            )

        await self._units.write(open_)

    async def rotate_refresh(
        self,
        old_hash: str,
        new_hash: str,
        now: int,
        refresh_expires_at: int,
        session_expires_at: int,
        reuse_grace: int = 0,
    ) -> RotationResult:
        """Spend a refresh token and store its successor, or say why it cannot be spent.

        Spending a token that was already spent revokes its whole session: either the
        client or a thief holds a copy, and the server cannot tell which. Within
        `reuse_grace` seconds of its first use it is instead exchanged again (two tabs,
        a retried request): each such exchange stores another successor, each usable once.
        """

        def rotate(session: Session) -> RotationResult:
            spent = _rowcount(
                session.execute(
                    update(RefreshToken)
                    .where(RefreshToken.token_hash == old_hash, RefreshToken.used_at.is_(None))
                    .values(used_at=now)
                )
            )
            row = session.execute(
                select(RefreshToken, AuthSession, User)
                .join(AuthSession, RefreshToken.session_id == AuthSession.id)
                .join(User, AuthSession.user_id == User.id)
                .where(RefreshToken.token_hash == old_hash)
            ).first()
            if row is None:
                return RotationResult(Rotation.UNKNOWN)
            token, auth_session, user = row
            result = _rotation_blocker(spent, token, auth_session, user, now, reuse_grace)
            if result is not None:
                if result is Rotation.REUSED and auth_session.revoked_at is None:
                    auth_session.revoked_at = now
                    auth_session.revoked_reason = "refresh token reused"
                    session.execute(delete(WsTicket).where(WsTicket.session_id == auth_session.id))
                return RotationResult(result, _stored_user(user), auth_session.id)
            session.execute(
                delete(RefreshToken).where(
                    RefreshToken.session_id == auth_session.id, RefreshToken.expires_at < now
                )
            )
            session.add(
                RefreshToken(
                    token_hash=new_hash,
                    session_id=auth_session.id,
                    created_at=now,
                    expires_at=refresh_expires_at,
                )
            )
            auth_session.expires_at = max(auth_session.expires_at, session_expires_at)
            outcome = Rotation.ROTATED if spent else Rotation.REISSUED
            return RotationResult(outcome, _stored_user(user), auth_session.id)

        return await self._units.write(rotate)

    async def session_of_refresh(self, token_hash: str) -> tuple[str, str] | None:
        """(session id, username) of a refresh token, spent or not."""
        query = (
            select(AuthSession.id, User.username)
            .join(RefreshToken, RefreshToken.session_id == AuthSession.id)
            .join(User, AuthSession.user_id == User.id)
            .where(RefreshToken.token_hash == token_hash)
        )

        def find(connection: Connection) -> tuple[str, str] | None:
            row = connection.execute(query).first()
            return (row[0], row[1]) if row else None

        return await self._units.read(find)

    async def revoke_session(
        self, session_id: str, username: str, now: int, expires_at: int, reason: str
    ) -> bool:
        """Revoke one session of `username`; True if it was live until now.

        A token from before sessions existed has no row yet: one is written, revoked,
        and kept until the token would have expired.
        """

        def revoke(session: Session) -> bool:
            user_id = session.scalar(select(User.id).where(User.username == username))
            if user_id is None:
                return False
            revoked = _rowcount(
                session.execute(
                    update(AuthSession)
                    .where(
                        AuthSession.id == session_id,
                        AuthSession.user_id == user_id,
                        AuthSession.revoked_at.is_(None),
                    )
                    .values(revoked_at=now, revoked_reason=reason)
                )
            )
            session.execute(delete(WsTicket).where(WsTicket.session_id == session_id))
            if revoked:
                return True
            exists = session.scalar(
                select(func.count()).select_from(AuthSession).where(AuthSession.id == session_id)
            )
            if exists:
                return False
            session.add(
                AuthSession(
                    id=session_id,
                    user_id=user_id,
                    created_at=now,
                    expires_at=expires_at,
                    revoked_at=now,
                    revoked_reason=reason,
                )
            )
            return True

        return await self._units.write(revoke)

    # Login throttling

    async def locked_until(self, keys: Iterable[str]) -> int:
        """The latest lock among `keys` (0 when none is locked)."""
        query = select(func.max(LoginThrottle.locked_until)).where(LoginThrottle.key.in_(keys))

        def latest(connection: Connection) -> int:
            return connection.scalar(query) or 0

        return await self._units.read(latest)

    async def count_attempts(
        self, keys: Iterable[str], now: int, window: int
    ) -> dict[str, tuple[int, int]]:
        """Count one login attempt for each key, in one statement: for each, (attempts in
        its current window, its lock)."""
        rows = [
            {"key": key, "failures": 1, "window_started_at": now, "locked_until": 0, "lockouts": 0}
            for key in keys
        ]
        expired = LoginThrottle.window_started_at <= now - window
        table = LoginThrottle.__table__.c

        def count(session: Session) -> dict[str, tuple[int, int]]:
            statement = (
                dialect_of(session.connection())
                .upsert(LoginThrottle)
                .values(rows)
                .on_conflict_do_update(
                    index_elements=[LoginThrottle.key],
                    set_={
                        "failures": case((expired, 1), else_=table.failures + 1),
                        "window_started_at": case((expired, now), else_=table.window_started_at),
                        "lockouts": case((expired, 0), else_=table.lockouts),
                    },
                )
                .returning(LoginThrottle.key, LoginThrottle.failures, LoginThrottle.locked_until)
            )
            return {
                key: (int(failures), int(locked))
                for key, failures, locked in session.execute(statement)
            }

        return await self._units.write(count)

    async def forget_attempts(self, now: int, window: int) -> None:
        """Drop counters whose window has passed and that hold no lock."""

        def forget(session: Session) -> None:
            session.execute(
                delete(LoginThrottle).where(
                    LoginThrottle.window_started_at <= now - window,
                    LoginThrottle.locked_until <= now,
                )
            )

        await self._units.write(forget)

    async def lock_if_unlocked(self, key: str, now: int, base: int, cap: int) -> int | None:
        """Lock `key` unless it is locked already: for `base` seconds doubled per earlier
        lock in the window, at most `cap`. The lock's end, or None if already locked.

        Of several attempts racing past the limit, exactly one takes the lock.
        """
        # One statement, so the write lock is held for as short as possible: the duration
        # for each count of earlier locks is spelled out (it reaches the cap quickly).
        durations = [min(cap, base * 2**n) for n in range(32)]
        steps = [(LoginThrottle.lockouts == n, now + d) for n, d in enumerate(durations)]
        statement = (
            update(LoginThrottle)
            .where(LoginThrottle.key == key, LoginThrottle.locked_until <= now)
            .values(lockouts=LoginThrottle.lockouts + 1, locked_until=case(*steps, else_=now + cap))
            .returning(LoginThrottle.locked_until)
        )

        def lock(session: Session) -> int | None:
            until = session.scalar(statement)
            return None if until is None else int(until)

        return await self._units.write(lock)

    async def clear_failures(self, key: str) -> None:
        def clear(session: Session) -> None:
            session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))

        await self._units.write(clear)

    # WebSocket tickets

    async def add_ticket(
        self,
        ticket_hash: str,
        user_id: int,
        session_id: str | None,
        origin: str | None,
        token_expires_at: int,
        now: int,
        expires_at: int,
    ) -> None:
        def add(session: Session) -> None:
            session.execute(delete(WsTicket).where(WsTicket.expires_at < now))
            session.add(
                WsTicket(
                    ticket_hash=ticket_hash,
                    user_id=user_id,
                    session_id=session_id,
                    origin=origin,
                    token_expires_at=token_expires_at,
                    expires_at=expires_at,
                )
            )

        await self._units.write(add)

    async def consume_ticket(self, ticket_hash: str, now: int) -> Ticket | None:
        """Take a ticket out, once: of two workers racing for it, one gets it."""

        def consume(session: Session) -> Ticket | None:
            taken = session.execute(
                delete(WsTicket)
                .where(WsTicket.ticket_hash == ticket_hash)
                .returning(
                    WsTicket.user_id,
                    WsTicket.session_id,
                    WsTicket.origin,
                    WsTicket.token_expires_at,
                    WsTicket.expires_at,
                )
            ).first()
            if taken is None or taken.expires_at < now:
                return None
            row = session.execute(
                select(User, AuthSession.revoked_at)
                .outerjoin(AuthSession, _session_revoked(taken.session_id))
                .where(User.id == taken.user_id)
            ).first()
            if row is None:
                return None
            user, revoked_at = row
            return Ticket(
                user=_stored_user(user),
                disabled=user.disabled,
                session_id=taken.session_id,
                origin=taken.origin,
                token_expires_at=taken.token_expires_at,
                session_revoked=revoked_at is not None,
            )

        return await self._units.write(consume)


def _rowcount(result: object) -> int:
    """Rows an UPDATE or DELETE matched."""
    assert isinstance(result, CursorResult)
    return result.rowcount


def _revoke_all(session: Session, user_id: int, now: int, reason: str) -> int:
    """Revoke every session of a user, and the tickets bought with them; how many sessions."""
    session.execute(delete(WsTicket).where(WsTicket.user_id == user_id))
    return _rowcount(
        session.execute(
            update(AuthSession)
            .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
        )
    )


def _rotation_blocker(
    spent_now: int,
    token: RefreshToken,
    auth_session: AuthSession,
    user: User,
    now: int,
    reuse_grace: int,
) -> Rotation | None:
    # Spent by an earlier request (this statement waited for its row lock, or came later).
    if spent_now == 0 and not _within_grace(token.used_at, now, reuse_grace):
        return Rotation.REUSED
    if user.disabled:
        return Rotation.DISABLED
    if auth_session.revoked_at is not None:
        return Rotation.REVOKED
    if token.expires_at < now:
        return Rotation.EXPIRED
    return None


def _within_grace(used_at: int | None, now: int, reuse_grace: int) -> bool:
    """Whether a spent token may be exchanged again. Instants are whole seconds, so the
    window lasts at least `reuse_grace` seconds and less than one more."""
    return reuse_grace > 0 and used_at is not None and now - used_at <= reuse_grace
