"""kubeling-storage-sqlite: kubeling's embedded storage in one SQLite file.

Registers the storage backend ``sqlite`` (config ``storage.backend: sqlite``, settings at
``storage.sqlite``; see :class:`kubeling_storage_sqlite.hooks.SqliteSettings`).
"""

from kubeling_storage_sqlite.store import SYNCHRONOUS_MODES, SqliteStorage

__all__ = ["SYNCHRONOUS_MODES", "SqliteStorage"]
