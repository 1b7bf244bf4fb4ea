"""The kubelet's config section: defaults and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubeling.cli import prepare
from kubeling.config import ConfigError


def test_defaults_are_valid(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("node: {name: n1}\n")
    _, config = prepare(str(path))
    assert config.kubelet.listen == "127.0.0.1:0"
    assert config.kubelet.max_pods == 110 and config.kubelet.lease_renew_seconds == 10.0


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("kubelet: {listen: nonsense}", "listen: 'nonsense': expected HOST:PORT"),
    ("kubelet: {max_pods: 0}", "max_pods"),
    ("kubelet: {relist_seconds: 0}", "relist_seconds"),
    ("kubelet: {static_pod_pth: /x}", "did you mean 'static_pod_path'"),
])
def test_bad_values(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text + "\n")
    with pytest.raises(ConfigError) as info:
        prepare(str(path))
    assert message in str(info.value)
