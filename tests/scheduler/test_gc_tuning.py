"""``kubeling up`` tunes the garbage collector for a server with large caches."""

from __future__ import annotations

import gc

from kubeling import cli


def test_tune_gc_raises_the_young_generation_threshold() -> None:
    before = gc.get_threshold()
    try:
        cli.tune_gc()
        assert gc.get_threshold() == cli.GC_THRESHOLDS
        assert cli.GC_THRESHOLDS[0] >= 10_000
    finally:
        gc.set_threshold(*before)


def test_up_tunes_gc_before_running(monkeypatch, tmp_path) -> None:
    calls: list[str] = []
    monkeypatch.setattr(cli, "tune_gc", lambda: calls.append("gc"))

    def fake_run(coro):  # stands in for asyncio.run: records the order, runs nothing
        calls.append("run")
        coro.close()

    monkeypatch.setattr(cli.asyncio, "run", fake_run)
    from click.testing import CliRunner

    result = CliRunner().invoke(cli.cli, ["up", "--listen", "127.0.0.1:0", "--data-dir",
                                          str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert calls == ["gc", "run"]
