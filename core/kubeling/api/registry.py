"""Kinds the API server serves: group, version, plural, scope, model and strategy.

Built-in kinds and plugin kinds (``kubeling_register_kinds``) are registered the same way
and served by the same request pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from kubeling.api.strategy import Strategy

__all__ = ["KindInfo", "KindRegistry", "Resource"]


@attrs.frozen(kw_only=True)
class Resource:
    """How a client addresses a kind: ``api_version`` + ``plural`` + scope."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        """The URL path of the collection, of one object, or of one of its subresources."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        return base


@attrs.frozen(kw_only=True)
class KindInfo:
    """Everything the API server needs to serve one kind."""

    group: str
    """API group; ``""`` for the core group."""
    version: str
    kind: str
    plural: str
    singular: str = ""
    namespaced: bool = True
    model: type | None = None
    """The attrs model: the shape of the kind (schema checks, OpenAPI, typed clients)."""
    strategy: Strategy
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ("status",)
    """Subresources served besides the object itself (``status``, ``scale``, ``binding``)."""
    field_selectors: tuple[str, ...] = ()
    """Field paths usable in field selectors besides metadata.name and metadata.namespace."""
    verbs: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch",
                              "update", "watch")
    storage_prefix: str = ""
    """Storage key prefix; defaults to ``/registry/[<group>/]<plural>/``."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> Resource:
        return Resource(group=self.group, version=self.version, plural=self.plural,
                        kind=self.kind, namespaced=self.namespaced)

    @property
    def key_prefix(self) -> str:
        if self.storage_prefix:
            return self.storage_prefix
        return f"/registry/{self.group}/{self.plural}/" if self.group else \
            f"/registry/{self.plural}/"

    def key(self, namespace: str | None, name: str) -> str:
        """Storage key of one object."""
        if self.namespaced:
            return f"{self.key_prefix}{namespace}/{name}"
        return f"{self.key_prefix}{name}"

    def namespace_prefix(self, namespace: str | None) -> str:
        """Storage prefix of a collection (one namespace's, or all of them)."""
        if self.namespaced and namespace:
            return f"{self.key_prefix}{namespace}/"
        return self.key_prefix

    @property
    def qualified(self) -> str:
        """``deployments.apps`` / ``pods``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def supported_field_selectors(self) -> frozenset[str]:
        base = {"metadata.name"}
        if self.namespaced:
            base.add("metadata.namespace")
        return frozenset(base | set(self.field_selectors))


class KindRegistry:
    """Kinds by (group, version, plural), with the lookups routing and discovery need."""

    def __init__(self, kinds: Iterable[KindInfo] = ()) -> None:
        self._by_path: dict[tuple[str, str, str], KindInfo] = {}
        self._by_kind: dict[tuple[str, str], KindInfo] = {}
        for kind in kinds:
            self.add(kind)

    def add(self, kind: KindInfo) -> None:
        key = (kind.group, kind.version, kind.plural)
        if key in self._by_path:
            raise ValueError(f"kind {kind.qualified} ({kind.api_version}) registered twice")
        self._by_path[key] = kind
        self._by_kind[(kind.api_version, kind.kind)] = kind

    def get(self, group: str, version: str, plural: str) -> KindInfo | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> KindInfo | None:
        return self._by_kind.get((api_version, kind))

    def find(self, name: str) -> KindInfo | None:
        """A kind by plural, singular, kind name, short name or ``plural.group``."""
        lowered = name.lower()
        for info in self._by_path.values():
            if lowered in (info.plural, info.singular or info.kind.lower(), info.kind.lower(),
                           info.qualified) or lowered in info.short_names:
                return info
        return None

    def __iter__(self) -> Iterator[KindInfo]:
        return iter(self._by_path.values())

    def groups(self) -> dict[str, list[str]]:
        """group -> versions served (core group as ``""``), in registration order."""
        out: dict[str, list[str]] = {}
        for g, v, _ in self._by_path:
            versions = out.setdefault(g, [])
            if v not in versions:
                versions.append(v)
        return out

    def in_group_version(self, group: str, version: str) -> list[KindInfo]:
        return [k for (g, v, _), k in self._by_path.items() if g == group and v == version]

    def kinds(self) -> list[KindInfo]:
        return list(self._by_path.values())
