"""A container's environment as Kubernetes builds it: envFrom, env, valueFrom and $(VAR).

Everything here is pure: the caller passes lookups for ConfigMaps and Secrets, so the rules
are tested without a cluster.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from kubeling.api.quantity import parse_quantity

__all__ = ["EnvError", "expand", "field_value", "pod_services", "resolve_env",
           "resource_value", "service_env"]

Obj = dict[str, Any]
Lookup = Callable[[str, str], Obj | None]
"""(namespace, name) -> the object from the cache, or None when it does not exist."""

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class EnvError(Exception):
    """The environment cannot be built (kubelet reports ``CreateContainerConfigError``)."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known names are replaced, ``$$`` escapes a ``$``,
    unknown references stay as written."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "$" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end > 0:
                    name = text[i + 2:end]
                    if name in env:
                        out.append(env[name])
                    else:
                        out.append(text[i:end + 1])
                    i = end + 1
                    continue
        out.append(ch)
        i += 1
    return "".join(out)


def field_value(pod: Obj, path: str, *, pod_ip: str = "", host_ip: str = "") -> str:
    """The value of a downward-API ``fieldRef.fieldPath``."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.*)'\]", path) or \
        re.fullmatch(r'metadata\.(labels|annotations)\["(.*)"\]', path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return str(simple[path] or "")
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{_escape(v)}"' for k, v in sorted(items.items()))
    raise EnvError(f'unsupported fieldPath "{path}"')


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def resource_value(pod: Obj, container_name: str, resource: str, divisor: Any,
                   allocatable: Mapping[str, str]) -> str:
    """A ``resourceFieldRef``: the container's limit (node allocatable when unset) or
    request, divided by ``divisor`` and rounded up, as Kubernetes does."""
    container = next((c for c in _all_containers(pod) if c.get("name") == container_name),
                     None)
    if container is None:
        raise EnvError(f'resourceFieldRef: no container "{container_name}"')
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise EnvError(f'unsupported resource "{resource}"')
    resources = container.get("resources") or {}
    amount = (resources.get(kind) or {}).get(name)
    if amount is None and kind == "requests":
        amount = (resources.get("limits") or {}).get(name)
    if amount is None:
        amount = allocatable.get(name, "0") if kind == "limits" else "0"
    value = parse_quantity(str(amount))
    div = parse_quantity(str(divisor)) if divisor not in (None, "", 0) else Decimal(1)
    if div <= 0:
        raise EnvError("resourceFieldRef: the divisor must be positive")
    return str(max(math.ceil(value / div), 1 if name == "cpu" and value > 0 else 0))


def _all_containers(pod: Obj) -> list[Obj]:
    spec = pod.get("spec") or {}
    return list(spec.get("containers") or []) + list(spec.get("initContainers") or [])


def _decode_secret(data: Obj, key: str) -> str:
    raw = (data.get("data") or {}).get(key)
    if raw is not None:
        return base64.b64decode(raw).decode("utf-8", errors="replace")
    return str((data.get("stringData") or {}).get(key, ""))


def _object_keys(obj: Obj, secret: bool) -> dict[str, str]:
    if secret:
        return {k: _decode_secret(obj, k) for k in (obj.get("data") or {})}
    out = {k: str(v) for k, v in (obj.get("data") or {}).items()}
    for k, v in (obj.get("binaryData") or {}).items():
        out.setdefault(k, base64.b64decode(v).decode("utf-8", errors="replace"))
    return out


MASTER_SERVICES = frozenset({"kubernetes"})
"""Services of the ``default`` namespace every pod gets variables for."""


def _env_name(service_name: str) -> str:
    return service_name.replace("-", "_").upper()


def service_env(services: Iterable[Obj]) -> dict[str, str]:
    """The Docker-link style variables of Services, as the kubelet sets them:
    ``<NAME>_SERVICE_HOST``, ``<NAME>_SERVICE_PORT`` (the first port),
    ``<NAME>_SERVICE_PORT_<PORTNAME>``, and ``<NAME>_PORT``, ``<NAME>_PORT_<port>_<PROTO>``
    with its ``_PROTO``, ``_PORT`` and ``_ADDR``.  Services without a cluster IP (headless,
    ExternalName) have none."""
    env: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP") or ""
        if ip in ("", "None"):
            continue
        name = _env_name((svc.get("metadata") or {}).get("name", ""))
        ports = spec.get("ports") or []
        env[f"{name}_SERVICE_HOST"] = ip
        if ports:
            env[f"{name}_SERVICE_PORT"] = str(ports[0].get("port", ""))
        for port in ports:
            if port.get("name"):
                env[f"{name}_SERVICE_PORT_{_env_name(port['name'])}"] = str(port.get("port", ""))
        host = f"[{ip}]" if ":" in ip else ip
        for i, port in enumerate(ports):
            protocol = (port.get("protocol") or "TCP").lower()
            number = port.get("port", "")
            url = f"{protocol}://{host}:{number}"
            prefix = f"{name}_PORT_{number}_{protocol.upper()}"
            if i == 0:
                env[f"{name}_PORT"] = url
            env[prefix] = url
            env[f"{prefix}_PROTO"] = protocol
            env[f"{prefix}_PORT"] = str(number)
            env[f"{prefix}_ADDR"] = ip
    return env


def pod_services(pod: Obj, services: Iterable[Obj]) -> list[Obj]:
    """The Services a pod gets variables for: those of its namespace unless
    ``enableServiceLinks`` is false, and always ``default/kubernetes`` (unless the pod's
    namespace has its own Service of that name)."""
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    links = (pod.get("spec") or {}).get("enableServiceLinks", True) is not False
    chosen: dict[str, Obj] = {}
    for svc in services:
        meta = svc.get("metadata") or {}
        name = meta.get("name", "")
        ns = meta.get("namespace") or "default"
        if ns == "default" and name in MASTER_SERVICES:
            chosen.setdefault(name, svc)
        elif ns == namespace and links:
            chosen[name] = svc
    return [chosen[name] for name in sorted(chosen)]


def resolve_env(pod: Obj, container: Obj, *, configmap: Lookup, secret: Lookup,
                pod_ip: str = "", host_ip: str = "",
                allocatable: Mapping[str, str] | None = None,
                services: Iterable[Obj] = ()) -> list[tuple[str, str]]:
    """The container's environment, in order: ``envFrom`` then ``env``, later wins, then
    the variables of ``services`` (see :func:`pod_services`) the container does not set;
    ``$(VAR)`` in ``env`` values may refer to those too.

    :raises EnvError: a referenced ConfigMap/Secret or key is missing and not optional.
    """
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    links = service_env(services)
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        for field, lookup, is_secret in (("configMapRef", configmap, False),
                                         ("secretRef", secret, True)):
            ref = source.get(field)
            if not ref:
                continue
            obj = lookup(namespace, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                what = "configmap" if not is_secret else "secret"
                raise EnvError(f'{what} "{ref.get("name", "")}" not found')
            for key, value in _object_keys(obj, is_secret).items():
                if _ENV_NAME.match(prefix + key):
                    env[prefix + key] = value
    for item in container.get("env") or []:
        name = item.get("name", "")
        if "valueFrom" not in item or item.get("valueFrom") is None:
            env[name] = expand(str(item.get("value") or ""), {**links, **env})
            continue
        source = item["valueFrom"]
        if source.get("fieldRef"):
            env[name] = field_value(pod, source["fieldRef"].get("fieldPath", ""),
                                    pod_ip=pod_ip, host_ip=host_ip)
        elif source.get("resourceFieldRef"):
            ref = source["resourceFieldRef"]
            env[name] = resource_value(pod, ref.get("containerName") or container["name"],
                                       ref.get("resource", ""), ref.get("divisor"),
                                       allocatable or {})
        else:
            for field, lookup, is_secret in (("configMapKeyRef", configmap, False),
                                             ("secretKeyRef", secret, True)):
                ref = source.get(field)
                if not ref:
                    continue
                what = "configmap" if not is_secret else "secret"
                obj = lookup(namespace, ref.get("name", ""))
                key = ref.get("key", "")
                if obj is None:
                    if ref.get("optional"):
                        break
                    raise EnvError(f'{what} "{ref.get("name", "")}" not found')
                values = _object_keys(obj, is_secret)
                if key not in values:
                    if ref.get("optional"):
                        break
                    raise EnvError(f'couldn\'t find key {key} in {what} '
                                   f'{namespace}/{ref.get("name", "")}')
                env[name] = values[key]
                break
    for name, value in links.items():
        env.setdefault(name, value)
    return list(env.items())


def expand_all(items: Sequence[str] | None, env: Mapping[str, str]) -> list[str] | None:
    """``$(VAR)`` expansion of a command or args list (None stays None)."""
    if items is None:
        return None
    return [expand(str(x), env) for x in items]
