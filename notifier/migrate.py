"""Alembic migrations, run from the CLI before the server starts."""

from pathlib import Path

from alembic import command
from alembic.config import Config


def _find(name: str) -> Path:
    # Installed wheels carry migrations inside the package; a checkout has them at the top.
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir / name, package_dir.parent / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"cannot find {name} next to the notifier package")


def alembic_config(database_url: str) -> Config:
    config = Config(str(_find("alembic.ini")))
    config.set_main_option("script_location", str(_find("migrations")))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
