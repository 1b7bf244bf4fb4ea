"""Convert between wire dicts and the typed, frozen attrs models.

One cattrs converter serves every model: field names are taken from the ``json`` field
metadata (camelCase wire names), fields that are None are omitted when unstructuring (the
Kubernetes ``omitempty``), unknown keys are ignored when structuring, and values of
``IntOrString`` and free-form (``Any``) fields pass through unchanged.  JSON numbers given
for quantity fields become canonical quantity strings, as the API server writes them.

The converter trusts its input to have the right shape: run
:meth:`kubeling.api.schema.Schema.check` on untrusted bodies first.

>>> from kubeling.api.objects.core_v1 import Pod
>>> pod = to_model(Pod, {"metadata": {"name": "web"}, "spec": {"containers": []}})
>>> to_dict(pod)
{'metadata': {'name': 'web'}, 'spec': {'containers': []}}
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from kubeling.api.quantity import canonicalize_quantity

__all__ = ["converter", "to_dict", "to_model"]

T = TypeVar("T")

converter = cattrs.Converter()
"""The converter for API objects; extend it only with hooks for model types."""


def _structure_json(value: Any, _type: Any) -> Any:
    return _copy_json(value)


def _quantity(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return canonicalize_quantity(value)


def _strip_none(tp: Any) -> Any:
    args = typing.get_args(tp)
    if args and type(None) in args:
        rest = tuple(a for a in args if a is not type(None))
        return rest[0] if len(rest) == 1 else tp
    return tp


def _quantity_hook(tp: Any) -> Callable[[Any, Any], Any]:
    """Structure hook for a quantity field of shape Quantity, list[...] or dict[str, ...]."""
    origin = typing.get_origin(_strip_none(tp))
    if origin is dict:
        return lambda v, _t: None if v is None else {k: _quantity(x) for k, x in v.items()}
    if origin is list:
        return lambda v, _t: None if v is None else [_quantity(x) for x in v]
    return lambda v, _t: _quantity(v)


def _is_free_form(tp: Any) -> bool:
    """Any, int | str (IntOrString) and their Optional forms: JSON passed through (copied)."""
    tp = _strip_none(tp)
    return tp is Any or (set(typing.get_args(tp)) - {type(None)}) == {int, str}


def _structure_factory(cls: type) -> Callable[[Any, Any], Any]:
    hints = typing.get_type_hints(cls)
    overrides = {}
    for a in attrs.fields(cls):
        tp = hints.get(a.name, a.type)
        kwargs: dict[str, Any] = {"rename": a.metadata.get("json", a.name)}
        if a.metadata.get("format") == "quantity":
            kwargs["struct_hook"] = _quantity_hook(tp)
        elif _is_free_form(tp):
            kwargs["struct_hook"] = _structure_json
        overrides[a.name] = override(**kwargs)
    return make_dict_structure_fn(cls, converter, **overrides)


def _unstructure_factory(cls: type) -> Callable[[Any], dict[str, Any]]:
    hints = typing.get_type_hints(cls)
    overrides = {}
    for a in attrs.fields(cls):
        tp = hints.get(a.name, a.type)
        kwargs: dict[str, Any] = {"rename": a.metadata.get("json", a.name)}
        if _is_free_form(tp):
            kwargs["unstruct_hook"] = _copy_json
        overrides[a.name] = override(**kwargs)
    return make_dict_unstructure_fn(cls, converter, _cattrs_omit_if_default=True, **overrides)


def _copy_json(value: Any) -> Any:
    """Copy a free-form JSON value so the result shares no containers with the model."""
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


converter.register_structure_hook_factory(attrs.has, _structure_factory)
converter.register_unstructure_hook_factory(attrs.has, _unstructure_factory)


def to_model(cls: type[T], data: dict[str, Any]) -> T:
    """Build a frozen model object from a wire dict.

    :param cls: the model class, e.g. :class:`kubeling.api.objects.core_v1.Pod`.
    :param data: the decoded JSON object; keys the model does not know are ignored.
    :returns: an instance of ``cls``.
    :raises cattrs.errors.ClassValidationError: when ``data`` does not fit the model
        (use :func:`cattrs.transform_error` for readable messages).
    """
    return converter.structure(data, cls)


def to_dict(obj: Any) -> dict[str, Any]:
    """Write a model object as a wire dict, omitting fields that are None.

    :param obj: an instance of a model class.
    :returns: a new dict with camelCase keys, ready for JSON encoding.
    """
    return converter.unstructure(obj)
