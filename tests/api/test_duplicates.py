"""Duplicate keys of request bodies: the cheap JSON check never misses one, and names them
as Kubernetes' strict decoding does."""

from __future__ import annotations

import json

import orjson
import pytest

from kubeling.api.duplicates import (
    _may_have_duplicates,
    decode_yaml_noting_duplicates,
    json_duplicates,
)


@pytest.mark.parametrize("body", [
    b'{"a": 1, "a": 2}',
    b'{"a" : 1, "a"\n:\t2}',  # whitespace before the colons
    b'{"k\\\\": 1, "k\\\\": 2}',  # keys ending in a backslash
    b'{"s": "\\"x\\": 1", "b": {"c": 1, "c": 2}}',  # a quote-colon inside a string too
    b'{"\\u0061": 1, "a": 2}',  # the same key spelt two ways
    b'{"l": [{"x": 1}, {"x": 1, "y": 2, "x": 3}]}',
])
def test_every_duplicate_is_found(body: bytes) -> None:
    found = json_duplicates(body, orjson.loads(body))
    assert found.fields, body


def test_paths_and_document_order() -> None:
    body = (b'{"metadata": {"name": "a", "labels": {"x": "1", "x": "2"}, "name": "b"}, '
            b'"spec": {"l": [{}, {"k": 1, "k": 2}]}, "kind": "K", "kind": "K"}')
    found = json_duplicates(body, orjson.loads(body))
    assert found.fields == ("metadata.name", "metadata.labels.x", "spec.l[1].k", "kind")


@pytest.mark.parametrize("body", [
    json.dumps({"metadata": {"name": "a", "labels": {"name": "b"}}, "q": "\\\\"}).encode(),
    orjson.dumps({"a": {"a": {"a": 1}}, "b": ["a", {"b": 1}]}),
    b'{\n  "a" : 1,\n  "b": {"c": "\\u0022:"}\n}',
])
def test_bodies_without_duplicates_skip_the_second_parse(body: bytes) -> None:
    assert not _may_have_duplicates(body, orjson.loads(body))
    assert not json_duplicates(body, orjson.loads(body))


def test_a_quote_and_colon_inside_a_string_is_no_duplicate() -> None:
    body = json.dumps({"metadata": {"annotations": {"x": '{"name":"y","name":"z"}'}}}).encode()
    assert _may_have_duplicates(body, orjson.loads(body))  # looked at again...
    assert not json_duplicates(body, orjson.loads(body))  # ...and found clean


def test_yaml_keys_as_yaml_v2_reports_them() -> None:
    body = b"a: 1\nb:\n  c: 1\n  c: 2\na: 3\nd: {1: x, 1: y}\n"
    obj, found = decode_yaml_noting_duplicates(body)
    assert obj == {"a": 3, "b": {"c": 2}, "d": {1: "y"}}  # the last value wins
    assert found.yaml_lines == (
        'line 4: key "c" already set in map', 'line 5: key "a" already set in map',
        "line 6: key 1 already set in map")
    assert not decode_yaml_noting_duplicates(b"a: 1\nb: {a: 1}\n")[1]
