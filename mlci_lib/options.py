"""Parsing of option values that arrive as strings (CLI flags, action inputs, config files)."""

from __future__ import annotations

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
