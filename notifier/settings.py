"""One settings object for the whole service, read from the environment and `.env`.

Nothing else in the package reads `os.environ`: the settings are built once (by the
CLI or the app factory) and passed to whatever needs them.
"""

from typing import Annotated, Literal

import orjson
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NOTIFIER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite+aiosqlite:///./notifier.db"
    broker_url: str = "memory://"
    broker_channel_prefix: str = Field(default="notifier", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    secret_key: SecretStr = Field(min_length=32)
    jwt_algorithm: str = "HS256"
    access_token_ttl: int = Field(default=3600, gt=0)
    allowed_origins: Annotated[list[str], NoDecode] = []
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

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str) -> str:
        if value != "memory://" and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("use memory:// or a redis:// (rediss://, unix://) URL")
        return value

    @property
    def uses_memory_broker(self) -> bool:
        return self.broker_url == "memory://"

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # Operators write a comma-separated list in env files; JSON lists also work.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return orjson.loads(text)
            return [item.strip().rstrip("/") for item in text.split(",") if item.strip()]
        return value

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `NOTIFIER_METRICS_TOKEN=` in an env file means "no token", not "the empty token".
        return None if isinstance(value, str) and not value.strip() else value
