"""Label and field selectors: grammar, matching semantics and Kubernetes' error messages."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from kubeling.api.selectors import (
    DOES_NOT_EXIST,
    EQUALS,
    EXISTS,
    GREATER_THAN,
    IN,
    MATCH_EVERYTHING,
    MATCH_NOTHING,
    METADATA_FIELDS,
    NOT_IN,
    FieldRequirement,
    FieldSelector,
    LabelSelector,
    Requirement,
    SelectorError,
    label_selector_from_dict,
    label_selector_from_set,
    object_field_getter,
    parse_field_selector,
    parse_label_selector,
    validate_label_key,
    validate_label_value,
)

QNAME_RULE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
BINARY_OPS = "in, notin, =, ==, !=, gt, lt"
TOO_LONG = "must be no more than 63 characters"
NOT_INT = "for 'Gt', 'Lt' operators, the value must be an integer"
EMPTY_SET = "for 'in', 'notin' operators, values set can't be empty"


# ------------------------------------------------------------------------------------------
# Label selector grammar
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "requirements"),
    [
        ("a=b", [Requirement("a", EQUALS, ("b",))]),
        ("a==b", [Requirement("a", "==", ("b",))]),
        ("a!=b", [Requirement("a", "!=", ("b",))]),
        ("a in (x,y)", [Requirement("a", IN, ("x", "y"))]),
        ("a notin (y,x)", [Requirement("a", NOT_IN, ("x", "y"))]),
        ("a", [Requirement("a", EXISTS)]),
        ("!a", [Requirement("a", DOES_NOT_EXIST)]),
        ("a>3", [Requirement("a", GREATER_THAN, ("3",))]),
        ("a<3", [Requirement("a", "lt", ("3",))]),
        ("a=", [Requirement("a", EQUALS, ("",))]),
        ("a in ()", [Requirement("a", IN, ("",))]),
        ("a in (,x)", [Requirement("a", IN, ("", "x"))]),
        ("a in (x,,y)", [Requirement("a", IN, ("", "x", "y"))]),
        ("a in (x,)", [Requirement("a", IN, ("", "x"))]),
        # "in"/"notin" are keywords only where an operator is expected.
        ("in in (in,notin)", [Requirement("in", IN, ("in", "notin"))]),
        ("notin=in", [Requirement("notin", EQUALS, ("in",))]),
        (
            "example.com/app-name=my_app.v1",
            [Requirement("example.com/app-name", EQUALS, ("my_app.v1",))],
        ),
    ],
)
def test_label_selector_grammar(text: str, requirements: list[Requirement]) -> None:
    assert list(parse_label_selector(text).requirements) == requirements


def test_whitespace_is_tolerated_and_requirements_are_sorted_by_key() -> None:
    sel = parse_label_selector("  tier\tin ( web , api ) ,\n app = x ,  !canary  ")
    assert [r.key for r in sel.requirements] == ["app", "canary", "tier"]
    assert str(sel) == "app=x,!canary,tier in (api,web)"


def test_round_trip_through_str() -> None:
    text = "a=b,c==d,e!=f,g in (h,i),j notin (k),l,!m,n>1,o<2"
    sel = parse_label_selector(text)
    assert parse_label_selector(str(sel)) == sel
    assert str(sel) == "a=b,c==d,e!=f,g in (h,i),j notin (k),l,!m,n>1,o<2"


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_string_is_the_everything_selector(text: str) -> None:
    sel = parse_label_selector(text)
    assert sel.empty
    assert sel.matches({})
    assert sel.matches(None)
    assert str(sel) == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,", "found '', expected: identifier after ','"),
        ("a=b,", "found '', expected: identifier after ','"),
        ("a,,b", "found ',', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("(", "found '(', expected: !, identifier, or 'end of string'"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a=b=c", "found '=', expected: ',' or 'end of string'"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("a b", f"unable to parse requirement: found 'b', expected: {BINARY_OPS}"),
        ("a!", f"unable to parse requirement: found '!', expected: {BINARY_OPS}"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("!=a", "found '!=', expected: !, identifier, or 'end of string'"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
        ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("a in (b,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
        ("a===", "unable to parse requirement: found '=', expected: identifier"),
        ("a=(", "unable to parse requirement: found '(', expected: identifier"),
    ],
)
def test_label_selector_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_label_selector(text)
    assert str(info.value) == message


def test_selector_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="expected: identifier after ','"):
        parse_label_selector("a,")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-a=b", f'<nil>: Invalid value: "-a": name part {QNAME_RULE}'),
        ("a-=b", f'<nil>: Invalid value: "a-": name part {QNAME_RULE}'),
        ("x" * 64, f'<nil>: Invalid value: "{"x" * 64}": name part {TOO_LONG}'),
        ("/a", '<nil>: Invalid value: "/a": prefix part must be non-empty'),
        ("a/", f'<nil>: Invalid value: "a/": name part must be non-empty; name part {QNAME_RULE}'),
        (
            "Example.com/a",
            '<nil>: Invalid value: "Example.com/a": prefix part a lowercase RFC 1123 subdomain '
            "must consist of lower case alphanumeric characters, '-' or '.', and must start and "
            "end with an alphanumeric character (e.g. 'example.com', regex used for validation "
            "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        (
            "a/b/c",
            f'<nil>: Invalid value: "a/b/c": a qualified name {QNAME_RULE} with an optional DNS '
            "subdomain prefix and '/' (e.g. 'example.com/MyName')",
        ),
    ],
)
def test_label_key_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_label_selector(text)
    assert str(info.value) == "unable to parse requirement: " + message


def test_label_value_errors() -> None:
    with pytest.raises(SelectorError) as info:
        parse_label_selector("app=-web")
    assert str(info.value) == (
        f'unable to parse requirement: values[0][app]: Invalid value: "-web": {VALUE_RULE}'
    )
    with pytest.raises(SelectorError) as info:
        parse_label_selector("app=" + "v" * 64)
    assert "must be no more than 63 characters" in str(info.value)
    # 63 characters is fine.
    assert parse_label_selector("app=" + "v" * 63).matches({"app": "v" * 63})


def test_several_errors_are_aggregated_in_brackets() -> None:
    with pytest.raises(SelectorError) as info:
        parse_label_selector("app in (-x,y_)")
    message = str(info.value)
    assert message.startswith("unable to parse requirement: [values[0][app]: ")
    assert 'values[1][app]: Invalid value: "y_"' in message
    assert message.endswith("]")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a>x", f'values[0]: Invalid value: "x": {NOT_INT}'),
        ("a>", f'values[0]: Invalid value: "": {NOT_INT}'),
        ("a<1.5", f'values[0]: Invalid value: "1.5": {NOT_INT}'),
    ],
)
def test_numeric_comparison_needs_an_integer(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_label_selector(text)
    assert str(info.value) == "unable to parse requirement: " + message


def test_parsing_is_cached() -> None:
    assert parse_label_selector("app=cached") is parse_label_selector("app=cached")


# ------------------------------------------------------------------------------------------
# Label matching semantics
# ------------------------------------------------------------------------------------------

LABELS = {"app": "web", "tier": "front", "replicas": "5", "empty": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("missing=x", False),
        ("app!=db", True),
        ("app!=web", False),
        ("missing!=x", True),  # != matches when the key is absent
        ("app in (db,web)", True),
        ("app in (db)", False),
        ("missing in (x)", False),
        ("app notin (db)", True),
        ("app notin (web)", False),
        ("missing notin (x)", True),  # notin matches when the key is absent
        ("app", True),
        ("missing", False),
        ("!app", False),
        ("!missing", True),
        ("empty=", True),
        ("empty", True),
        ("app=", False),
        ("replicas>4", True),
        ("replicas>5", False),
        ("replicas<6", True),
        ("replicas<5", False),
        ("app>1", False),  # not an integer label value
        ("missing<10", False),
        ("app=web,tier=front", True),
        ("app=web,tier=back", False),
        ("app=web,tier in (front,back),!canary,replicas>1", True),
        ("app=web,app=db", False),
    ],
)
def test_label_matching(text: str, expected: bool) -> None:
    sel = parse_label_selector(text)
    assert sel.matches(LABELS) is expected
    # The compiled fast path and the per-requirement semantics agree.
    assert all(r.matches(LABELS) for r in sel.requirements) is expected


def test_numeric_comparison_follows_go_parse_int() -> None:
    sel = parse_label_selector("n>0")
    assert sel.matches({"n": "+7"})
    assert not sel.matches({"n": "1_000"})  # Python's int() would accept this; Go does not
    assert not sel.matches({"n": " 7"})
    assert not sel.matches({"n": str(2**63)})  # out of int64 range
    assert parse_label_selector("n<0").matches({"n": "-3"})


def test_none_labels_and_other_mappings() -> None:
    sel = parse_label_selector("app=web,tier=front")
    assert not sel.matches(None)
    assert parse_label_selector("!app").matches(None)
    assert sel.matches(MappingProxyType(dict(LABELS)))


def test_matches_object_reads_metadata_labels() -> None:
    sel = parse_label_selector("app=web")
    assert sel.matches_object({"metadata": {"labels": {"app": "web"}}})
    assert not sel.matches_object({"metadata": {"labels": {"app": "db"}}})
    assert not sel.matches_object({"metadata": {}})
    assert not sel.matches_object({})
    assert parse_label_selector("!app").matches_object({"metadata": {"labels": None}})


def test_requires_exact_match() -> None:
    sel = parse_label_selector("app=web,tier in (front),env in (a,b),x!=y")
    assert sel.requires_exact_match("app") == "web"
    assert sel.requires_exact_match("tier") == "front"
    assert sel.requires_exact_match("env") is None
    assert sel.requires_exact_match("x") is None
    assert sel.requires_exact_match("other") is None
    assert MATCH_NOTHING.requires_exact_match("app") is None


def test_match_nothing_and_everything() -> None:
    assert MATCH_EVERYTHING.empty
    assert MATCH_EVERYTHING.matches({"a": "b"})
    assert not MATCH_NOTHING.empty  # as in Kubernetes: Nothing() is not Empty()
    assert MATCH_NOTHING.matches_nothing
    assert not MATCH_NOTHING.matches({})
    assert not MATCH_NOTHING.matches({"a": "b"})
    assert MATCH_NOTHING != MATCH_EVERYTHING
    assert LabelSelector() == MATCH_EVERYTHING


# ------------------------------------------------------------------------------------------
# metav1.LabelSelector objects and map selectors
# ------------------------------------------------------------------------------------------


def test_selector_from_dict_match_labels_and_expressions() -> None:
    sel = label_selector_from_dict(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "team", "operator": "Exists"},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        }
    )
    assert str(sel) == "app=web,!canary,env notin (prod),team,tier in (edge,front)"
    assert sel.matches({"app": "web", "tier": "edge", "team": "a"})
    assert not sel.matches({"app": "web", "tier": "edge"})
    assert not sel.matches({"app": "web", "tier": "edge", "team": "a", "canary": "1"})
    assert not sel.matches({"app": "web", "tier": "edge", "team": "a", "env": "prod"})


def test_nil_versus_empty_selector() -> None:
    assert label_selector_from_dict(None) is MATCH_NOTHING
    assert label_selector_from_dict(None, none_means="everything") is MATCH_EVERYTHING
    for empty in ({}, {"matchLabels": {}}, {"matchLabels": None, "matchExpressions": []}):
        sel = label_selector_from_dict(empty)
        assert sel.empty
        assert sel.matches({"any": "thing"})


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
            f"values: Invalid value: []string{{}}: {EMPTY_SET}",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn"}]},
            f"values: Invalid value: []string{{}}: {EMPTY_SET}",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x", "y"]}]},
            'values: Invalid value: []string{"x", "y"}: values set must be empty for exists and '
            "does not exist",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Foo"}]},
            '"Foo" is not a valid label selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "in", "values": ["x"]}]},
            '"in" is not a valid label selector operator',
        ),
        (
            {"matchExpressions": [{"key": "-a", "operator": "Exists"}]},
            f'key: Invalid value: "-a": name part {QNAME_RULE}',
        ),
        ({"matchLabels": {"app": "-x"}}, f'values[0][app]: Invalid value: "-x": {VALUE_RULE}'),
        ({"matchLabels": {"app": 3}}, "matchLabels: must be an object of strings"),
        ({"matchExpressions": {"key": "a"}}, "matchExpressions: must be a list"),
        ({"matchExpressions": ["a"]}, "matchExpressions[0]: must be an object"),
    ],
)
def test_selector_from_dict_errors(selector: dict, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        label_selector_from_dict(selector)
    assert str(info.value) == message


def test_selector_from_dict_error_path_prefix() -> None:
    with pytest.raises(SelectorError) as info:
        label_selector_from_dict(
            {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
            path="spec.selector",
        )
    assert str(info.value).startswith("spec.selector.values: Invalid value: []string{}")


def test_selector_from_set() -> None:
    sel = label_selector_from_set({"app": "web", "tier": "front"})
    assert str(sel) == "app=web,tier=front"
    assert sel.matches({"app": "web", "tier": "front", "x": "y"})
    assert not sel.matches({"app": "web"})
    assert label_selector_from_set(None).empty
    assert label_selector_from_set({}).empty


def test_requirement_new_validates_operators() -> None:
    with pytest.raises(SelectorError, match='operator: Unsupported value: "~"'):
        Requirement.new("a", "~", ["x"])
    with pytest.raises(SelectorError, match="exact-match compatibility requires one single value"):
        Requirement.new("a", EQUALS, ["x", "y"])
    with pytest.raises(SelectorError, match="exactly one value is required"):
        Requirement.new("a", GREATER_THAN, [])
    assert Requirement.new("a", IN, ["y", "x", "y"]) == Requirement("a", IN, ("x", "y"))


def test_validate_label_key_and_value_helpers() -> None:
    assert validate_label_key("app.kubernetes.io/name") == []
    assert validate_label_key("bad key") != []
    assert validate_label_value("") == []
    assert validate_label_value("v1.2_3-x") == []
    assert validate_label_value("a b") == [VALUE_RULE]


# ------------------------------------------------------------------------------------------
# Field selectors
# ------------------------------------------------------------------------------------------


def test_field_selector_parsing() -> None:
    sel = parse_field_selector("spec.nodeName=n1,status.phase!=Failed,metadata.name==web")
    assert sel.requirements == [
        FieldRequirement("metadata.name", "=", "web"),
        ("spec.nodeName", "=", "n1"),
        ("status.phase", "!=", "Failed"),
    ]
    assert sel.fields == {"metadata.name", "spec.nodeName", "status.phase"}
    assert str(sel) == "metadata.name=web,spec.nodeName=n1,status.phase!=Failed"


def test_field_selector_escapes() -> None:
    sel = parse_field_selector(r"metadata.name=a\,b\=c\\d,spec.x=")
    assert sel.requirements == [("metadata.name", "=", "a,b=c\\d"), ("spec.x", "=", "")]
    assert str(sel) == r"metadata.name=a\,b\=c\\d,spec.x="
    assert parse_field_selector(str(sel)) == sel


def test_field_selector_empty_terms_and_empty_selector() -> None:
    assert parse_field_selector("").empty
    assert parse_field_selector("").matches(lambda field: "anything")
    assert parse_field_selector(",a=b,").requirements == [("a", "=", "b")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
        ("a=b=c", "invalid field selector: unescaped character in value: ="),
        ("a!==b", "invalid field selector: unescaped character in value: ="),
        (r"a=b\x", r"invalid field selector: invalid escape sequence: \x"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_field_selector(text)
    assert str(info.value) == message


def test_field_selector_whitespace_is_significant_as_in_kubernetes() -> None:
    sel = parse_field_selector("status.phase=Running, spec.nodeName=n1")
    assert " spec.nodeName" in sel.fields
    with pytest.raises(SelectorError) as info:
        sel.validate(METADATA_FIELDS | {"status.phase", "spec.nodeName"})
    assert str(info.value) == "field label not supported:  spec.nodeName"


def test_field_selector_supported_fields() -> None:
    pod_fields = METADATA_FIELDS | {"spec.nodeName", "status.phase"}
    sel = parse_field_selector("spec.nodeName=n1", supported_fields=pod_fields)
    assert sel.validate(pod_fields) is sel
    with pytest.raises(SelectorError) as info:
        parse_field_selector("spec.nodeName=n1,foo=bar", supported_fields=pod_fields)
    assert str(info.value) == "field label not supported: foo"
    with pytest.raises(SelectorError, match=r"^field label not supported: spec\.nodeName$"):
        parse_field_selector("spec.nodeName=n1", supported_fields=METADATA_FIELDS)


POD = {
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "node-1", "hostNetwork": True, "priority": 10},
    "status": {"phase": "Running"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metadata.name=web-1", True),
        ("metadata.name=web-2", False),
        ("metadata.namespace=default,spec.nodeName=node-1", True),
        ("spec.nodeName!=node-1", False),
        ("spec.nodeName!=node-2", True),
        ("status.podIP=", True),  # missing reads as ""
        ("status.podIP!=", False),
        ("spec.schedulerName=default-scheduler", False),
        ("spec.hostNetwork=true", True),
        ("spec.hostNetwork=false", False),
        ("spec.priority=10", True),
        ("spec=", True),  # non-scalar reads as ""
        ("metadata.name.more=", True),
    ],
)
def test_field_matching(text: str, expected: bool) -> None:
    sel = parse_field_selector(text)
    assert sel.matches(object_field_getter(POD)) is expected
    assert sel.matches_object(POD) is expected


def test_field_matches_treats_none_as_empty_string() -> None:
    sel = parse_field_selector("spec.nodeName=")
    assert sel.matches(lambda field: None)
    assert not parse_field_selector("spec.nodeName!=").matches(lambda field: None)


def test_object_field_getter() -> None:
    get = object_field_getter(POD)
    assert get("metadata.name") == "web-1"
    assert get("spec.nodeName") == "node-1"
    assert get("status.phase") == "Running"
    assert get("status.hostIP") == ""
    assert get("nothing.at.all") == ""
    assert object_field_getter({"spec": {"unschedulable": False}})("spec.unschedulable") == "false"


def test_field_requires_exact_match() -> None:
    sel = parse_field_selector("spec.nodeName=n1,status.phase!=Failed")
    assert sel.requires_exact_match("spec.nodeName") == "n1"
    assert sel.requires_exact_match("status.phase") is None
    assert sel.requires_exact_match("metadata.name") is None


def test_field_selector_equality_and_hash() -> None:
    a = parse_field_selector("a=1,b=2")
    b = FieldSelector([FieldRequirement("b", "=", "2"), FieldRequirement("a", "=", "1")])
    assert a == b
    assert hash(a) == hash(b)
    assert parse_field_selector("a==1") == parse_field_selector("a=1")


# ------------------------------------------------------------------------------------------
# Speed: selectors run against whole lists and every watch event
# ------------------------------------------------------------------------------------------


def test_matching_ten_thousand_objects_is_fast() -> None:
    import time

    objects = [
        {
            "metadata": {"name": f"p{i}", "labels": {"app": f"a{i % 10}", "tier": "web"}},
            "spec": {"nodeName": f"n{i % 100}"},
        }
        for i in range(10_000)
    ]
    labels = parse_label_selector("app=a1,tier=web")
    fields = parse_field_selector("spec.nodeName=n1")
    start = time.perf_counter()
    selected = [o for o in objects if labels.matches_object(o) and fields.matches_object(o)]
    elapsed = time.perf_counter() - start
    assert len(selected) == 100
    # Generous bound (about 5 ms on a laptop) so only a pathological regression fails.
    assert elapsed < 0.5
