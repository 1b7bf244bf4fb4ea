"""Config loading: plugin sections, error messages with file/line/key, --set overrides."""

from __future__ import annotations

import attrs
import pytest

from kubeling.config import (
    Config,
    ConfigError,
    build_config_class,
    dump_config,
    load_config,
    load_config_file,
)


@attrs.frozen(kw_only=True)
class SqliteLike:
    path: str | None = None
    synchronous: str = "FULL"


@attrs.frozen(kw_only=True)
class SchedulerLike:
    percentage_of_nodes_to_score: int = 0
    weights: dict[str, int] = attrs.field(factory=dict)


@pytest.fixture
def config_class() -> type[Config]:
    return build_config_class({"storage.sqlite": SqliteLike, "scheduler": SchedulerLike})


def test_defaults_without_a_file(config_class: type[Config]) -> None:
    cfg = load_config(None, config_class)
    assert cfg.storage.backend == "sqlite"
    assert cfg.storage.sqlite.synchronous == "FULL"  # type: ignore[attr-defined]
    assert cfg.scheduler.percentage_of_nodes_to_score == 0  # type: ignore[attr-defined]
    assert cfg.api.listen == "127.0.0.1:6443"


def test_plugin_sections_are_read_and_dumped(config_class: type[Config]) -> None:
    cfg = load_config({"storage": {"sqlite": {"path": "/x.db"}},
                       "scheduler": {"weights": {"NodeResourcesFit": 2}}}, config_class)
    assert cfg.storage.sqlite.path == "/x.db"  # type: ignore[attr-defined]
    dumped = dump_config(cfg)
    assert dumped["storage"] == {"backend": "sqlite",
                                 "sqlite": {"path": "/x.db", "synchronous": "FULL"}}
    assert dumped["scheduler"]["weights"] == {"NodeResourcesFit": 2}
    # what is dumped loads back to the same config
    assert load_config(dumped, config_class) == cfg


def test_unknown_key_names_file_line_and_suggestion(tmp_path, config_class) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("api:\n  listen: 127.0.0.1:7000\nstorage:\n  backnd: sqlite\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path, config_class)
    (problem,) = info.value.problems
    assert str(problem) == f"{path}:4: storage.backnd: unknown key; did you mean 'backend'?"


def test_every_problem_is_reported(tmp_path, config_class) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "storage:\n"
        "  sqlite:\n"
        "    synchronous: [1]\n"
        "scheduler:\n"
        "  percentage_of_nodes_to_score: lots\n"
        "logging:\n"
        "  level: loud\n"
        "nonsense: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path, config_class)
    by_path = {p.path: p for p in info.value.problems}
    assert by_path["storage.sqlite.synchronous"].line == 3
    assert "expected a string" in by_path["storage.sqlite.synchronous"].message
    assert by_path["scheduler.percentage_of_nodes_to_score"].line == 5
    assert "expected an integer" in by_path["scheduler.percentage_of_nodes_to_score"].message
    assert by_path["logging.level"].line == 7
    assert by_path["nonsense"].message.startswith("unknown key")


def test_invalid_yaml_is_a_config_error_with_line(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("api:\n  listen: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert "not valid YAML" in str(info.value)
    assert info.value.problems[0].line is not None


def test_top_level_must_be_a_mapping(tmp_path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config_file(path)


def test_set_overrides_are_checked_like_the_file(config_class) -> None:
    cfg = load_config({}, config_class, overrides=["storage.backend=etcd",
                                                   "scheduler.percentage_of_nodes_to_score=50",
                                                   "api.authorizers=[a, b]"])
    assert cfg.storage.backend == "etcd"
    assert cfg.scheduler.percentage_of_nodes_to_score == 50  # type: ignore[attr-defined]
    assert cfg.api.authorizers == ["a", "b"]
    with pytest.raises(ConfigError) as info:
        load_config({}, config_class, overrides=["storage.backnd=sqlite"])
    assert "storage.backnd: unknown key; did you mean 'backend'?" in str(info.value)
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config({}, config_class, overrides=["nonsense"])


def test_a_section_may_not_shadow_a_core_setting() -> None:
    with pytest.raises(ValueError, match="clashes"):
        build_config_class({"api.listen": SqliteLike})
