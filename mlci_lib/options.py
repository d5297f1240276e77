"""Parsing of option values that arrive as strings (CLI flags, action inputs, config files)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from mlci_lib.errors import UsageError

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", ""}


def parse_bool(value: str | bool | None, *, option: str) -> bool:
    """The one place a boolean is parsed: true/false, yes/no, on/off, 1/0 (any case)."""
    if isinstance(value, bool):
        return value
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UsageError(f"option {option} must be true or false, got {value!r}")


def parse_list(value: str | None) -> list[str]:
    """Split a multi-line or comma-separated input into its non-empty items."""
    if not value:
        return []
    items: list[str] = []
    for line in value.replace(",", "\n").splitlines():
        line = line.strip()
        if line:
            items.append(line)
    return items


def parse_number(
    value: str | int | float,
    *,
    option: str,
    kind: type[int] | type[float] = float,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Any:
    """The one place a numeric option is parsed and range-checked.

    ``low``/``high`` bound the value (inclusive unless ``low_open``/``high_open``); NaN and
    infinity are never accepted. The error names the option and the range in one line.
    """
    number, problem = number_problem(value, kind, low, high, low_open=low_open, high_open=high_open)
    if problem:
        raise UsageError(f"option {option} {problem}")
    return number


def number_problem(
    value: str | int | float,
    kind: type[int] | type[float],
    low: float | None,
    high: float | None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> tuple[Any, str]:
    """(the number, "") or (None, "must be a whole number of at least 1, got '-1'")."""
    text = str(value).strip()
    wanted = "a whole number" if kind is int else "a number"
    span = describe_range(low, high, low_open=low_open, high_open=high_open)
    refused = f"must be {wanted}{span}, got {value!r}"
    try:
        number: float = int(text) if kind is int else float(text)
    except ValueError:
        return None, refused
    if not math.isfinite(number):
        return None, refused
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if too_low or too_high:
        return None, refused
    return number, ""


def describe_range(
    low: float | None, high: float | None, *, low_open: bool = False, high_open: bool = False
) -> str:
    """ " from 1 to 65535", " above 0", " of at least 1"... ("" when unbounded)."""

    def show(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else repr(float(x))

    if low is not None and high is not None:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        if not low_open and not high_open:
            return f" from {show(low)} to {show(high)}"
        return f" in {left}{show(low)}, {show(high)}{right}"
    if low is not None:
        return f" above {show(low)}" if low_open else f" of at least {show(low)}"
    if high is not None:
        return f" below {show(high)}" if high_open else f" of at most {show(high)}"
    return ""


def suggest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean max-drop?)' for a near miss among ``choices``, else ''."""
    import difflib

    options = list(choices)
    normal = {c.replace("_", "-").lower(): c for c in options}
    key = word.replace("_", "-").lower()
    if key in normal:
        return f" (did you mean {normal[key]}?)"
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def check_keys(mapping: Mapping[Any, Any], allowed: Iterable[str], *, where: str) -> None:
    """Refuse a key of ``mapping`` that is not in ``allowed``, suggesting the nearest one.

    Keys have one spelling (the action contract's kebab-case): ``max_drop`` is not ``max-drop``.
    """
    from mlci_lib.errors import ConfigError

    known = list(allowed)
    for key in mapping:
        if str(key) not in known:
            raise ConfigError(
                f"{where}: unknown key {key!r}{suggest(str(key), known)}",
                hint=f"the keys are {', '.join(known)}",
            )
