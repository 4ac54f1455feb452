"""Building the auth services from settings, in one place."""

from notifier.auth.accounts import Accounts
from notifier.auth.keys import KeySet
from notifier.auth.passwords import PasswordHasher
from notifier.auth.sessions import CloseSockets, Sessions
from notifier.auth.throttle import LoginThrottle, ThrottlePolicy
from notifier.auth.tickets import WsTickets
from notifier.auth.tokens import TokenCodec
from notifier.db.auth_store import AuthStore
from notifier.db.store import Store
from notifier.settings import Settings


def key_set(settings: Settings) -> KeySet:
    """Raises `KeyConfigError` for a missing or unsuitable key file."""
    if settings.jwt_algorithm == "HS256":
        return KeySet.shared_secret(settings.secret_key.get_secret_value())
    assert settings.jwt_private_key_file is not None  # checked by Settings
    return KeySet.from_files(
        settings.jwt_algorithm, settings.jwt_private_key_file, settings.jwt_public_key_files
    )


def build_accounts(
    settings: Settings, store: Store, close_sockets: CloseSockets | None
) -> Accounts:
    """`close_sockets` is None only in a process that holds no sockets (the CLI)."""
    auth_store = AuthStore(store.units)
    tokens = TokenCodec(key_set(settings), settings.access_token_ttl)
    policy = ThrottlePolicy(
        max_failures_per_user=settings.login_max_failures_per_user,
        max_failures_per_address=settings.login_max_failures_per_address,
        window=settings.login_failure_window,
        lockout=settings.login_lockout,
    )
    return Accounts(
        store,
        auth_store,
        PasswordHasher(settings.password_schemes),
        tokens,
        Sessions(
            auth_store,
            tokens,
            settings.refresh_token_ttl,
            close_sockets,
            reuse_grace=settings.refresh_reuse_grace,
        ),
        LoginThrottle(auth_store, policy),
        WsTickets(auth_store, settings.ws_ticket_ttl),
        password_min_length=settings.password_min_length,
    )
