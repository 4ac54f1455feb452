"""One settings object for the whole service, read from the environment and `.env`.

Nothing else in the package reads `os.environ`: the settings are built once (by the
CLI or the app factory) and passed to whatever needs them.
"""

from pathlib import Path
from typing import Annotated, Literal

import orjson
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NOTIFIER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite+aiosqlite:///./notifier.db"
    database_pool_size: int = Field(default=20, ge=1, le=1000)
    database_max_overflow: int = Field(default=0, ge=0, le=1000)
    database_pool_recycle: float = Field(default=1800.0, gt=0)
    database_pool_timeout: float = Field(default=30.0, gt=0)
    database_pgbouncer: bool = False
    broker_url: str = "memory://"
    broker_channel_prefix: str = Field(default="notifier", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    secret_key: SecretStr = Field(min_length=32)
    jwt_algorithm: Literal["HS256", "RS256", "ES256"] = "HS256"
    jwt_private_key_file: Path | None = None
    jwt_public_key_files: Annotated[list[Path], NoDecode] = []
    access_token_ttl: int = Field(default=3600, gt=0)
    refresh_token_ttl: int = Field(default=30 * 24 * 3600, gt=0)
    # Long windows would let a thief's copy of a just-spent refresh token through unnoticed.
    refresh_reuse_grace: int = Field(default=10, ge=0, le=300)
    token_expiry_warning: float = Field(default=60.0, ge=0)
    allowed_origins: Annotated[list[str], NoDecode] = []
    cookie_secure: bool = False
    cors_origins: Annotated[list[str], NoDecode] = []
    cors_allow_credentials: bool = False

    password_min_length: int = Field(default=8, ge=1, le=1024)
    password_schemes: Annotated[list[str], NoDecode] = ["argon2"]
    login_max_failures_per_user: int = Field(default=5, ge=0)
    login_max_failures_per_address: int = Field(default=50, ge=0)
    login_failure_window: int = Field(default=900, gt=0)
    login_lockout: int = Field(default=30, gt=0)
    # Empty: no proxy is trusted, so X-Forwarded-For never names the client by default.
    forwarded_allow_ips: str = ""

    ws_ticket_ttl: int = Field(default=30, gt=0)
    ws_allow_query_token: bool = True
    ws_max_sockets_per_user: int = Field(default=16, ge=1)
    presence_ttl: float = Field(default=15.0, ge=1)
    ws_client_message_rate: float = Field(default=1.0, gt=0)
    ws_client_message_burst: int = Field(default=10, ge=1)
    ws_recheck_interval: float = Field(default=60.0, ge=0)
    max_recipients: int = Field(default=1000, ge=1, le=100_000)
    admin_username: str | None = None
    admin_password: SecretStr | None = None

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"
    workers: int = Field(default=1, ge=1)

    metrics_enabled: bool = True
    metrics_token: SecretStr | None = None

    ws_ping_interval: float = Field(default=20.0, gt=0)
    ws_ping_timeout: float = Field(default=20.0, gt=0)
    ws_per_message_deflate: bool = False
    ws_max_message_size: int = Field(default=64 * 1024, ge=1024)
    ws_queue_size: int = Field(default=256, ge=1)
    ws_close_timeout: float = Field(default=2.0, gt=0)
    ws_stuck_timeout: float = Field(default=30.0, gt=0)
    shutdown_timeout: float = Field(default=5.0, gt=0)
    shutdown_reconnect_spread_ms: int = Field(default=5000, ge=10)
    max_body_size: int = Field(default=1024 * 1024, ge=1024)
    max_header_size: int = Field(default=16 * 1024, ge=1024)
    header_timeout: float = Field(default=10.0, gt=0)

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str) -> str:
        if value != "memory://" and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("use memory:// or a redis:// (rediss://, unix://) URL")
        return value

    @property
    def uses_memory_broker(self) -> bool:
        return self.broker_url == "memory://"

    @field_validator("allowed_origins", "cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # Operators write a comma-separated list in env files; JSON lists also work.
        return [item.rstrip("/") for item in _split(value)] if isinstance(value, str) else value

    @field_validator("jwt_public_key_files", "password_schemes", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        return _split(value) if isinstance(value, str) else value

    @field_validator("password_schemes")
    @classmethod
    def _known_schemes(cls, value: list[str]) -> list[str]:
        from passlib.registry import list_crypt_handlers

        if not value:
            raise ValueError("name at least one password hashing scheme")
        unknown = [name for name in value if name not in list_crypt_handlers()]
        if unknown:
            raise ValueError(f"unknown password schemes: {', '.join(unknown)}")
        return value

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `NOTIFIER_METRICS_TOKEN=` in an env file means "no token", not "the empty token".
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _signing_key_for_algorithm(self) -> "Settings":
        if self.jwt_algorithm != "HS256" and self.jwt_private_key_file is None:
            raise ValueError(
                f"NOTIFIER_JWT_ALGORITHM={self.jwt_algorithm} needs NOTIFIER_JWT_PRIVATE_KEY_FILE"
            )
        return self


def _split(value: str) -> list[str]:
    text = value.strip()
    if text.startswith("["):
        return list(orjson.loads(text))
    return [item.strip() for item in text.split(",") if item.strip()]
