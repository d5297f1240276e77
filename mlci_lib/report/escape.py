"""The one escaper for text from data in Markdown: the report, the PR comment, the issue, summaries.

Verdicts carry text that came from users' data and files (column names, category and slice
values, file paths, stage and shell messages). Every such value is escaped once, here, where it
is put into Markdown, so that it renders as the text it is and nothing else:

- HTML (``<img>``, ``<h1>``, an unbalanced ``<details>``, a ``<!-- mlci-report -->`` marker) is
  written as entities;
- Markdown syntax (``|`` that would split a table cell, emphasis, ``[link](javascript:...)``,
  backticks, a leading ``#``, ``>``, ``-``, ``+``, ``=`` or ``1.``) is backslash-escaped;
- ``@name`` gets a zero-width space after the ``@``, so no one is mentioned (and notified);
- line breaks and runs of white space become one space, so a value stays on its line.

:func:`text` is for running text and table cells; :func:`code` for a value shown as code
(a path, a category value): in a code span nothing but a backtick or a pipe could escape, and
both are neutralized.
"""

from __future__ import annotations

import re
from typing import Any

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~!])")
#: What starts a block (list item, heading underline, ordered item) when it begins a line.
_LEADING_MARK = re.compile(r"^([-+=])")
_LEADING_NUMBER = re.compile(r"^(\d+)([.)])")
#: U+200B ZERO WIDTH SPACE: invisible, and GitHub links no ``@mention`` across it.
ZERO_WIDTH_SPACE = "\u200b"


def _one_line(value: Any, limit: int) -> str:
    raw = " ".join(str(value).split())
    if len(raw) > limit:
        raw = raw[: limit - 1] + "…"
    return raw


def text(value: Any, limit: int = 300) -> str:
    """``value`` as plain text, safe anywhere in a Markdown line and in a table cell."""
    raw = _one_line(value, limit)
    escaped = raw.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    escaped = _MD_SPECIAL.sub(r"\\\1", escaped)
    escaped = _LEADING_MARK.sub(r"\\\1", escaped)
    escaped = _LEADING_NUMBER.sub(r"\1\\\2", escaped)
    return escaped.replace("@", "@" + ZERO_WIDTH_SPACE)


def code(value: Any, limit: int = 120) -> str:
    """``value`` as a code span, safe in a table cell (no backtick or pipe can end it early)."""
    raw = _one_line(value, limit).replace("`", "'")
    return "`" + raw.replace("|", "\\|") + "`"
