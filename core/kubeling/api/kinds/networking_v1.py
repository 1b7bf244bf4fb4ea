"""Strategies of networking.k8s.io/v1 Ingress and IngressClass.

Served as API objects: kubeling ships no ingress controller, so nothing routes traffic for
an Ingress or writes its ``status.loadBalancer``, and no admission plugin fills in the
default IngressClass.  Validation messages and field paths follow the Kubernetes v1.32
API server; the table columns follow ``kubectl get ingress`` and ``kubectl get
ingressclass``.
"""

from __future__ import annotations

import re
from typing import Any

from kubeling.api.errors import Cause
from kubeling.api.kinds._common import (
    AGE,
    BuiltinStrategy,
    Obj,
    as_dict,
    as_list,
    dns_subdomain_causes,
    ensure_dict,
    meta,
    parse_ip,
    port_name_problems,
    port_number_causes,
    sub,
)
from kubeling.api.strategy import TableColumn
from kubeling.api.validation import is_dns1035_label, is_dns1123_label, is_dns1123_subdomain

__all__ = ["IngressClassStrategy", "IngressStrategy", "ingress_address", "ingress_hosts"]

INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
INVALID_PATH_SUFFIXES = ("/..", "/.")
MAX_CONTROLLER_LENGTH = 250
PARAMETER_SCOPES = ("Cluster", "Namespace")

_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_WILDCARD_FMT = r"\*\." + _SUBDOMAIN
_WILDCARD = re.compile(f"^{_WILDCARD_FMT}$")
WILDCARD_ERROR = (
    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, "
    "which must consist of lower case alphanumeric characters, '-' or '.' and end with an "
    f"alphanumeric character (e.g. '*.example.com', regex used for validation is "
    f"'{_WILDCARD_FMT}')"
)
_HTTP_PATH_FMT = r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+"
_HTTP_PATH = re.compile(f"^{_HTTP_PATH_FMT}$")


def _wildcard_problems(value: str) -> list[str]:
    """``IsWildcardDNS1123Subdomain``: ``*.`` followed by a DNS subdomain."""
    problems = []
    if len(value) > 253:
        problems.append("must be no more than 253 characters")
    if not _WILDCARD.match(value):
        problems.append(WILDCARD_ERROR)
    return problems


def _host_causes(path: str, host: Any) -> list[Cause]:
    if not isinstance(host, str):
        return [Cause.invalid(path, host, "must be a string")]
    check = _wildcard_problems if "*" in host else is_dns1123_subdomain
    return [Cause.invalid(path, host, problem) for problem in check(host)]


def _path_segment_problems(value: str) -> list[str]:
    """``IsValidPathSegmentName``: usable as one segment of a URL path."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{bad}'" for bad in ("/", "%") if bad in value]


def _typed_reference_causes(ref: Obj, path: str) -> list[Cause]:
    """``validateIngressTypedLocalObjectReference`` (resource backends, class params)."""
    causes: list[Cause] = []
    if ref.get("apiGroup") is not None:
        causes.extend(dns_subdomain_causes(f"{path}.apiGroup", ref["apiGroup"]))
    for key in ("kind", "name"):
        value = ref.get(key)
        if not value:
            causes.append(Cause.required(f"{path}.{key}", f"{key} is required"))
        else:
            causes.extend(Cause.invalid(f"{path}.{key}", value, problem)
                          for problem in _path_segment_problems(str(value)))
    return causes


def _backend_causes(backend: Any, path: str) -> list[Cause]:
    backend = as_dict(backend)
    resource, service = backend.get("resource"), backend.get("service")
    if resource is not None and service is not None:
        return [Cause.invalid(path, "", "cannot set both resource and service backends")]
    if resource is not None:
        return _typed_reference_causes(as_dict(resource), f"{path}.resource")
    if service is None:
        return [Cause.invalid(path, "", "resource or service backend is required")]
    service = as_dict(service)
    causes: list[Cause] = []
    name = service.get("name")
    if not name:
        causes.append(Cause.required(f"{path}.service.name"))
    else:
        causes.extend(Cause.invalid(f"{path}.service.name", name, problem)
                      for problem in is_dns1035_label(str(name)))
    port = as_dict(service.get("port"))
    port_name, port_number = port.get("name") or "", port.get("number") or 0
    if port_name and port_number:
        causes.append(Cause.invalid(path, "", "cannot set both port name & port number"))
    elif port_name:
        causes.extend(Cause.invalid(f"{path}.service.port.name", port_name, problem)
                      for problem in port_name_problems(str(port_name)))
    elif port_number:
        causes.extend(port_number_causes(f"{path}.service.port.number", port_number))
    else:
        causes.append(Cause.required(path, "port name or number is required"))
    return causes


def _http_path_causes(entry: Any, path: str) -> list[Cause]:
    entry = as_dict(entry)
    kind = entry.get("pathType")
    if kind is None:
        return [Cause.required(f"{path}.pathType", "pathType must be specified")]
    value = str(entry.get("path") or "")
    causes: list[Cause] = []
    if kind in ("Exact", "Prefix"):
        if not value.startswith("/"):
            causes.append(Cause.invalid(f"{path}.path", value, "must be an absolute path"))
        if value:
            causes.extend(Cause.invalid(f"{path}.path", value, f"must not contain '{bad}'")
                          for bad in INVALID_PATH_SEQUENCES if bad in value)
            causes.extend(Cause.invalid(f"{path}.path", value, f"cannot end with '{bad}'")
                          for bad in INVALID_PATH_SUFFIXES if value.endswith(bad))
    elif kind == "ImplementationSpecific":
        if value and not value.startswith("/"):
            causes.append(Cause.invalid(f"{path}.path", value, "must be an absolute path"))
    else:
        causes.append(Cause.not_supported(f"{path}.pathType", kind, PATH_TYPES))
    causes.extend(_backend_causes(entry.get("backend"), f"{path}.backend"))
    return causes


def _rule_causes(rules: list[Any]) -> list[Cause]:
    causes: list[Cause] = []
    for i, rule in enumerate(rules):
        rule = as_dict(rule)
        path = f"spec.rules[{i}]"
        host = rule.get("host")
        if host:
            if parse_ip(host) is not None:
                causes.append(Cause.invalid(f"{path}.host", host,
                                            "must be a DNS name, not an IP address"))
            causes.extend(_host_causes(f"{path}.host", host))
        http = rule.get("http")
        if http is None:
            continue
        paths = as_list(as_dict(http).get("paths"))
        if not paths:
            causes.append(Cause.required(f"{path}.http.paths"))
        for j, entry in enumerate(paths):
            causes.extend(_http_path_causes(entry, f"{path}.http.paths[{j}]"))
    return causes


def ingress_hosts(ingress: Obj) -> str:
    """The HOSTS cell: the first three rule hosts, ``*`` when no rule names one."""
    rules = as_list(sub(ingress, "spec", "rules"))
    shown: list[str] = []
    more = False
    for rule in rules:
        if len(shown) == 3:
            more = True
        host = as_dict(rule).get("host")
        if not more and host:
            shown.append(str(host))
    if not shown:
        return "*"
    text = ",".join(shown)
    return f"{text} + {len(rules) - 3} more..." if more else text


def ingress_address(ingress: Obj) -> str:
    """The ADDRESS cell: load-balancer IPs or host names, sorted and de-duplicated.

    The API server renders tables with kubectl's wide options, so the cell is not clipped.
    """
    found = set()
    for entry in as_list(sub(ingress, "status", "loadBalancer", "ingress")):
        entry = as_dict(entry)
        value = entry.get("ip") or entry.get("hostname")
        if value:
            found.add(str(value))
    return ",".join(sorted(found))


class IngressStrategy(BuiltinStrategy):
    """Ingresses: rules (host and HTTP paths) or a default backend, TLS hosts and secrets,
    an optional ``ingressClassName``; ``status`` is a subresource."""

    tracks_generation = True

    def validate(self, obj: Obj, *, namespaced: bool) -> list[Cause]:
        return super().validate(obj, namespaced=namespaced) + self._class_annotation_causes(obj)

    def validate_update(self, new: Obj, old: Obj, *, namespaced: bool) -> list[Cause]:
        # the class annotation conflict is only refused on create, as in Kubernetes
        return super().validate(new, namespaced=namespaced) + self.validate_immutable(new, old)

    @staticmethod
    def _class_annotation_causes(obj: Obj) -> list[Cause]:
        annotations = as_dict(meta(obj).get("annotations"))
        if INGRESS_CLASS_ANNOTATION in annotations \
                and sub(obj, "spec", "ingressClassName") is not None:
            return [Cause.invalid(f"annotations.{INGRESS_CLASS_ANNOTATION}",
                                  annotations[INGRESS_CLASS_ANNOTATION],
                                  "can not be set when the class field is also set")]
        return []

    def validate_spec(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        rules = as_list(spec.get("rules"))
        causes: list[Cause] = []
        if not rules and spec.get("defaultBackend") is None:
            causes.append(Cause.invalid("spec", spec.get("rules"),
                                        "either `defaultBackend` or `rules` must be specified"))
        if spec.get("defaultBackend") is not None:
            causes.extend(_backend_causes(spec["defaultBackend"], "spec.defaultBackend"))
        causes.extend(_rule_causes(rules))
        for i, tls in enumerate(as_list(spec.get("tls"))):
            tls = as_dict(tls)
            for j, host in enumerate(as_list(tls.get("hosts"))):
                causes.extend(_host_causes(f"spec.tls[{i}].hosts[{j}]", host))
            if tls.get("secretName"):
                causes.extend(dns_subdomain_causes(f"spec.tls[{i}].secretName",
                                                   tls["secretName"]))
        if spec.get("ingressClassName") is not None:
            causes.extend(dns_subdomain_causes("spec.ingressClassName",
                                               spec["ingressClassName"]))
        return causes

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes: list[Cause] = []
        entries = as_list(sub(new, "status", "loadBalancer", "ingress"))
        for i, entry in enumerate(entries):
            entry = as_dict(entry)
            path = f"status.loadBalancer.ingress[{i}]"
            if entry.get("ip") and parse_ip(entry["ip"]) is None:
                causes.append(Cause.invalid(f"{path}.ip", entry["ip"],
                                            "must be a valid IP address"))
            hostname = entry.get("hostname")
            if hostname:
                causes.extend(dns_subdomain_causes(f"{path}.hostname", hostname))
                if parse_ip(hostname) is not None:
                    causes.append(Cause.invalid(f"{path}.hostname", hostname,
                                                "must be a DNS name, not an IP address"))
        return causes

    def table_columns(self) -> list[TableColumn]:
        return [
            TableColumn("Class", lambda o: sub(o, "spec", "ingressClassName") or "<none>",
                        description="The name of the IngressClass resource that should be "
                                    "used for additional configuration"),
            TableColumn("Hosts", ingress_hosts,
                        description="Hosts that incoming requests are matched against "
                                    "before the ingress rule"),
            TableColumn("Address", ingress_address,
                        description="Address is a list containing ingress points for the "
                                    "load-balancer"),
            TableColumn("Ports", lambda o: "80, 443" if as_list(sub(o, "spec", "tls")) else "80",
                        description="Ports of TLS configurations that open"),
            AGE,
        ]


def _controller_causes(controller: Any) -> list[Cause]:
    """``IsDomainPrefixedPath`` of ``spec.controller`` (``example.com/ingress-nginx``)."""
    path = "spec.controller"
    if not controller:
        return [Cause.required(path)]
    text = str(controller)
    causes: list[Cause] = []
    if len(text) > MAX_CONTROLLER_LENGTH:
        causes.append(Cause.too_long(path, MAX_CONTROLLER_LENGTH))
    host, slash, rest = text.partition("/")
    if not slash or not host or not rest:
        causes.append(Cause.invalid(path, text,
                                    'must be a domain-prefixed path (such as "acme.io/foo")'))
        return causes
    causes.extend(Cause.invalid(path, host, problem) for problem in is_dns1123_subdomain(host))
    if not _HTTP_PATH.match(rest):
        causes.append(Cause.invalid(path, rest, "Invalid path (regex used for validation is "
                                    f"'{_HTTP_PATH_FMT}')"))
    return causes


class IngressClassStrategy(BuiltinStrategy):
    """IngressClasses (cluster-scoped): the controller that implements a class of
    ingresses (immutable) and an optional reference to its parameters."""

    has_status = False
    tracks_generation = True

    def default(self, obj: Obj) -> None:
        parameters = sub(obj, "spec", "parameters")
        if isinstance(parameters, dict) and parameters.get("scope") is None:
            parameters["scope"] = "Cluster"
        ensure_dict(obj, "spec")

    def validate_spec(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        causes = _controller_causes(spec.get("controller"))
        parameters = spec.get("parameters")
        if not isinstance(parameters, dict):
            return causes
        path = "spec.parameters"
        causes.extend(_typed_reference_causes(parameters, path))
        scope = parameters.get("scope")
        if scope is None:
            causes.append(Cause.required(f"{path}.scope"))
        elif scope not in PARAMETER_SCOPES:
            causes.append(Cause.not_supported(f"{path}.scope", scope, PARAMETER_SCOPES))
        elif scope == "Namespace":
            namespace = parameters.get("namespace")
            if namespace is None:
                causes.append(Cause.required(f"{path}.namespace",
                                             "`parameters.scope` is set to 'Namespace'"))
            else:
                causes.extend(Cause.invalid(f"{path}.namespace", namespace, problem)
                              for problem in _label_problems(namespace))
        elif parameters.get("namespace") is not None:
            causes.append(Cause.forbidden(f"{path}.namespace",
                                          "`parameters.scope` is set to 'Cluster'"))
        return causes

    def validate_immutable(self, new: Obj, old: Obj) -> list[Cause]:
        controller = sub(new, "spec", "controller")
        if controller != sub(old, "spec", "controller"):
            return [Cause.immutable("spec.controller", controller)]
        return []

    def table_columns(self) -> list[TableColumn]:
        def parameters(o: Obj) -> str:
            ref = sub(o, "spec", "parameters")
            if not isinstance(ref, dict):
                return "<none>"
            kind = str(ref.get("kind") or "")
            if ref.get("apiGroup") is not None:
                kind = f"{kind}.{ref['apiGroup']}"
            return f"{kind}/{ref.get('name') or ''}"

        return [
            TableColumn("Controller", lambda o: sub(o, "spec", "controller") or "",
                        description="Controller that is responsible for handling this class"),
            TableColumn("Parameters", parameters,
                        description="A reference to a resource with additional parameters"),
            AGE,
        ]


def _label_problems(value: Any) -> list[str]:
    """``ValidateNamespaceName``: a DNS-1123 label."""
    return is_dns1123_label(value) if isinstance(value, str) else ["must be a string"]
