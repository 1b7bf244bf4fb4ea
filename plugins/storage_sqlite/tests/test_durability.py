"""``kill -9`` safety: every write a caller saw acknowledged is on disk afterwards."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubeling_storage_sqlite import SqliteStorage

CHILD = Path(__file__).with_name("durability_child.py")


def run_and_kill(db: Path, synchronous: str, acks: int, workers: int = 32) -> list[str]:
    """Start the child, let it acknowledge at least ``acks`` writes, ``kill -9`` it, and
    return every complete line it printed."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(db), synchronous, str(workers)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 60
    try:
        assert child.stdout is not None
        while len(lines) < acks:
            line = child.stdout.readline()
            if not line:
                pytest.fail(f"child exited early: {child.wait()} {child.stderr.read()}")  # type: ignore[union-attr]
            lines.append(line)
            assert time.monotonic() < deadline, f"only {len(lines)} acks in 60 s"
        os.kill(child.pid, signal.SIGKILL)
        rest = child.stdout.read()  # what it printed before dying
    finally:
        child.kill()
        child.wait()
        assert child.stdout is not None and child.stderr is not None
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    lines += rest.splitlines(keepends=True)
    return [line for line in lines if line.endswith("\n")]


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
async def test_acknowledged_writes_survive_kill_9(tmp_path: Path, synchronous: str) -> None:
    db = tmp_path / "state.db"
    lines = run_and_kill(db, synchronous, acks=3000)

    acked: list[tuple[str, str, int]] = []
    last: dict[str, tuple[str, int]] = {}
    for line in lines:
        op, key, rev_text = line.split()
        rev = int(rev_text)
        assert rev > last.get(key, ("", 0))[1], "revisions of one key must increase"
        acked.append((op, key, rev))
        last[key] = (op, rev)
    assert len(acked) >= 3000
    max_rev = max(rev for _, _, rev in acked)

    raw = sqlite3.connect(db)
    try:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        raw.close()

    storage = SqliteStorage(db)
    await storage.start()
    try:
        current = await storage.current_revision()
        assert current >= max_rev, "the revision went back after the crash"
        compacted = await storage.compacted_revision()
        lost = []
        # Every acknowledged write still in the uncompacted history is there, exactly.
        for op, key, rev in acked:
            if rev < compacted:
                continue
            kv = await storage.get(key, revision=rev)
            if op == "delete" and kv is not None:
                lost.append(f"{key}: deleted at {rev}, but present then")
            elif op != "delete" and (kv is None or kv.mod_revision != rev):
                lost.append(f"{key}: {op} at {rev}, found {kv} at that revision")
        # And the current state agrees with each key's last acknowledged write.  A key whose
        # last ack was its update may be gone: its delete (every third key) may have
        # committed without the ack reaching stdout before the kill.
        for key, (op, rev) in last.items():
            kv = await storage.get(key)
            may_be_deleted = op == "update" and int(key.rsplit("k", 1)[1]) % 3 == 0
            if op == "delete":
                if kv is not None:
                    lost.append(f"{key}: deleted at {rev} but present")
            elif (kv is None and not may_be_deleted) or (kv is not None and kv.mod_revision < rev):
                lost.append(f"{key}: {op} at {rev} acknowledged, now {kv}")
        assert not lost, f"{len(lost)} acknowledged writes lost: {lost[:5]}"
        assert sum(rev >= compacted for _, _, rev in acked) > 100

        # History after the compacted revision is intact and replays without error.
        compacted = await storage.compacted_revision()
        at_compacted = await storage.range("/registry/", revision=compacted)
        assert at_compacted.revision == compacted
        seen = 0
        async for batch in storage.watch("/registry/", after_revision=compacted):
            seen += len(batch)
            if batch[-1].revision >= current:
                break
        assert seen > 0
        assert await storage.create("/registry/pods/d/after", b"x") > current
    finally:
        await storage.close()
