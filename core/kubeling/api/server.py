"""The API server: routing, authentication, authorization and the served kinds' caches.

:meth:`ApiServer.handle` takes a transport-neutral :class:`~kubeling.api.request.ApiRequest`
and returns an :class:`~kubeling.api.request.ApiResponse`; :mod:`kubeling.api.http` puts
aiohttp in front of it and the in-process client transport calls it directly.  The verbs
themselves live in :mod:`kubeling.api.handlers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import attrs

import kubeling
from kubeling.api import allocation, discovery, eviction
from kubeling.api.admission import Admitter
from kubeling.api.auth import ADMIN, Authenticator, Authorizer, RequestAttributes, UserInfo
from kubeling.api.errors import ApiError
from kubeling.api.handlers import Handlers, Target
from kubeling.api.registry import KindInfo, KindRegistry
from kubeling.api.request import ApiRequest, ApiResponse
from kubeling.api.watch import WatchCache
from kubeling.storage import Storage

log = logging.getLogger(__name__)

__all__ = ["ApiServer", "ServerSettings"]

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
KUBE_VERSION = "v1.32.0"


@attrs.frozen(kw_only=True)
class ServerSettings:
    """The API server's knobs (from the ``api`` config section)."""

    max_request_bytes: int = 3 * 1024 * 1024
    watch_cache_events: int = 10_000
    compaction_interval_seconds: float = 300.0
    compaction_retain_revisions: int = 10_000
    bookmark_interval_seconds: float = 10.0
    default_watch_timeout_seconds: int = 1800
    external_address: str = ""
    """host:port clients reach the server at (for /api's serverAddressByClientCIDRs)."""
    service_cluster_ip_range: str = "10.96.0.0/12"
    """Service cluster IP range(s) (see :mod:`kubeling.api.allocation`)."""
    service_node_port_range: str = "30000-32767"
    """Node port range of NodePort/LoadBalancer Services."""
    advertise_address: str | None = None
    """Address published as the ``kubernetes`` Service's endpoint (None: derived)."""


SubresourceHandler = Callable[..., Awaitable[ApiResponse]]

_VERB_BY_METHOD = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class ApiServer:
    """Serves the Kubernetes API for the registered kinds from one storage."""

    def __init__(
        self,
        *,
        storage: Storage,
        kinds: Iterable[KindInfo],
        settings: ServerSettings | None = None,
        admitters: Sequence[Admitter] = (),
        authenticators: Sequence[Authenticator] = (),
        authorizers: Sequence[Authorizer] = (),
    ) -> None:
        self.storage = storage
        self.registry = KindRegistry(kinds)
        self.settings = settings or ServerSettings()
        ordered = sorted(admitters, key=lambda a: getattr(a, "order", 0))
        self.mutating_admitters = [a for a in ordered if getattr(a, "mutating", False)]
        self.validating_admitters = [a for a in ordered if not getattr(a, "mutating", False)]
        self.authenticators = list(authenticators)
        self.authorizers = list(authorizers)
        self.caches: dict[tuple[str, str, str], WatchCache] = {}
        self.subresource_handlers: dict[tuple[str, str, str], SubresourceHandler] = {}
        """(group, plural, subresource) -> ``async handler(server, verb, target, request,
        user)``: subresources served by code of their own (pod logs, exec, eviction...);
        add them with :meth:`add_subresource_handler`."""
        self.resource_handlers: dict[tuple[str, str], SubresourceHandler] = {}
        """(group, plural) -> handler serving a kind whose objects are computed, not stored
        (the metrics API); add them with :meth:`add_resource_handler`."""
        self.handlers = Handlers(self)
        eviction.install(self)
        self.write_hooks: dict[tuple[str, str], Any] = {}
        """(group, plural) -> object whose ``on_create``/``on_update``/``on_delete`` the verb
        pipeline calls around the storage write (Service IP/port allocation)."""
        self.allocator: Any = None
        self.kubernetes_service: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.started = False
        self.ready = False

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Fill the watch caches (storage must be started) and create system namespaces."""
        for kind in self.registry:
            cache = WatchCache(kind, self.storage, capacity=self.settings.watch_cache_events)
            self.caches[(kind.group, kind.version, kind.plural)] = cache
        await asyncio.gather(*(cache.start() for cache in self.caches.values()))
        self.started = True
        await self._bootstrap()
        await allocation.attach(self)
        if self.settings.compaction_interval_seconds > 0:
            self._tasks.append(asyncio.create_task(self._compaction_loop(), name="compaction"))
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        await allocation.detach(self)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await asyncio.gather(*(cache.stop() for cache in self.caches.values()))

    async def _bootstrap(self) -> None:
        ns_kind = self.registry.get("", "v1", "namespaces")
        if ns_kind is None:
            return
        for name in SYSTEM_NAMESPACES:
            if await self.storage.get(ns_kind.key(None, name)) is not None:
                continue
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            try:
                await self.handlers.create_object(Target(ns_kind, None, None, None), body,
                                                  user=ADMIN)
            except ApiError as exc:
                if exc.code != 409:
                    raise

    async def _compaction_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.compaction_interval_seconds)
            try:
                current = await self.storage.current_revision()
                target = current - self.settings.compaction_retain_revisions
                if target > await self.storage.compacted_revision():
                    await self.storage.compact(target)
                    log.info("compacted storage history before revision %d", target)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("compaction failed")

    def advertise(self, listen_host: str, port: int) -> None:
        """Publish this server (listening on ``listen_host:port``) as an endpoint of the
        ``kubernetes`` Service; called once the HTTP front listens."""
        if self.kubernetes_service is not None:
            address = allocation.advertised_address(self.settings.advertise_address,
                                                    listen_host)
            self.kubernetes_service.advertise(address, port)

    def add_subresource_handler(self, group: str, plural: str, subresource: str,
                                handler: SubresourceHandler) -> None:
        """Serve ``<plural>/<subresource>`` with ``handler`` (the kind must list the
        subresource in ``KindInfo.subresources``)."""
        self.subresource_handlers[(group, plural, subresource)] = handler

    def add_resource_handler(self, group: str, plural: str,
                             handler: SubresourceHandler) -> None:
        """Serve every verb on ``<plural>`` of ``group`` with ``handler`` (called like a
        subresource handler, with the target's ``subresource`` None)."""
        self.resource_handlers[(group, plural)] = handler

    def cache_for(self, kind: KindInfo) -> WatchCache:
        return self.caches[(kind.group, kind.version, kind.plural)]

    # -- requests ---------------------------------------------------------------------------

    async def handle(self, req: ApiRequest) -> ApiResponse:
        """Answer one request; every failure becomes a Status response."""
        try:
            return await self._route(req)
        except ApiError as exc:
            return ApiResponse.json(exc.to_status(), exc.code, headers=exc.headers)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: say so as a Status, never a traceback
            log.exception("internal error handling %s %s", req.method, req.path)
            err = ApiError.internal(f"{type(exc).__name__}: {exc}")
            return ApiResponse.json(err.to_status(), err.code)

    async def _route(self, req: ApiRequest) -> ApiResponse:
        path = req.path.rstrip("/") or "/"
        parts = path.strip("/").split("/") if path != "/" else []
        user = req.user or self._authenticate(req)
        if not parts:
            self._authorize_path(user, req, path)
            return discovery.root_paths(self)
        head = parts[0]
        if head == "api":
            if len(parts) == 1:
                self._authorize_path(user, req, path)
                return discovery.api_versions(self, req)
            return await self._resource_request(req, user, "", parts[1], parts[2:], path)
        if head == "apis":
            if len(parts) == 1:
                self._authorize_path(user, req, path)
                return discovery.api_groups(self, req)
            if len(parts) == 2:
                self._authorize_path(user, req, path)
                return discovery.api_group(self, parts[1])
            return await self._resource_request(req, user, parts[1], parts[2], parts[3:], path)
        self._authorize_path(user, req, path)
        if head in ("healthz", "livez", "readyz"):
            return self._health(head, parts[1:])
        if head == "version":
            return ApiResponse.json(self.version_info())
        if head == "openapi":
            return discovery.openapi(self, req, parts[1:])
        raise ApiError.resource_not_found(path)

    def _health(self, which: str, rest: list[str]) -> ApiResponse:
        ok = self.ready if which == "readyz" else self.started
        if rest and rest[0] not in ("ping", "etcd", "log", "poststarthook"):
            ok = ok and True
        if not ok:
            return ApiResponse(status=500, body=b"not ready", content_type="text/plain")
        return ApiResponse(status=200, body=b"ok", content_type="text/plain")

    def version_info(self) -> dict[str, str]:
        major, minor = KUBE_VERSION.lstrip("v").split(".")[:2]
        return {
            "major": major,
            "minor": minor,
            "gitVersion": f"{KUBE_VERSION}+kubeling-{kubeling.__version__}",
            "gitCommit": "",
            "gitTreeState": "clean",
            "buildDate": "",
            "goVersion": f"python{platform.python_version()}",
            "compiler": "cpython",
            "platform": f"{platform.system().lower()}/{_arch()}",
        }

    async def _resource_request(self, req: ApiRequest, user: UserInfo, group: str,
                                version: str, rest: list[str], path: str) -> ApiResponse:
        if not rest:
            if not self.registry.in_group_version(group, version):
                raise ApiError.resource_not_found(path)
            self._authorize_path(user, req, path)
            return discovery.resource_list(self, group, version)
        watch_prefix = False
        if rest[0] == "watch":  # the deprecated /watch/ paths
            watch_prefix = True
            rest = rest[1:]
        target = self._target(group, version, rest, path)
        verb = self._verb(req, target, watch_prefix)
        self._authorize(user, verb, target, path)
        return await self.handlers.dispatch(verb, target, req, user)

    def _target(self, group: str, version: str, rest: list[str], path: str) -> Target:
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            candidate = self.registry.get(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace = rest[1]
                rest = rest[2:]
        kind = self.registry.get(group, version, rest[0])
        if kind is None or len(rest) > 3:
            raise ApiError.resource_not_found(path)
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if subresource is not None and subresource not in kind.subresources:
            raise ApiError.resource_not_found(path)
        if kind.namespaced and name is not None and namespace is None:
            raise ApiError.resource_not_found(path)
        return Target(kind, namespace, name, subresource)

    @staticmethod
    def _verb(req: ApiRequest, target: Target, watch_prefix: bool) -> str:
        method = req.method.upper()
        if method in ("GET", "HEAD"):
            if target.name is None:
                if watch_prefix or req.query.get("watch") in ("1", "true", "True"):
                    return "watch"
                return "list"
            if watch_prefix:
                return "watch"
            return "get"
        if method == "DELETE" and target.name is None:
            return "deletecollection"
        verb = _VERB_BY_METHOD.get(method)
        if verb is None:
            raise ApiError.method_not_allowed(method, req.path)
        return verb

    # -- authentication and authorization ----------------------------------------------------

    def _authenticate(self, req: ApiRequest) -> UserInfo:
        if not self.authenticators:
            return ADMIN
        for authenticator in self.authenticators:
            user = authenticator.authenticate(dict(req.headers))
            if user is not None:
                return user
        raise ApiError.unauthorized()

    def _authorize(self, user: UserInfo, verb: str, target: Target, path: str) -> None:
        if not self.authorizers:
            return
        attributes = RequestAttributes(
            user=user, verb=verb, resource_request=True, api_group=target.kind.group,
            api_version=target.kind.version, resource=target.kind.plural,
            subresource=target.subresource or "", namespace=target.namespace or "",
            name=target.name or "", path=path)
        self._decide(attributes, lambda: (
            f'User "{user.name}" cannot {verb} resource "{target.kind.plural}"'
            + (f'/{target.subresource}' if target.subresource else "")
            + (f' in API group "{target.kind.group}"')
            + (f' in the namespace "{target.namespace}"' if target.namespace
               else " at the cluster scope")))

    def _authorize_path(self, user: UserInfo, req: ApiRequest, path: str) -> None:
        if not self.authorizers:
            return
        verb = req.method.lower()
        attributes = RequestAttributes(user=user, verb=verb, resource_request=False, path=path)
        self._decide(attributes, lambda: f'User "{user.name}" cannot {verb} path "{path}"')

    def _decide(self, attributes: RequestAttributes, message: Any) -> None:
        for authorizer in self.authorizers:
            decision = authorizer.authorize(attributes)
            if decision == "allow":
                return
            if decision == "deny":
                break
        raise ApiError.forbidden(message())


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
