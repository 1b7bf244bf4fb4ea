"""Resource quantities (``"100m"``, ``"1.5Gi"``, ``"2"``, ``"1e3"``) as Kubernetes reads them.

A quantity is a decimal number followed by an optional suffix:

* binary SI: ``Ki Mi Gi Ti Pi Ei`` (powers of 1024),
* decimal SI: ``n u m k M G T P E`` (powers of 1000) or none,
* a decimal exponent: ``e3``, ``E-2``.

The suffix also fixes the *format* a quantity is written back in (``BinarySI``,
``DecimalSI`` or ``DecimalExponent``).  Values are kept exact as :class:`~decimal.Decimal`;
as in Kubernetes, any non-zero value finer than one nano unit is rounded up (away from
zero) to ``1n`` precision, and magnitudes are capped at ``2**63 - 1``.

The canonical text (:func:`format_quantity`, :func:`canonicalize_quantity`) is the one the
Kubernetes API server returns: ``"1000m"`` reads back as ``"1"``, ``"1.5Gi"`` as
``"1536Mi"``, ``0.5`` as ``"500m"``.
"""

from __future__ import annotations

import re
from decimal import ROUND_UP, Context, Decimal, localcontext
from functools import lru_cache

__all__ = [
    "BINARY_SI",
    "DECIMAL_EXPONENT",
    "DECIMAL_SI",
    "FORMAT_ERROR",
    "canonicalize_quantity",
    "format_quantity",
    "milli_value",
    "parse_quantity",
    "parse_quantity_with_format",
    "value",
]

BINARY_SI = "BinarySI"
DECIMAL_SI = "DecimalSI"
DECIMAL_EXPONENT = "DecimalExponent"

QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
FORMAT_ERROR = f"quantities must match the regular expression '{QUANTITY_PATTERN}'"
SUFFIX_ERROR = "unable to parse quantity's suffix"
NUMERIC_ERROR = "unable to parse numeric part of quantity"

_SHAPE = re.compile(QUANTITY_PATTERN)
_NUMBER = re.compile(r"[+-]?([0-9]*)(?:\.([0-9]*))?")
_EXPONENT = re.compile(r"[eE]([+-]?[0-9]+)")

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_BY_EXP = {exp: suffix for suffix, exp in _DECIMAL.items()}
_BINARY_BY_EXP = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]

_MAX = Decimal(2**63 - 1)
_NANO = Decimal("1e-9")
# Enough precision for any int64 amount at nano scale and for suffix arithmetic.
_CTX = Context(prec=200)


def parse_quantity_with_format(text: str | int | float) -> tuple[Decimal, str]:
    """Parse a quantity and tell the format its suffix implies.

    :param text: a quantity string, or a JSON number (converted with ``str``).
    :returns: ``(value, format)`` with format one of ``BinarySI``, ``DecimalSI``,
        ``DecimalExponent``.
    :raises ValueError: with Kubernetes' wording when the text is not a quantity.
    """
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(FORMAT_ERROR)
    if isinstance(text, float):
        if text != text or text in (float("inf"), float("-inf")):
            raise ValueError(FORMAT_ERROR)
        text = repr(text)
    elif isinstance(text, int):
        text = str(text)
    return _parse_cached(text)


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> tuple[Decimal, str]:
    text = text.strip()
    if not text or not _SHAPE.match(text):
        raise ValueError(FORMAT_ERROR)
    number = _NUMBER.match(text)
    assert number is not None  # the pattern above always matches a (possibly empty) prefix
    suffix = text[number.end() :]
    if "." in suffix:  # a second decimal point
        raise ValueError(FORMAT_ERROR)
    whole, frac = number.group(1), number.group(2) or ""
    digits = (whole or "0") + ("." + frac if frac else "")
    sign = "-" if text.startswith("-") else ""
    if suffix in _BINARY:
        fmt, base2, exp10 = BINARY_SI, _BINARY[suffix], 0
    elif suffix in _DECIMAL:
        fmt, base2, exp10 = DECIMAL_SI, 0, _DECIMAL[suffix]
    else:
        m = _EXPONENT.fullmatch(suffix)
        if m is None:
            raise ValueError(SUFFIX_ERROR)
        exp10 = int(m.group(1))
        if not -(2**31) <= exp10 < 2**31:
            raise ValueError(SUFFIX_ERROR)
        fmt, base2 = DECIMAL_EXPONENT, 0
    with localcontext(_CTX):
        try:
            amount = Decimal(sign + digits)
        except ArithmeticError:
            raise ValueError(NUMERIC_ERROR) from None
        if base2:
            amount *= 2**base2
        elif exp10:
            amount = amount.scaleb(exp10)
        amount = _round_and_cap(amount)
    if fmt == BINARY_SI and -1 < amount < 1 and amount != 0:
        fmt = DECIMAL_SI
    return amount, fmt


def _round_and_cap(amount: Decimal) -> Decimal:
    """Round away from zero to nano precision and cap the magnitude at ``2**63 - 1``."""
    if amount == 0:
        return Decimal(0)
    with localcontext(_CTX):
        negative = amount < 0
        magnitude = abs(amount)
        if magnitude.as_tuple().exponent < -9:  # type: ignore[operator]
            magnitude = magnitude.quantize(_NANO, rounding=ROUND_UP)
        magnitude = min(magnitude, _MAX)
        return -magnitude if negative else magnitude


def parse_quantity(text: str | int | float) -> Decimal:
    """Parse a quantity into its exact value.

    >>> parse_quantity("1.5Gi")
    Decimal('1610612736.0')

    :param text: a quantity string such as ``"100m"`` or ``"2Gi"``, or a number.
    :returns: the value in base units (cores, bytes, ...).
    :raises ValueError: with Kubernetes' wording when the text is not a quantity.
    """
    return parse_quantity_with_format(text)[0]


def milli_value(text: str | int | float | Decimal) -> int:
    """Value times 1000 as an integer, rounded away from zero (``"0.1"`` -> 100).

    :param text: a quantity or an already parsed value.
    :returns: the value in thousandths of the base unit, e.g. millicores.
    :raises ValueError: when ``text`` is not a quantity.
    """
    amount = text if isinstance(text, Decimal) else parse_quantity(text)
    with localcontext(_CTX):
        return int((amount * 1000).to_integral_value(rounding=ROUND_UP))


def value(text: str | int | float | Decimal) -> int:
    """Value as an integer, rounded away from zero (``"100m"`` -> 1).

    :param text: a quantity or an already parsed value.
    :returns: the value in base units.
    :raises ValueError: when ``text`` is not a quantity.
    """
    amount = text if isinstance(text, Decimal) else parse_quantity(text)
    with localcontext(_CTX):
        return int(amount.to_integral_value(rounding=ROUND_UP))


def format_quantity(amount: Decimal | int, fmt: str = DECIMAL_SI) -> str:
    """Canonical text of a value in a format, as the Kubernetes API server writes it.

    Decimal formats use the largest power of 1000 (a suffix, or an ``eN`` exponent for
    ``DecimalExponent``) that keeps the mantissa an integer; ``BinarySI`` does the same
    with powers of 1024 and falls back to ``DecimalSI`` for values below 1024 in magnitude
    or with a fractional part.

    :param amount: the value in base units.
    :param fmt: ``DecimalSI`` (default), ``BinarySI`` or ``DecimalExponent``.
    :returns: e.g. ``"500m"``, ``"1536Mi"``, ``"12e6"``.
    :raises ValueError: for an unknown format.
    """
    if fmt not in (DECIMAL_SI, BINARY_SI, DECIMAL_EXPONENT):
        raise ValueError(f"unknown quantity format {fmt!r}")
    amount = _round_and_cap(Decimal(amount))
    if amount == 0:
        return "0"
    sign = "-" if amount < 0 else ""
    magnitude = abs(amount)
    if fmt == BINARY_SI and (magnitude < 1024 or magnitude != magnitude.to_integral_value()):
        fmt = DECIMAL_SI
    if fmt == BINARY_SI:
        mantissa, power = int(magnitude), 0
        while mantissa % 1024 == 0 and power < len(_BINARY_BY_EXP) - 1:
            mantissa //= 1024
            power += 1
        return f"{sign}{mantissa}{_BINARY_BY_EXP[power]}"
    _, digits, exponent = magnitude.normalize(_CTX).as_tuple()
    mantissa = int("".join(map(str, digits)))
    assert isinstance(exponent, int)
    extra = exponent % 3  # move down to a multiple of three
    exponent -= extra
    mantissa *= 10**extra
    if fmt == DECIMAL_SI and exponent in _DECIMAL_BY_EXP:
        suffix = _DECIMAL_BY_EXP[exponent]
    else:
        suffix = f"e{exponent}" if exponent else ""
    return f"{sign}{mantissa}{suffix}"


@lru_cache(maxsize=4096)
def _canonical_cached(text: str) -> str:
    return format_quantity(*parse_quantity_with_format(text))


def canonicalize_quantity(text: str | int | float) -> str:
    """Parse a quantity and write it back canonically in the format it was given in.

    :param text: a quantity string or a JSON number.
    :returns: the canonical text (``"1000m"`` -> ``"1"``, ``0.25`` -> ``"250m"``).
    :raises ValueError: when ``text`` is not a quantity.
    """
    if isinstance(text, str):
        return _canonical_cached(text)
    return format_quantity(*parse_quantity_with_format(text))
