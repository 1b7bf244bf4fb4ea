"""Testing helpers for kubeling and its plugins: clusters for tests and the contract suites.

``from kubeling.testing import RuntimeContract`` (``StorageContract``, ``ProxierContract``)
imports the suite lazily, so importing this package costs nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ProxierContract", "RuntimeContract", "StorageContract"]


def __getattr__(name: str) -> Any:
    if name == "RuntimeContract":
        from kubeling.testing.runtime_contract import RuntimeContract

        return RuntimeContract
    if name == "ProxierContract":
        from kubeling.testing.proxier_contract import ProxierContract

        return ProxierContract
    if name == "StorageContract":
        from kubeling.testing.storage_contract import StorageContract

        return StorageContract
    raise AttributeError(f"module 'kubeling.testing' has no attribute {name!r}")
