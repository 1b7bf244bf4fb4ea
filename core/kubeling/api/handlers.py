"""The verbs of the request pipeline, one for every kind.

``get``/``list``/``watch`` read through the resource's watch cache (or storage when a
consistent or historical read needs it); ``create``/``update``/``patch``/``delete`` run
decode -> schema check -> strategy -> admission -> storage compare-and-swap, so every
kind, built-in or contributed by a plugin, follows the same rules.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from kubeling.api import apply as managed_fields
from kubeling.api import tables
from kubeling.api.admission import AdmissionRequest
from kubeling.api.auth import UserInfo
from kubeling.api.duplicates import (
    NO_DUPLICATES,
    Duplicates,
    decode_yaml_noting_duplicates,
    json_duplicates,
)
from kubeling.api.encoding import (
    PROTOBUF,
    decode_body,
    decode_stored,
    encode_for_storage,
    stored_with_rv,
)
from kubeling.api.errors import ApiError, Cause
from kubeling.api.patch import PatchError, json_merge_patch, json_patch, strategic_merge_patch
from kubeling.api.registry import KindInfo
from kubeling.api.request import ApiRequest, ApiResponse
from kubeling.api.schema import schema_for
from kubeling.api.selectors import (
    SelectorError,
    label_selector_from_dict,
    parse_field_selector,
    parse_label_selector,
)
from kubeling.api.strategy import spec_of
from kubeling.api.watch import CachedObject, ObjectFilter, Watcher, storage_events
from kubeling.storage import (
    CompactedError,
    ConflictError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
)

if TYPE_CHECKING:
    from kubeling.api.server import ApiServer

__all__ = ["Handlers", "Target"]

Obj = dict[str, Any]

PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
BODY_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
MAX_CONFLICT_RETRIES = 20
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_OMITTED_WHEN_EMPTY = ("labels", "annotations", "ownerReferences", "finalizers",
                       "managedFields", "generateName")


def _drop_empty_meta(meta: Obj) -> None:
    """Drop empty collections from ObjectMeta, as Kubernetes' JSON (``omitempty``) does:
    a patch that removes the last label or owner reference leaves no ``labels: {}`` or
    ``ownerReferences: []`` behind."""
    for key in _OMITTED_WHEN_EMPTY:
        if key in meta and meta[key] in ({}, [], None, ""):
            del meta[key]


@attrs.frozen
class Target:
    """What a request addresses."""

    kind: KindInfo
    namespace: str | None
    name: str | None
    subresource: str | None


def now_rfc3339(offset_seconds: float = 0) -> str:
    moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=offset_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _dry_run(req: ApiRequest) -> bool:
    value = req.query.get("dryRun")
    if value is None:
        return False
    if value != "All":
        raise ApiError.bad_request(f'unsupported dryRun value "{value}": only "All" is '
                                   f"supported")
    return True


def _field_validation(req: ApiRequest) -> str:
    value = req.query.get("fieldValidation", "Warn") or "Warn"
    if value not in ("Strict", "Warn", "Ignore"):
        options = {"POST": "CreateOptions", "PUT": "UpdateOptions"}.get(req.method.upper(),
                                                                         "PatchOptions")
        raise ApiError.invalid(options, "meta.k8s.io", "", [Cause.not_supported(
            "fieldValidation", value, ("", "Ignore", "Strict", "Warn"))])
    return value


def _strict_problems(unknown: tuple[str, ...], duplicates: Duplicates, *, strict: bool,
                     patch: bool) -> list[str]:
    """The strict decoding problems of a body, worded and ordered as Kubernetes does.

    JSON: ``duplicate field "<path>"`` and ``unknown field "<path>"`` in document order, a
    field both repeated and unknown (or inside an unknown one) reported as unknown only; for
    a patch the patch's duplicates come first.  YAML: yaml.v2's ``line N: key "k" already
    set in map`` lines first (one ``yaml: unmarshal errors:`` error when ``strict``), then
    the unknown fields.
    """
    found = [f'unknown field "{f}"' for f in unknown]
    if duplicates.yaml_lines:
        lines = list(duplicates.yaml_lines)
        return (["yaml: unmarshal errors:\n  " + "\n  ".join(lines)] if strict else lines) \
            + found
    if not duplicates.fields:
        return found
    repeated = [f'duplicate field "{f}"' for f in duplicates.fields]
    if patch:
        return repeated + found
    last = len(duplicates.order)
    ranked = [(duplicates.order.get(u, last + i), text) for i, (u, text)
              in enumerate(zip(unknown, found, strict=True))]
    ranked += [(duplicates.order[f], text) for f, text in zip(duplicates.fields, repeated,
                                                               strict=True)
               if not any(f == u or f.startswith((u + ".", u + "[")) for u in unknown)]
    return [text for _, text in sorted(ranked, key=lambda pair: pair[0])]


def _warning_header(warnings: list[str]) -> dict[str, str]:
    if not warnings:
        return {}
    return {"Warning": ", ".join('299 - "' + w.replace('"', '\\"') + '"' for w in warnings)}


class Handlers:
    """The verbs, shared by every kind."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.storage = server.storage

    async def dispatch(self, verb: str, t: Target, req: ApiRequest, user: UserInfo
                       ) -> ApiResponse:
        sub = t.subresource
        if sub is not None:
            custom = self.server.subresource_handlers.get((t.kind.group, t.kind.plural, sub))
            if custom is not None:
                return await custom(self.server, verb, t, req, user)
        else:
            computed = self.server.resource_handlers.get((t.kind.group, t.kind.plural))
            if computed is not None:
                return await computed(self.server, verb, t, req, user)
        if sub is None or sub in ("status", "ephemeralcontainers"):
            handler = {
                "get": self.get, "list": self.list, "watch": self.watch,
                "create": self.create, "update": self.update, "patch": self.patch,
                "delete": self.delete, "deletecollection": self.delete_collection,
            }[verb]
            if sub is not None and verb not in ("get", "update", "patch"):
                raise ApiError.method_not_allowed(req.method, req.path)
            return await handler(t, req, user)
        if sub == "scale":
            return await self.scale(verb, t, req, user)
        if sub == "binding" and verb == "create":
            return await self.bind(t, req, user)
        if sub == "finalize" and verb == "update":
            return await self.update(t, req, user)
        raise ApiError.method_not_allowed(req.method, req.path)

    # -- decoding ---------------------------------------------------------------------------

    def _decode(self, t: Target, req: ApiRequest, *, expect_kind: str | None = None,
                expect_api_version: str | None = None) -> tuple[Obj, list[str]]:
        """The request body as an object of the target kind, schema-checked."""
        limit = self.server.settings.max_request_bytes
        if len(req.body) > limit:
            raise ApiError.too_large(limit)
        content_type = (req.header("content-type") or "application/json").split(";")[0].strip()
        if content_type not in BODY_TYPES and not content_type.endswith(("+json", "+yaml")):
            raise ApiError.unsupported_media_type(content_type, BODY_TYPES)
        duplicates = NO_DUPLICATES
        noting = expect_kind is None and _field_validation(req) != "Ignore"
        if noting and "yaml" in content_type:
            obj, duplicates = decode_yaml_noting_duplicates(req.body)
        else:
            obj = decode_body(req.body, content_type)
            if noting and not content_type.startswith(PROTOBUF):
                duplicates = json_duplicates(req.body, obj)
        return self._check_object(t, obj, req, expect_kind=expect_kind,
                                  expect_api_version=expect_api_version, duplicates=duplicates)

    def _check_object(self, t: Target, obj: Any, req: ApiRequest, *,
                      expect_kind: str | None = None,
                      expect_api_version: str | None = None,
                      duplicates: Duplicates = NO_DUPLICATES,
                      patch: bool = False) -> tuple[Obj, list[str]]:
        """Check a decoded body as the target kind: apiVersion and kind, the schema, and
        (unless ``expect_kind``) unknown and ``duplicates`` fields per ``fieldValidation``:
        a 400 when Strict, the warnings to send when Warn.

        :param duplicates: what the body (or, with ``patch``, the patch) set twice.
        :param patch: ``obj`` is a patched object: the patch's duplicates come first.
        """
        kind = t.kind
        want_kind = expect_kind or kind.kind
        want_version = expect_api_version or kind.api_version
        if not isinstance(obj, dict):
            raise ApiError.bad_request(f"the request body must be a {want_kind} object, not "
                                       f"{type(obj).__name__}")
        got_version = obj.get("apiVersion")
        got_kind = obj.get("kind")
        if got_version not in (None, "") and got_version != want_version:
            raise ApiError.bad_request(
                f"the API version in the data ({got_version}) does not match the expected API "
                f"version ({want_version})")
        if got_kind not in (None, "") and got_kind != want_kind:
            raise ApiError.bad_request(
                f"the kind in the data ({got_kind}) does not match the expected kind "
                f"({want_kind}) of {req.path}")
        obj["apiVersion"] = want_version
        obj["kind"] = want_kind
        warnings: list[str] = []
        if expect_kind is None:
            mode = _field_validation(req)
            unknown: tuple[str, ...] = ()
            if kind.model is not None:
                result = schema_for(kind.model).check(obj, unknown=mode.lower())
                if result.errors:
                    details = "; ".join(f"{path}: {msg}" if path else msg
                                        for path, msg in result.errors)
                    raise ApiError.bad_request(f"{want_kind} in version \"{kind.version}\" "
                                               f"cannot be handled as a {want_kind}: {details}")
                unknown = result.unknown_fields
            problems = _strict_problems(unknown, duplicates, strict=mode == "Strict",
                                        patch=patch)
            if problems and mode == "Strict":
                raise ApiError.bad_request(
                    f'{want_kind} in version "{kind.version}" cannot be handled as a '
                    f"{want_kind}: strict decoding error: {', '.join(problems)}")
            if mode == "Warn":
                warnings = problems
        meta = obj.get("metadata")
        if meta is None:
            obj["metadata"] = {}
        elif not isinstance(meta, dict):
            raise ApiError.bad_request("metadata must be an object")
        return obj, warnings

    def _filter(self, t: Target, req: ApiRequest) -> ObjectFilter:
        q = req.query
        try:
            label = parse_label_selector(q.get("labelSelector", "") or "")
            field = parse_field_selector(q.get("fieldSelector", "") or "")
            field.validate(t.kind.supported_field_selectors)
        except SelectorError as exc:
            raise ApiError.bad_request(str(exc)) from None
        namespace = t.namespace if t.kind.namespaced else None
        name = t.name
        for fld, op, value in field.requirements:
            # metadata.name / metadata.namespace equality narrows the scan
            if op in ("=", "==") and fld == "metadata.namespace" and t.kind.namespaced:
                if namespace is not None and namespace != value:
                    namespace = "\x00nothing"
                namespace = namespace or value
        return ObjectFilter(namespace=namespace, name=name, label=label, field=field,
                            fields_of=t.kind.strategy.selectable_fields)

    # -- reading ----------------------------------------------------------------------------

    async def _read(self, t: Target) -> KeyValue:
        kv = await self.storage.get(t.kind.key(t.namespace, t.name or ""))
        if kv is None:
            raise ApiError.not_found(t.kind.plural, t.kind.group, t.name or "")
        return kv

    async def get(self, t: Target, req: ApiRequest, user: UserInfo) -> ApiResponse:
        kind = t.kind
        key = kind.key(t.namespace, t.name or "")
        rv = req.query.get("resourceVersion")
        cache = self.server.cache_for(kind)
        raw: bytes | None = None
        obj: Obj | None = None
        if rv == "0" or (rv and await cache.wait_for(int(_rv(rv)), 0)):
            cached = cache.get(key)
            if cached is not None:
                raw, obj = cached.raw, cached.obj
        else:
            kv = await self.storage.get(key)
            if kv is not None:
                raw = stored_with_rv(kv.value, kv.mod_revision)
        if raw is None:
            raise ApiError.not_found(kind.plural, kind.group, t.name or "")
        if tables.wants_table(req):
            if obj is None:
                obj = orjson.loads(raw)
            return ApiResponse.json(tables.table(kind, [obj], req, list_rv=None))
        if tables.wants_metadata(req):
            obj = obj if obj is not None else orjson.loads(raw)
            return ApiResponse.json(tables.partial_metadata(obj))
        return ApiResponse.raw(raw)

    async def list(self, t: Target, req: ApiRequest, user: UserInfo) -> ApiResponse:
        kind = t.kind
        q = req.query
        flt = self._filter(t, req)
        limit = _int_param(q, "limit")
        token = q.get("continue") or ""
        rv = q.get("resourceVersion") or ""
        match = q.get("resourceVersionMatch") or ""
        if match and match not in ("NotOlderThan", "Exact"):
            raise ApiError.bad_request(f'resourceVersionMatch "{match}" is not one of '
                                       f"NotOlderThan, Exact")
        if match and not rv:
            raise ApiError.bad_request("resourceVersionMatch is forbidden unless "
                                       "resourceVersion is provided")
        if token and rv:
            raise ApiError.bad_request("specifying resource version is not allowed when using "
                                       "continue")
        cache = self.server.cache_for(kind)
        items: list[CachedObject]
        cont = ""
        if token:
            at_rev, start_key = self._decode_continue(kind, token)
            items, list_rev, cont = await self._list_storage(kind, flt, at_rev, start_key,
                                                             limit)
        elif rv == "0" or (rv and match != "Exact"):
            wanted = _rv(rv)
            if wanted == 0 or await cache.wait_for(wanted, 3.0):
                items, list_rev = cache.list(flt), cache.revision
            else:
                items, list_rev, cont = await self._list_storage(kind, flt, 0, None, limit)
        elif rv:  # Exact
            items, list_rev, cont = await self._list_storage(kind, flt, _rv(rv), None, limit)
        else:
            current = await self.storage.current_revision()
            if not limit and cache.revision >= current:
                items, list_rev = cache.list(flt), cache.revision
            else:
                items, list_rev, cont = await self._list_storage(kind, flt, 0, None, limit)
        if tables.wants_table(req):
            return ApiResponse.json(tables.table(kind, [c.obj for c in items], req,
                                                 list_rv=str(list_rev), cont=cont))
        meta: Obj = {"resourceVersion": str(list_rev)}
        if cont:
            meta["continue"] = cont
        if tables.wants_metadata(req):
            return ApiResponse.json(tables.partial_metadata_list(
                [c.obj for c in items], meta))
        head = (b'{"kind":"' + kind.kind.encode() + b'List","apiVersion":"'
                + kind.api_version.encode() + b'","metadata":' + orjson.dumps(meta)
                + b',"items":[')
        return ApiResponse.raw(head + b",".join(c.raw for c in items) + b"]}")

    async def _list_storage(self, kind: KindInfo, flt: ObjectFilter, at_rev: int,
                            start_key: str | None, limit: int
                            ) -> tuple[list[CachedObject], int, str]:
        prefix = kind.namespace_prefix(flt.namespace)
        if flt.name is not None:
            start_key = max(start_key or "", kind.key(flt.namespace, flt.name))
        out: list[CachedObject] = []
        batch = max(limit, 500) if limit else 0
        rev = at_rev
        cont = ""
        try:
            while True:
                res = await self.storage.range(prefix, start_key=start_key, revision=rev,
                                               limit=batch)
                rev = res.revision
                kvs = res.kvs
                # the namespace is the prefix; other filters need the decoded object
                check = flt.name is not None or flt.label is not None or flt.field is not None
                for i, kv in enumerate(kvs):
                    obj = decode_stored(kv.value, kv.mod_revision) if check else None
                    if obj is not None and not flt.matches(obj):
                        continue
                    out.append(CachedObject(kv.key, obj,
                                            stored_with_rv(kv.value, kv.mod_revision),
                                            kv.mod_revision))
                    if limit and len(out) >= limit:
                        if i + 1 < len(kvs) or res.more:
                            cont = self._encode_continue(kind, rev, kv.key)
                        return out, rev, cont
                if not res.more or not kvs:
                    return out, rev, cont
                start_key = kvs[-1].key + "\x00"
        except CompactedError:
            raise ApiError.gone(
                "The provided continue parameter is too old to display a consistent list "
                "result. You can start a new list without the continue parameter.") from None

    @staticmethod
    def _encode_continue(kind: KindInfo, rev: int, last_key: str) -> str:
        payload = {"v": "meta.k8s.io/v1", "rv": rev,
                   "start": last_key[len(kind.key_prefix):] + "\x00"}
        return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")

    @staticmethod
    def _decode_continue(kind: KindInfo, token: str) -> tuple[int, str]:
        try:
            padded = token + "=" * (-len(token) % 4)
            payload = orjson.loads(base64.urlsafe_b64decode(padded))
            rev = int(payload["rv"])
            start = str(payload["start"])
        except Exception:
            raise ApiError.bad_request("continue key is not valid: it was not returned by "
                                       "this server") from None
        if rev <= 0 or ".." in start or start.startswith("/"):
            raise ApiError.bad_request("continue key is not valid")
        return rev, kind.key_prefix + start

    # -- watch --------------------------------------------------------------------------------

    async def watch(self, t: Target, req: ApiRequest, user: UserInfo) -> ApiResponse:
        kind = t.kind
        q = req.query
        flt = self._filter(t, req)
        if t.name is not None:  # /watch/namespaces/x/pods/name
            flt = ObjectFilter(namespace=flt.namespace, name=t.name, label=flt.label,
                               field=flt.field, fields_of=flt.fields_of)
        rv = q.get("resourceVersion") or ""
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1", "True")
        send_initial = q.get("sendInitialEvents") in ("true", "1", "True")
        timeout = _int_param(q, "timeoutSeconds") or \
            self.server.settings.default_watch_timeout_seconds
        cache = self.server.cache_for(kind)
        initial = rv in ("", "0") or send_initial
        after = _rv(rv) if rv else 0
        if not initial and after > cache.revision:
            await cache.wait_for(after, 3.0)
        stream: AsyncIterator[bytes]
        if initial or cache.can_replay_from(after):
            watcher = cache.watch(flt, after, initial=initial)
            stream = self._stream_watcher(kind, cache, watcher, timeout, bookmarks,
                                          send_initial and bookmarks)
        else:
            stream = self._stream_storage(kind, flt, after, timeout)
        stream = tables.transform_events(kind, stream, req)  # as=Table / metadata watches
        return ApiResponse(status=200, stream=stream,
                           headers={"Cache-Control": "no-cache, private"})

    async def _stream_watcher(self, kind: KindInfo, cache: Any, watcher: Watcher,
                              timeout: int, bookmarks: bool, initial_end: bool
                              ) -> AsyncIterator[bytes]:
        deadline = time.monotonic() + timeout
        interval = self.server.settings.bookmark_interval_seconds
        next_bookmark = time.monotonic() + interval
        last_rev = watcher.after_rev
        try:
            if initial_end:
                # everything pushed at start is the initial state; mark its end
                items = await watcher.next_batch(0)
                chunks = [_event_line(typ, obj.raw) for item in items if item
                          for typ, obj in (item,)]
                chunks.append(_bookmark(kind, cache.revision, initial_end=True))
                yield b"".join(chunks)
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return
                wait = deadline - now
                if bookmarks:
                    wait = min(wait, max(next_bookmark - now, 0))
                items = await watcher.next_batch(wait)
                chunks = []
                for item in items:
                    if item is None:
                        if chunks:
                            yield b"".join(chunks)
                        if watcher.error:
                            yield _error_line(ApiError.gone(watcher.error))
                        return
                    typ, obj = item
                    last_rev = max(last_rev, obj.rev)
                    chunks.append(_event_line(typ, obj.raw))
                if chunks:
                    yield b"".join(chunks)
                if bookmarks and time.monotonic() >= next_bookmark:
                    next_bookmark = time.monotonic() + interval
                    yield _bookmark(kind, max(cache.revision, last_rev))
        finally:
            cache.unwatch(watcher)

    async def _stream_storage(self, kind: KindInfo, flt: ObjectFilter, after: int,
                              timeout: int) -> AsyncIterator[bytes]:
        events = storage_events(self.storage, kind, flt, after)
        try:
            async with asyncio.timeout(timeout):
                async for typ, obj in events:
                    yield _event_line(typ, obj.raw)
        except TimeoutError:
            return
        except CompactedError as exc:
            yield _error_line(ApiError.gone(f"too old resource version: {after} "
                                            f"({exc.compacted})"))
        finally:
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]

    # -- create -------------------------------------------------------------------------------

    async def create(self, t: Target, req: ApiRequest, user: UserInfo) -> ApiResponse:
        if t.name is not None:
            raise ApiError.method_not_allowed("POST", req.path)
        if t.kind.namespaced and not t.namespace:
            raise ApiError.method_not_allowed("POST", req.path)
        obj, warnings = self._decode(t, req)
        created = await self.create_object(t, obj, user=user, dry_run=_dry_run(req),
                                           manager=managed_fields.manager_name(req))
        return ApiResponse.raw(created, 201, headers=_warning_header(warnings))

    async def create_object(self, t: Target, obj: Obj, *, user: UserInfo,
                            dry_run: bool = False, manager: str | None = None) -> bytes:
        """Run the create pipeline for a decoded object; returns the stored JSON.

        :param manager: the field manager to record in managedFields (None: none).
        """
        kind = t.kind
        strategy = kind.strategy
        meta = obj["metadata"]
        if kind.namespaced:
            ns = meta.get("namespace")
            if ns and t.namespace and ns != t.namespace:
                raise ApiError.bad_request("the namespace of the provided object does not match "
                                           "the namespace sent on the request")
            meta["namespace"] = t.namespace or ns
        _drop_empty_meta(meta)
        generate = meta.get("generateName")
        if not meta.get("name") and generate:
            meta["name"] = generate + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
        for key in ("uid", "resourceVersion", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if strategy.tracks_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        strategy.default(obj)
        await self._admit("CREATE", t, obj, None, user, dry_run, mutating=True)
        strategy.prepare_for_create(obj)
        if manager is not None:  # managedFields (kubeling.api.apply)
            managed_fields.track_update(kind, None, None, obj, manager)
        causes = strategy.validate(obj, namespaced=kind.namespaced)
        name = meta.get("name") or ""
        if causes:
            raise ApiError.invalid(kind.kind, kind.group, name, causes)
        await self._admit("CREATE", t, obj, None, user, dry_run, mutating=False)
        if kind.namespaced:
            await self._check_namespace(meta["namespace"])
        key = kind.key(meta.get("namespace"), name)
        hook = self.server.write_hooks.get((kind.group, kind.plural))  # e.g. Service IPs
        if dry_run:
            if await self.storage.get(key) is not None:
                raise ApiError.already_exists(kind.plural, kind.group, name)
            if hook is not None:
                await hook.on_create(obj, dry_run=True)
            return orjson.dumps(obj)
        reservation = await hook.on_create(obj) if hook is not None else None
        value = encode_for_storage(obj)
        try:
            rev = await self.storage.create(key, value)
        except BaseException as exc:
            if reservation is not None:
                await reservation.abort()
            if isinstance(exc, KeyExistsError):
                raise ApiError.already_exists(kind.plural, kind.group, name) from None
            raise
        if reservation is not None:
            await reservation.commit()
        return stored_with_rv(value, rev)

    async def _check_namespace(self, namespace: str) -> None:
        ns_kind = self.server.registry.get("", "v1", "namespaces")
        if ns_kind is None:
            return
        key = ns_kind.key(None, namespace)
        cached = self.server.cache_for(ns_kind).get(key)
        ns = cached.obj if cached is not None else None
        if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp") is None:
            kv = await self.storage.get(key)
            ns = decode_stored(kv.value, kv.mod_revision) if kv is not None else None
        if ns is None:
            raise ApiError.not_found("namespaces", "", namespace)
        if (ns.get("metadata") or {}).get("deletionTimestamp") or \
                (ns.get("status") or {}).get("phase") == "Terminating":
            raise ApiError.forbidden(
                f"unable to create new content in namespace {namespace} because it is being "
                f"terminated")

    def _cached(self, group: str, plural: str, namespace: str | None, name: str
                ) -> Obj | None:
        for (g, _, p), cache in self.server.caches.items():
            if g == group and p == plural:
                cached = cache.get(cache.kind.key(namespace, name))
                return cached.obj if cached is not None else None
        return None

    def _cached_list(self, group: str, plural: str, namespace: str | None) -> list[Obj]:
        for (g, _, p), cache in self.server.caches.items():
            if g == group and p == plural:
                return [c.obj for c in cache.list(ObjectFilter(namespace=namespace))]
        return []

    async def _admit(self, operation: str, t: Target, obj: Obj | None, old: Obj | None,
                     user: UserInfo, dry_run: bool, *, mutating: bool) -> None:
        admitters = (self.server.mutating_admitters if mutating
                     else self.server.validating_admitters)
        if not admitters:
            return
        meta = (obj or old or {}).get("metadata") or {}
        request = AdmissionRequest(operation=operation, kind=t.kind,
                                   namespace=meta.get("namespace"), name=meta.get("name", ""),
                                   subresource=t.subresource, object=obj, old_object=old,
                                   user=user, dry_run=dry_run, lookup=self._cached,
                                   list_objects=self._cached_list)
        for admitter in admitters:
            admitter.admit(request)

    # -- update and patch ---------------------------------------------------------------------

    async def update(self, t: Target, req: ApiRequest, user: UserInfo) -> ApiResponse:
        body, warnings = self._decode(t, req)
        meta = body["metadata"]
        if meta.get("name") and meta["name"] != t.name:
            raise ApiError.bad_request(f"the name of the object ({meta['name']}) does not "
                                       f"match the name on the URL ({t.name})")
        if t.kind.namespaced and meta.get("namespace") and meta["namespace"] != t.namespace:
            raise ApiError.bad_request("the namespace of the provided object does not match "
                                       "the namespace sent on the request")
        precondition = meta.get("resourceVersion") or None
        if not precondition and not t.kind.strategy.allow_unconditional_update:
            raise ApiError.invalid(t.kind.kind, t.kind.group, t.name or "", [Cause.invalid(
                "metadata.resourceVersion", 0, "must be specified for an update")])

        body_bytes = orjson.dumps(body)

        def compute(_current: Obj) -> Obj:
            return orjson.loads(body_bytes)  # a fresh copy for every attempt

        result = await self.update_object(t, compute, user=user, dry_run=_dry_run(req),
                                          precondition=precondition, create_body=body,
                                          manager=managed_fields.manager_name(req))
        return ApiResponse.raw(result[0], result[1], headers=_warning_header(warnings))

    async def patch(self, t: Target, req: ApiRequest, user: UserInfo) -> ApiResponse:
        content_type = (req.header("content-type") or "").split(";")[0].strip()
        if content_type == managed_fields.APPLY_PATCH:  # server-side apply
            return await managed_fields.apply_request(self, t, req, user)
        managed_fields.reject_force(req)
        if content_type not in PATCH_TYPES:
            raise ApiError.unsupported_media_type(content_type or "(none)", PATCH_TYPES)
        limit = self.server.settings.max_request_bytes
        if len(req.body) > limit:
            raise ApiError.too_large(limit)
        patch = decode_body(req.body, "application/json")
        mode = _field_validation(req)
        kind = t.kind
        warnings: list[str] = []
        duplicates = NO_DUPLICATES
        if mode != "Ignore" and content_type != "application/json-patch+json":
            duplicates = json_duplicates(req.body, patch)

        def compute(current: Obj) -> Obj:
            nonlocal warnings
            try:
                if content_type == "application/json-patch+json":
                    if not isinstance(patch, list):
                        raise ApiError.bad_request("a JSON patch must be a list of operations")
                    patched = json_patch(current, patch)
                elif content_type == "application/merge-patch+json":
                    if not isinstance(patch, dict):
                        raise ApiError.bad_request("a merge patch must be a JSON object")
                    patched = json_merge_patch(current, patch)
                else:
                    if not isinstance(patch, dict):
                        raise ApiError.bad_request("a strategic merge patch must be a JSON "
                                                   "object")
                    meta = schema_for(kind.model) if kind.model is not None else None
                    patched = strategic_merge_patch(current, patch, meta)
            except PatchError as exc:
                raise ApiError(422 if content_type == "application/json-patch+json" else 400,
                               "Invalid" if content_type == "application/json-patch+json"
                               else "BadRequest", str(exc)) from None
            patched_meta = patched.get("metadata") if isinstance(patched, dict) else None
            if isinstance(patched_meta, dict) and patched_meta.get("resourceVersion") not in (
                    None, current["metadata"].get("resourceVersion")):
                # a patch that sets resourceVersion makes it a precondition (kubectl's
                # managedFields migration relies on this)
                raise ApiError.stale(kind.plural, kind.group, t.name or "")
            checked, warnings = self._check_object(
                t, patched, attrs.evolve(req, query={**req.query, "fieldValidation": mode}),
                duplicates=duplicates, patch=True)
            return checked

        precondition = None
        if isinstance(patch, dict):
            precondition = (patch.get("metadata") or {}).get("resourceVersion") \
                if isinstance(patch.get("metadata"), dict) else None
        body, status = await self.update_object(t, compute, user=user, dry_run=_dry_run(req),
                                                precondition=precondition,
                                                manager=managed_fields.manager_name(req))
        return ApiResponse.raw(body, status, headers=_warning_header(warnings))

    async def update_object(self, t: Target, compute: Callable[[Obj], Obj], *,
                            user: UserInfo, dry_run: bool = False,
                            precondition: str | None = None,
                            create_body: Obj | None = None,
                            manager: str | None = None) -> tuple[bytes, int]:
        """The update pipeline with compare-and-swap; retries a lost race unless the client
        gave a resourceVersion.  Returns the new JSON and the HTTP status.

        :param manager: the field manager to record in managedFields (None: none).
        """
        kind = t.kind
        strategy = kind.strategy
        key = kind.key(t.namespace, t.name or "")
        sub = t.subresource
        for _ in range(MAX_CONFLICT_RETRIES):
            kv = await self.storage.get(key)
            if kv is None:
                if create_body is not None and strategy.allow_create_on_update and sub is None:
                    created = await self.create_object(
                        Target(kind, t.namespace, None, None), create_body, user=user,
                        dry_run=dry_run, manager=manager)
                    return created, 201
                raise ApiError.not_found(kind.plural, kind.group, t.name or "")
            current = decode_stored(kv.value, kv.mod_revision)
            # a second decode is the cheapest deep copy of the stored object
            new = compute(decode_stored(kv.value, kv.mod_revision))
            if precondition and precondition != str(kv.mod_revision):
                raise ApiError.stale(kind.plural, kind.group, t.name or "")
            self._keep_system_meta(new, current)
            if sub == "status":
                strategy.prepare_for_status_update(new, current)
                causes = strategy.validate_status_update(new, current)
            elif sub == "ephemeralcontainers":
                wanted = (new.get("spec") or {}).get("ephemeralContainers")
                new = decode_stored(kv.value, kv.mod_revision)
                new.setdefault("spec", {})["ephemeralContainers"] = wanted
                causes = strategy.validate_ephemeral_update(new, current)
            elif sub == "finalize":
                finalizers = (new.get("spec") or {}).get("finalizers")
                new = decode_stored(kv.value, kv.mod_revision)
                new.setdefault("spec", {})["finalizers"] = finalizers or []
                causes = []
            else:
                strategy.default(new)
                await self._admit("UPDATE", t, new, current, user, dry_run, mutating=True)
                strategy.prepare_for_update(new, current)
                causes = strategy.validate_update(new, current, namespaced=kind.namespaced)
                causes += _finalizer_causes(new, current)
            if manager is not None:  # managedFields (kubeling.api.apply)
                managed_fields.track_update(kind, sub, current, new, manager)
            if causes:
                raise ApiError.invalid(kind.kind, kind.group, t.name or "", causes)
            await self._admit("UPDATE", t, new, current, user, dry_run, mutating=False)
            if strategy.tracks_generation and spec_of(new) != spec_of(current):
                new["metadata"]["generation"] = int(current["metadata"].get("generation")
                                                    or 1) + 1
            new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            if new == current:
                return stored_with_rv(kv.value, kv.mod_revision), 200
            # as Kubernetes' ShouldDeleteDuringUpdate: only once the grace period is over
            # (a pod still terminating on its node keeps receiving status updates)
            finished = (new["metadata"].get("deletionTimestamp") is not None
                        and not new["metadata"].get("deletionGracePeriodSeconds")
                        and not strategy.has_pending_finalizers(new))
            hook = self.server.write_hooks.get((kind.group, kind.plural))  # e.g. Service IPs
            allocates = hook is not None and sub is None and not finished
            if dry_run:
                if allocates:
                    await hook.on_update(new, current, dry_run=True)
                return orjson.dumps(new), 200
            reservation = await hook.on_update(new, current) if allocates else None
            value = encode_for_storage(new)
            try:
                if finished:
                    await self.storage.delete(key, mod_revision=kv.mod_revision)
                    if hook is not None:
                        await hook.on_delete(current)
                    return stored_with_rv(value, kv.mod_revision), 200
                rev = await self.storage.update(key, value, mod_revision=kv.mod_revision)
            except ConflictError:
                if reservation is not None:
                    await reservation.abort()
                if precondition:
                    raise ApiError.stale(kind.plural, kind.group, t.name or "") from None
                continue
            except BaseException as exc:
                if reservation is not None:
                    await reservation.abort()
                if isinstance(exc, KeyNotFoundError):
                    raise ApiError.not_found(kind.plural, kind.group, t.name or "") from None
                raise
            if reservation is not None:
                await reservation.commit()
            return stored_with_rv(value, rev), 200
        raise ApiError.conflict(kind.plural, kind.group, t.name or "",
                                "too many concurrent updates; try again")

    @staticmethod
    def _keep_system_meta(new: Obj, current: Obj) -> None:
        meta = new.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError.bad_request("metadata must be an object")
        cur = current["metadata"]
        for key in ("uid", "creationTimestamp", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "generation", "name", "namespace"):
            if key in cur:
                meta[key] = cur[key]
            else:
                meta.pop(key, None)
        meta.pop("selfLink", None)
        meta.pop("resourceVersion", None)
        _drop_empty_meta(meta)

    # -- delete -------------------------------------------------------------------------------

    def _delete_options(self, req: ApiRequest) -> Obj:
        options: Obj = {}
        if req.body.strip():
            body = decode_body(req.body, (req.header("content-type") or "application/json"))
            if not isinstance(body, dict):
                raise ApiError.bad_request("the request body must be DeleteOptions")
            options.update(body)
        q = req.query
        if "gracePeriodSeconds" in q:
            options["gracePeriodSeconds"] = _int_param(q, "gracePeriodSeconds")
        if "propagationPolicy" in q:
            options["propagationPolicy"] = q["propagationPolicy"]
        if "orphanDependents" in q:
            options["orphanDependents"] = q["orphanDependents"] in ("true", "1")
        if q.get("dryRun"):
            options["dryRun"] = [q["dryRun"]]
        policy = options.get("propagationPolicy")
        if policy is not None and policy not in ("Foreground", "Background", "Orphan"):
            raise ApiError.invalid("DeleteOptions", "", "", [Cause.not_supported(
                "propagationPolicy", policy, ("Foreground", "Background", "Orphan"))])
        dry = options.get("dryRun") or []
        if any(d != "All" for d in dry):
            raise ApiError.bad_request('unsupported dryRun value: only "All" is supported')
        grace = options.get("gracePeriodSeconds")
        if grace is not None and not isinstance(grace, int):
            raise ApiError.bad_request("gracePeriodSeconds must be an integer")
        return options

    async def delete(self, t: Target, req: ApiRequest, user: UserInfo) -> ApiResponse:
        options = self._delete_options(req)
        body, status = await self.delete_object(t, options, user=user)
        return ApiResponse.raw(body, status)

    async def delete_object(self, t: Target, options: Obj, *, user: UserInfo
                            ) -> tuple[bytes, int]:
        kind = t.kind
        strategy = kind.strategy
        key = kind.key(t.namespace, t.name or "")
        dry_run = bool(options.get("dryRun"))
        pre = options.get("preconditions") or {}
        for _ in range(MAX_CONFLICT_RETRIES):
            kv = await self._read(t)
            current = decode_stored(kv.value, kv.mod_revision)
            meta = current["metadata"]
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                raise ApiError.conflict(kind.plural, kind.group, t.name or "",
                                        f"Precondition failed: UID in precondition: "
                                        f"{pre['uid']}, UID in object meta: {meta.get('uid')}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
                raise ApiError.conflict(
                    kind.plural, kind.group, t.name or "",
                    f"Precondition failed: ResourceVersion in precondition: "
                    f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                    f"{meta['resourceVersion']}")
            await self._admit("DELETE", t, None, current, user, dry_run, mutating=False)
            new = decode_stored(kv.value, kv.mod_revision)
            nmeta = new["metadata"]
            finalizers = list(nmeta.get("finalizers") or [])
            policy = options.get("propagationPolicy")
            if policy is None and options.get("orphanDependents") is not None:
                policy = "Orphan" if options["orphanDependents"] else "Background"
            extra = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}.get(policy or "")
            if extra and extra not in finalizers:
                finalizers.append(extra)
            if policy == "Background" or (policy == "Foreground" and "orphan" in finalizers):
                finalizers = [f for f in finalizers if f != "orphan"]
            if policy == "Orphan":
                finalizers = [f for f in finalizers if f != "foregroundDeletion"]
            if finalizers:
                nmeta["finalizers"] = finalizers
            grace = strategy.deletion_grace_period(current, options.get("gracePeriodSeconds"))
            already = meta.get("deletionTimestamp") is not None
            if already:
                prior = meta.get("deletionGracePeriodSeconds")
                if grace == 0 or (prior is not None and grace < prior):
                    nmeta["deletionGracePeriodSeconds"] = grace
                    nmeta["deletionTimestamp"] = now_rfc3339(grace)
            else:
                nmeta["deletionTimestamp"] = now_rfc3339(grace)
                nmeta["deletionGracePeriodSeconds"] = grace
                strategy.prepare_for_delete(new)
            pending = strategy.has_pending_finalizers(new)
            if not pending and (nmeta["deletionGracePeriodSeconds"] or 0) == 0:
                if dry_run:
                    return self._deleted_response(kind, current), 200
                try:
                    await self.storage.delete(key, mod_revision=kv.mod_revision)
                except ConflictError:
                    continue
                except KeyNotFoundError:
                    raise ApiError.not_found(kind.plural, kind.group, t.name or "") from None
                hook = self.server.write_hooks.get((kind.group, kind.plural))
                if hook is not None:  # e.g. free the Service's IPs and ports
                    await hook.on_delete(current)
                return self._deleted_response(kind, current), 200
            if new == current or dry_run:
                return stored_with_rv(kv.value, kv.mod_revision) if not dry_run else \
                    orjson.dumps(new), 200
            value = encode_for_storage(new)
            try:
                rev = await self.storage.update(key, value, mod_revision=kv.mod_revision)
            except ConflictError:
                continue
            return stored_with_rv(value, rev), 200
        raise ApiError.conflict(kind.plural, kind.group, t.name or "",
                                "too many concurrent updates; try again")

    @staticmethod
    def _deleted_response(kind: KindInfo, obj: Obj) -> bytes:
        if getattr(kind.strategy, "return_deleted_object", False):
            return orjson.dumps(obj)
        meta = obj.get("metadata") or {}
        details: Obj = {"name": meta.get("name"), "kind": kind.plural, "uid": meta.get("uid")}
        if kind.group:
            details["group"] = kind.group
        return orjson.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                             "status": "Success", "details": details})

    async def delete_collection(self, t: Target, req: ApiRequest, user: UserInfo
                                ) -> ApiResponse:
        options = self._delete_options(req)
        flt = self._filter(t, req)
        # a consistent read from storage: the cache may lag (and would make us wait)
        matching, current, _ = await self._list_storage(t.kind, flt, 0, None, 0)
        deleted = []
        for cached in matching:
            meta = cached.obj["metadata"]
            target = Target(t.kind, meta.get("namespace"), meta["name"], None)
            try:
                body, _ = await self.delete_object(target, options, user=user)
            except ApiError as exc:
                if exc.code == 404:
                    continue
                raise
            obj = orjson.loads(body)
            deleted.append(obj if obj.get("kind") != "Status" else cached.obj)
        return ApiResponse.json({"kind": f"{t.kind.kind}List", "apiVersion": t.kind.api_version,
                                 "metadata": {"resourceVersion": str(current)},
                                 "items": deleted})

    # -- subresources -----------------------------------------------------------------------

    async def scale(self, verb: str, t: Target, req: ApiRequest, user: UserInfo
                    ) -> ApiResponse:
        scale_target = Target(t.kind, t.namespace, t.name, None)
        if verb == "get":
            kv = await self._read(scale_target)
            scale = _to_scale(decode_stored(kv.value, kv.mod_revision))
            if tables.wants_table(req):  # kubectl get --subresource=scale
                return ApiResponse.json(tables.scale_table(scale, req))
            return ApiResponse.json(scale)
        if verb not in ("update", "patch"):
            raise ApiError.method_not_allowed(req.method, req.path)
        if verb == "update":
            body = decode_body(req.body, req.header("content-type") or "application/json")
        else:
            kv = await self._read(scale_target)
            current_scale = _to_scale(decode_stored(kv.value, kv.mod_revision))
            ctype = (req.header("content-type") or "").split(";")[0]
            patch = decode_body(req.body, "application/json")
            try:
                body = (json_patch(current_scale, patch) if ctype.endswith("json-patch+json")
                        else json_merge_patch(current_scale, patch))
            except PatchError as exc:
                raise ApiError.bad_request(str(exc)) from None
        if not isinstance(body, dict):
            raise ApiError.bad_request("the request body must be a Scale object")
        replicas = (body.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ApiError.invalid("Scale", "autoscaling", t.name or "", [
                Cause.invalid("spec.replicas", replicas,
                              "must be greater than or equal to 0")])
        precondition = (body.get("metadata") or {}).get("resourceVersion") or None
        if verb == "patch" and b"resourceVersion" not in req.body:
            precondition = None  # read from the current object, not asked for: retry races

        def compute(current: Obj) -> Obj:
            current.setdefault("spec", {})["replicas"] = replicas
            return current

        raw, _ = await self.update_object(scale_target, compute, user=user,
                                          dry_run=_dry_run(req), precondition=precondition,
                                          manager=managed_fields.manager_name(
                                              req, subresource="scale"))
        return ApiResponse.json(_to_scale(orjson.loads(raw)))

    async def bind(self, t: Target, req: ApiRequest, user: UserInfo) -> ApiResponse:
        body = decode_body(req.body, req.header("content-type") or "application/json")
        if not isinstance(body, dict):
            raise ApiError.bad_request("the request body must be a Binding object")
        target = body.get("target") or {}
        node = target.get("name") if isinstance(target, dict) else None
        if not node:
            raise ApiError.invalid("Binding", "", t.name or "",
                                   [Cause.required("target.name")])
        if target.get("kind") not in (None, "", "Node"):
            raise ApiError.invalid("Binding", "", t.name or "", [Cause.not_supported(
                "target.kind", target.get("kind"), ("Node",))])
        pod_target = Target(t.kind, t.namespace, t.name, None)
        uid = ((body.get("metadata") or {}).get("uid")) if isinstance(body.get("metadata"),
                                                                        dict) else None

        def compute(current: Obj) -> Obj:
            meta = current["metadata"]
            if uid and meta.get("uid") != uid:
                raise ApiError.conflict("pods", "", t.name or "",
                                        f"Precondition failed: UID in precondition: {uid}, "
                                        f"UID in object meta: {meta.get('uid')}")
            if meta.get("deletionTimestamp"):
                raise ApiError.conflict("pods/binding", "", t.name or "",
                                        f"pod {t.name} is being deleted, cannot be assigned "
                                        f"to a host")
            spec = current.setdefault("spec", {})
            if spec.get("nodeName"):
                raise ApiError.conflict("pods/binding", "", t.name or "",
                                        f"pod {t.name} is already assigned to node "
                                        f"\"{spec['nodeName']}\"")
            if spec.get("schedulingGates"):
                raise ApiError.conflict("pods/binding", "", t.name or "",
                                        f"pod {t.name} has non-empty .spec.schedulingGates")
            spec["nodeName"] = node
            conditions = [c for c in (current.setdefault("status", {}).get("conditions") or [])
                          if c.get("type") != "PodScheduled"]
            conditions.append({"type": "PodScheduled", "status": "True",
                               "lastProbeTime": None,
                               "lastTransitionTime": now_rfc3339()})
            current["status"]["conditions"] = conditions
            return current

        await self._update_raw(pod_target, compute, dry_run=_dry_run(req))
        return ApiResponse.json({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                 "status": "Success", "code": 201}, 201)

    async def _update_raw(self, t: Target, compute: Callable[[Obj], Obj], *,
                          dry_run: bool) -> bytes:
        """A system update that bypasses the spec/status split (bindings)."""
        key = t.kind.key(t.namespace, t.name or "")
        for _ in range(MAX_CONFLICT_RETRIES):
            kv = await self._read(t)
            new = compute(decode_stored(kv.value, kv.mod_revision))
            if dry_run:
                return orjson.dumps(new)
            value = encode_for_storage(new)
            try:
                rev = await self.storage.update(key, value, mod_revision=kv.mod_revision)
            except ConflictError:
                continue
            return stored_with_rv(value, rev)
        raise ApiError.conflict(t.kind.plural, t.kind.group, t.name or "",
                                "too many concurrent updates; try again")


def _finalizer_causes(new: Obj, current: Obj) -> list[Cause]:
    if not current["metadata"].get("deletionTimestamp"):
        return []
    before = set(current["metadata"].get("finalizers") or [])
    added = [f for f in new["metadata"].get("finalizers") or [] if f not in before]
    if added:
        return [Cause.forbidden("metadata.finalizers",
                                "no new finalizers can be added if the object is being deleted, "
                                f"found new finalizers {added}")]
    return []


def _to_scale(obj: Obj) -> Obj:
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    selector = str(label_selector_from_dict(spec.get("selector"))) \
        if spec.get("selector") is not None else ""
    if obj.get("kind") == "ReplicationController":  # a plain label map, not a LabelSelector
        selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": meta["name"], "namespace": meta.get("namespace"),
                     "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion"),
                     "creationTimestamp": meta.get("creationTimestamp")},
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": {"replicas": status.get("replicas", 0), "selector": selector},
    }


def _int_param(query: Any, name: str) -> int:
    value = query.get(name)
    if value in (None, ""):
        return 0
    try:
        return int(value)
    except ValueError:
        raise ApiError.bad_request(f'{name} must be an integer, not "{value}"') from None


def _rv(value: str) -> int:
    try:
        rv = int(value)
    except ValueError:
        raise ApiError.bad_request(f'invalid resource version "{value}"') from None
    if rv < 0:
        raise ApiError.bad_request(f'invalid resource version "{value}"')
    return rv


def _event_line(typ: str, raw: bytes) -> bytes:
    return b'{"type":"' + typ.encode() + b'","object":' + raw + b"}\n"


def _bookmark(kind: KindInfo, rev: int, *, initial_end: bool = False) -> bytes:
    meta: Obj = {"resourceVersion": str(rev)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return orjson.dumps({"type": "BOOKMARK", "object": {
        "kind": kind.kind, "apiVersion": kind.api_version, "metadata": meta}}) + b"\n"


def _error_line(err: ApiError) -> bytes:
    return orjson.dumps({"type": "ERROR", "object": err.to_status()}) + b"\n"

