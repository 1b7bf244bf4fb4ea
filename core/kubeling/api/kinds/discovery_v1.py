"""Strategy of discovery.k8s.io/v1 EndpointSlice: a slice of a Service's endpoints."""

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
    dns_label_causes,
    dns_subdomain_causes,
    ensure_dict,
    join_limited,
    label_name_causes,
    meta,
    non_special_ip_causes,
    parse_ip,
    protocol_causes,
)
from kubeling.api.strategy import TableColumn
from kubeling.api.validation import validate_labels

__all__ = ["EndpointSliceStrategy", "slice_endpoints", "slice_ports"]

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
MAX_ADDRESSES = 100
MAX_ENDPOINTS = 1000
MAX_PORTS = 20000
_FQDN_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class EndpointSliceStrategy(BuiltinStrategy):
    """EndpointSlices: up to 1000 endpoints of one address type (immutable) with their
    ports; any change, labels included, is a new generation."""

    has_status = False
    tracks_generation = True

    def default(self, obj: Obj) -> None:
        for port in as_list(obj.get("ports")):
            if isinstance(port, dict):
                if port.get("name") is None:
                    port["name"] = ""
                if port.get("protocol") is None:
                    port["protocol"] = "TCP"

    def validate_spec(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        address_type = obj.get("addressType")
        if not address_type:
            causes.append(Cause.required("addressType"))
        elif address_type not in ADDRESS_TYPES:
            causes.append(Cause.not_supported("addressType", address_type, ADDRESS_TYPES))
        endpoints = as_list(obj.get("endpoints"))
        if len(endpoints) > MAX_ENDPOINTS:
            causes.append(_too_many("endpoints", len(endpoints), MAX_ENDPOINTS))
        else:
            for i, endpoint in enumerate(endpoints):
                causes.extend(_endpoint_causes(as_dict(endpoint), f"endpoints[{i}]",
                                               address_type))
        ports = as_list(obj.get("ports"))
        if len(ports) > MAX_PORTS:
            causes.append(_too_many("ports", len(ports), MAX_PORTS))
            return causes
        names: set[Any] = set()
        for i, port in enumerate(ports):
            port = as_dict(port)
            path = f"ports[{i}]"
            name = port.get("name") or ""
            if name:
                causes.extend(dns_label_causes(f"{path}.name", name))
            if name in names:
                causes.append(Cause.duplicate(f"{path}.name", name))
            names.add(name)
            causes.extend(protocol_causes(f"{path}.protocol", port.get("protocol")))
            if port.get("appProtocol") is not None:
                causes.extend(label_name_causes(f"{path}.appProtocol", port["appProtocol"]))
        return causes

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        # label changes are a new generation too (consumers watch slices by label)
        if meta(new).get("labels") != meta(old).get("labels"):
            ensure_dict(new, "metadata")["generation"] = \
                int(meta(old).get("generation") or 1) + 1

    def validate_immutable(self, new: Obj, old: Obj) -> list[Cause]:
        if new.get("addressType") != old.get("addressType"):
            return [Cause.immutable("addressType", new.get("addressType"))]
        return []

    def table_columns(self) -> list[TableColumn]:
        return [
            TableColumn("AddressType", lambda o: o.get("addressType") or "",
                        description="The type of the addresses in the slice."),
            TableColumn("Ports", slice_ports, description="The ports of the slice."),
            TableColumn("Endpoints", slice_endpoints,
                        description="The addresses of the slice's endpoints."),
            AGE,
        ]


def _too_many(field: str, count: int, limit: int) -> Cause:
    return Cause(field, f"Too many: {count}: must have at most {limit} items",
                 "FieldValueTooMany")


def _endpoint_causes(endpoint: Obj, path: str, address_type: Any) -> list[Cause]:
    causes: list[Cause] = []
    addresses = as_list(endpoint.get("addresses"))
    if not addresses:
        causes.append(Cause.required(f"{path}.addresses", "must contain at least 1 address"))
    elif len(addresses) > MAX_ADDRESSES:
        causes.append(_too_many(f"{path}.addresses", len(addresses), MAX_ADDRESSES))
    for i, address in enumerate(addresses):
        field = f"{path}.addresses[{i}]"
        if address_type in ("IPv4", "IPv6"):
            ip = parse_ip(address)
            version = 4 if address_type == "IPv4" else 6
            if ip is None or ip.version != version:
                causes.append(Cause.invalid(field, address,
                                            f"must be a valid IPv{version} address"))
            else:
                causes.extend(non_special_ip_causes(field, address))
        elif address_type == "FQDN":
            causes.extend(_fqdn_causes(field, address))
    if endpoint.get("nodeName") is not None:
        causes.extend(dns_subdomain_causes(f"{path}.nodeName", endpoint["nodeName"]))
    if endpoint.get("hostname") is not None:
        causes.extend(dns_label_causes(f"{path}.hostname", endpoint["hostname"]))
    causes.extend(validate_labels(endpoint.get("deprecatedTopology"),
                                  f"{path}.deprecatedTopology"))
    return causes


def _fqdn_causes(field: str, value: Any) -> list[Cause]:
    if not isinstance(value, str) or not value:
        return [Cause.required(field)]
    if len(value) > 253:
        return [Cause.too_long(field, 253)]
    labels = value.split(".")
    if len(labels) < 2:
        return [Cause.invalid(field, value, "should be a domain with at least two segments "
                                            "separated by dots")]
    if not all(_FQDN_LABEL.match(label) and len(label) <= 63 for label in labels):
        return [Cause.invalid(field, value, "each part must start with a letter or number, "
                                            "contain only lower case letters, numbers and '-',"
                                            " and end with a letter or number")]
    return []


def slice_ports(slice_: Obj) -> str:
    """The PORTS cell: up to three port numbers (``*`` for all ports), ``<unset>`` if none."""
    ports = as_list(slice_.get("ports"))
    shown = []
    for port in ports:
        port = as_dict(port)
        if port.get("port") is not None:
            shown.append(str(port["port"]))
        elif port.get("name") is not None:
            shown.append(str(port["name"]))
        else:
            shown.append("*")
    return join_limited(shown, len(ports), empty="<unset>")


def slice_endpoints(slice_: Obj) -> str:
    """The ENDPOINTS cell: up to three addresses, then ``+ N more...``."""
    addresses = [str(a) for e in as_list(slice_.get("endpoints"))
                 for a in as_list(as_dict(e).get("addresses"))]
    return join_limited(addresses, len(addresses), empty="<unset>")
