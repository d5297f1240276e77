"""Fit a Markdown report under a size limit (GitHub comments hold at most 65,536 characters).

The head of the report (the verdict line and the links) is always kept. When the report is too
long, the charts go first, then the longest sections are cut at a line boundary with a note
that says so. A cut never leaves a code fence or a ``<details>`` block open.
"""

from __future__ import annotations

import re

#: GitHub refuses a comment body longer than this (characters).
GITHUB_COMMENT_LIMIT = 65_536
#: Our own ceiling for comment bodies: a margin under GitHub's, since it may count differently.
COMMENT_BUDGET = 60_000
#: The job summary allows 1 MiB per step.
SUMMARY_BUDGET = 900_000
TRUNCATED_NOTE = "*… cut to fit; the full report is in the report file.*"
_CHARTS_NOTE = "*Charts left out to fit; the full report is in the report file.*"
_MERMAID = re.compile(r"```mermaid\n.*?\n```\n?", re.DOTALL)
_HEADING = re.compile(r"^#{2,3} ")


def split_sections(markdown: str) -> list[str]:
    """Split at level-2 and level-3 headings that are outside code fences."""
    blocks: list[list[str]] = [[]]
    fenced = False
    for line in markdown.split("\n"):
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and _HEADING.match(line) and any(part.strip() for part in blocks[-1]):
            blocks.append([])
        blocks[-1].append(line)
    return ["\n".join(block).strip("\n") for block in blocks if any(part.strip() for part in block)]


def _close_open_blocks(lines: list[str]) -> list[str]:
    fences = sum(1 for line in lines if line.startswith("```"))
    out = list(lines)
    if fences % 2:
        out.append("```")
    opened = sum(line.count("<details") for line in out)
    closed = sum(line.count("</details>") for line in out)
    out += ["", "</details>"] * max(opened - closed, 0)
    return out


def _cut(section: str, budget: int) -> str:
    """The first lines of ``section`` that fit in ``budget`` characters, closed, with a note."""
    reserve = len(TRUNCATED_NOTE) + 40  # room for closing tags and the note
    kept: list[str] = []
    used = 0
    for line in section.split("\n"):
        if used + len(line) + 1 > budget - reserve:
            break
        kept.append(line)
        used += len(line) + 1
    closed = _close_open_blocks(kept)
    return "\n".join([*closed, "", TRUNCATED_NOTE]).strip("\n")


def _joined(parts: list[str]) -> str:
    return "\n\n".join(p for p in parts if p) + "\n"


def fit_markdown(markdown: str, limit: int = COMMENT_BUDGET) -> str:
    """``markdown`` unchanged when it fits in ``limit`` characters, else a shortened version."""
    if len(markdown) <= limit:
        return markdown
    parts = split_sections(markdown)
    without_charts = [_MERMAID.sub("", p).rstrip() for p in parts]
    if without_charts != parts:
        parts = [*without_charts, _CHARTS_NOTE]
        if len(_joined(parts)) <= limit:
            return _joined(parts)
    # Cut the longest sections (never the head) until the whole fits.
    for _ in range(len(parts)):
        excess = len(_joined(parts)) - limit
        if excess <= 0:
            return _joined(parts)
        candidates = [i for i in range(1, len(parts)) if parts[i] != _CHARTS_NOTE]
        if not candidates:
            break
        longest = max(candidates, key=lambda i: len(parts[i]))
        target = max(len(parts[longest]) - excess, 0)
        if target < 200:
            parts[longest] = _cut(parts[longest], 200) if len(parts[longest]) > 200 else parts[longest]
            if len(_joined(parts)) > limit:
                parts[longest] = ""
                parts = [p for p in parts if p]
        else:
            parts[longest] = _cut(parts[longest], target)
    text = _joined(parts)
    if len(text) <= limit:
        return text
    # Last resort (a head longer than the limit): a hard cut that still closes what it opened.
    return _cut(text, limit) + "\n"
