"""The plugin's hook implementations: registers the ``sqlite`` storage backend."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from kubeling import hookimpl
from kubeling_storage_sqlite.store import SYNCHRONOUS_MODES, SqliteStorage

if TYPE_CHECKING:
    from kubeling.context import Context
    from kubeling.plugins import RegisterNamedFactory

__all__ = ["SqliteSettings", "factory", "kubeling_register_storages"]


def _check_synchronous(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value.upper() not in SYNCHRONOUS_MODES:
        raise ValueError(
            f"{attribute.name} must be one of {', '.join(SYNCHRONOUS_MODES)}, not {value!r}"
        )


@attrs.frozen(kw_only=True)
class SqliteSettings:
    """The ``storage.sqlite`` config section."""

    path: str | None = None
    """The database file; ``None`` means ``<data_dir>/state.db``.  A relative path is taken
    relative to the data directory."""
    synchronous: str = attrs.field(default="FULL", validator=_check_synchronous)
    """SQLite's ``PRAGMA synchronous``: ``FULL`` survives power loss, ``NORMAL`` only a
    crash of the process."""
    busy_timeout_ms: int = attrs.field(default=5000, validator=attrs.validators.ge(0))
    """How long to wait for a lock held by another connection (e.g. a backup)."""


def database_path(settings: SqliteSettings, data_dir: Path) -> Path:
    """Where the database file of ``settings`` lives, given the data directory."""
    if settings.path is None:
        return data_dir / "state.db"
    path = Path(settings.path).expanduser()
    return path if path.is_absolute() else data_dir / path


def factory(settings: SqliteSettings | None, ctx: Context) -> SqliteStorage:
    """Build the (not yet started) storage the config asks for."""
    settings = settings or SqliteSettings()
    return SqliteStorage(
        database_path(settings, Path(ctx.data_dir)),
        synchronous=settings.synchronous,
        busy_timeout_ms=settings.busy_timeout_ms,
    )


@hookimpl
def kubeling_register_storages(register: RegisterNamedFactory) -> None:
    """Register the ``sqlite`` storage backend with its settings class."""
    register("sqlite", factory, settings=SqliteSettings)
