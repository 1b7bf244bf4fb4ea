"""Docs stay true: every hook is documented with its exact signature and has a test."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from kubeling import hookspecs

ROOT = Path(__file__).parent.parent
HOOKS_DOC = (ROOT / "docs" / "hooks.md").read_text()


@pytest.mark.parametrize("name", hookspecs.all_hook_names())
def test_hook_is_documented_with_its_signature(name: str) -> None:
    signature = inspect.signature(getattr(hookspecs, name))
    assert f"`{name}{signature}`" in HOOKS_DOC


@pytest.mark.parametrize("name", hookspecs.all_hook_names())
def test_hook_has_a_docstring_naming_every_parameter(name: str) -> None:
    func = getattr(hookspecs, name)
    doc = inspect.getdoc(func) or ""
    assert doc.splitlines()[0].endswith(".")
    for param in inspect.signature(func).parameters:
        assert f":param {param}:" in doc


@pytest.mark.parametrize("name", hookspecs.all_hook_names())
def test_hook_has_a_test(name: str) -> None:
    test_files = [p for p in [*ROOT.glob("tests/**/*.py"), *ROOT.glob("plugins/*/tests/**/*.py")]
                  if p.name != "test_docs.py"]
    assert any(name in p.read_text() for p in test_files), f"no test mentions {name}"


def test_every_documented_hook_exists() -> None:
    documented = {line.split("`")[1].split("(")[0] for line in HOOKS_DOC.splitlines()
                  if line.startswith("### `")}
    assert documented == set(hookspecs.all_hook_names())
