"""Resource quantities: parsing, canonical formatting and error messages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kubeling.api.quantity import (
    BINARY_SI,
    DECIMAL_EXPONENT,
    DECIMAL_SI,
    FORMAT_ERROR,
    canonicalize_quantity,
    format_quantity,
    milli_value,
    parse_quantity,
    parse_quantity_with_format,
    value,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", "0"),
        ("1", "1"),
        ("100m", "0.1"),
        ("1.5", "1.5"),
        (".5", "0.5"),
        ("1.", "1"),
        ("+2k", "2000"),
        ("-3", "-3"),
        ("5n", "0.000000005"),
        ("7u", "0.000007"),
        ("1M", "1000000"),
        ("2G", "2000000000"),
        ("1T", "1e12"),
        ("1P", "1e15"),
        ("1E", "1e18"),
        ("1Ki", "1024"),
        ("1Mi", "1048576"),
        ("1.5Gi", "1610612736"),
        ("1Ti", str(2**40)),
        ("1Pi", str(2**50)),
        ("1Ei", str(2**60)),
        ("1e3", "1000"),
        ("1E3", "1000"),
        ("5e-1", "0.5"),
        ("12e+6", "12000000"),
        (128, "128"),
        (0.25, "0.25"),
    ],
)
def test_parse(text: str | int | float, expected: str) -> None:
    assert parse_quantity(text) == Decimal(expected)


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("1", DECIMAL_SI),
        ("1k", DECIMAL_SI),
        ("1m", DECIMAL_SI),
        ("1Ki", BINARY_SI),
        ("1e3", DECIMAL_EXPONENT),
        ("1E", DECIMAL_SI),
    ],
)
def test_format_follows_the_suffix(text: str, fmt: str) -> None:
    assert parse_quantity_with_format(text)[1] == fmt


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1000m", "1"),
        ("1500m", "1500m"),
        ("0.1", "100m"),
        ("0.001", "1m"),
        ("1.1", "1100m"),
        ("1500", "1500"),
        ("2000", "2k"),
        ("1000000", "1M"),
        ("1024Ki", "1Mi"),
        ("1.5Gi", "1536Mi"),
        ("0.5Gi", "512Mi"),
        ("1023Ki", "1023Ki"),
        ("100Mi", "100Mi"),
        ("512", "512"),
        ("1.1Mi", "1153433600m"),
        ("1e3", "1e3"),
        ("1e-3", "1e-3"),
        ("12e6", "12e6"),
        ("1.5e3", "1500"),
        ("1E", "1E"),
        ("0.0000000001", "1n"),
        ("-0.0000000001", "-1n"),
        ("-1.5", "-1500m"),
        ("0Mi", "0"),
        ("-0", "0"),
        ("00100", "100"),
        (0.5, "500m"),
        (2000, "2k"),
        (1, "1"),
        ("99999999999999999999", "9223372036854775807"),
    ],
)
def test_canonical(text: str | int | float, canonical: str) -> None:
    assert canonicalize_quantity(text) == canonical


def test_format_quantity_directly() -> None:
    assert format_quantity(Decimal("0.25")) == "250m"
    assert format_quantity(Decimal(1536 * 2**20), BINARY_SI) == "1536Mi"
    assert format_quantity(Decimal(1000), BINARY_SI) == "1k"  # below 1024: decimal
    assert format_quantity(Decimal("2048.5"), BINARY_SI) == "2048500m"  # fraction: decimal
    assert format_quantity(Decimal(3000), DECIMAL_EXPONENT) == "3e3"
    assert format_quantity(7) == "7"
    with pytest.raises(ValueError, match="unknown quantity format"):
        format_quantity(Decimal(1), "Roman")


@pytest.mark.parametrize(
    ("text", "millis", "units"),
    [
        ("1", 1000, 1),
        ("100m", 100, 1),
        ("1.5", 1500, 2),
        ("1n", 1, 1),
        ("1Ki", 1024000, 1024),
        ("-1.5m", -2, -1),
        ("0", 0, 0),
    ],
)
def test_milli_value_and_value(text: str, millis: int, units: int) -> None:
    assert milli_value(text) == millis
    assert value(text) == units
    assert milli_value(parse_quantity(text)) == millis


@pytest.mark.parametrize(
    "text", ["", "abc", "Mi", "--1", "1 Gi", "1.2.3", "+", "1x", "0x10", "1Gb", True, None, [1]]
)
def test_format_errors(text: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_quantity(text)  # type: ignore[arg-type]
    assert str(info.value) in (FORMAT_ERROR, "unable to parse quantity's suffix")


def test_format_error_message_is_kubernetes_wording() -> None:
    with pytest.raises(ValueError) as info:
        parse_quantity("abc")
    assert str(info.value) == (
        "quantities must match the regular expression "
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )


@pytest.mark.parametrize("text", ["1K", "1e", "1Mi3", "1-2", "1ki", "1mi"])
def test_suffix_errors(text: str) -> None:
    with pytest.raises(ValueError, match="unable to parse quantity's suffix"):
        parse_quantity(text)


def test_not_a_number_is_rejected() -> None:
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            parse_quantity(bad)
