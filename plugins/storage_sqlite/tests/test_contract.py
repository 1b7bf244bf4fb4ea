"""kubeling-storage-sqlite against the shared storage conformance suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubeling_storage_sqlite import SqliteStorage

from kubeling.testing.storage_contract import StorageContract, StorageFactory


class TestSqliteContract(StorageContract):
    """Every clause of the Storage interface, on a real SQLite file."""

    @pytest.fixture
    def make_storage(self, tmp_path: Path) -> StorageFactory:
        return lambda: SqliteStorage(tmp_path / "state.db")

    @pytest.fixture
    def reopen(self, make_storage: StorageFactory) -> StorageFactory:
        return make_storage


class TestSqliteContractTinyWatchBuffer(StorageContract):
    """Again with watch buffers so small that every watcher keeps overflowing and has to
    catch up from the log, and history replayed a few rows per query."""

    @pytest.fixture
    def make_storage(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StorageFactory:
        monkeypatch.setattr(SqliteStorage, "REPLAY_PAGE", 3)
        monkeypatch.setattr(SqliteStorage, "COMPACT_CHUNK", 4)
        return lambda: SqliteStorage(tmp_path / "state.db", watch_buffer=2, max_batch=7)

    @pytest.fixture
    def reopen(self, make_storage: StorageFactory) -> StorageFactory:
        return make_storage
