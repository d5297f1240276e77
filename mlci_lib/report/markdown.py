"""The report's own Markdown (head, links, provenance, plots) and the blocks every verdict renderer uses.

Each verdict kind has one renderer, beside its result (``gate/render.py``, ``data/render.py``,
``drift/render.py``, ``pipeline/render.py``), used by the job summary and the report alike; they
share the number format, the row limit and the "… and N more" line from here.

Verdicts hold text from users' data (file names, column values, messages), so everything that
comes from one goes through :mod:`mlci_lib.report.escape` (``text`` and ``code``, re-exported
here): no stray table pipes, HTML tags, @-mentions or fake report markers.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mlci_lib.report.escape import code, text

#: Rows shown per table before "… and N more"; the full data is in the verdict file.
MAX_TABLE_ROWS = 50


@dataclasses.dataclass(frozen=True)
class Section:
    """One part of the report; ``name`` says what it is (head, stages, gate, data-check, ...)."""

    name: str
    markdown: str


# -- numbers ------------------------------------------------------------------------


def num(value: Any, *, signed: bool = False, percent: bool = False) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–"
    if not math.isfinite(value):
        return "–"
    if percent:
        return f"{value * 100:+.2f}%" if signed else f"{value * 100:.2f}%"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:+.3g}" if signed else f"{value:.3g}"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def more(shown: int, total: int, what: str) -> list[str]:
    """A last line saying how many of ``total`` rows a table left out after ``shown``."""
    if total <= shown:
        return []
    return ["", f"… and {total - shown} more {what} (see the verdict file)."]


# -- head ------------------------------------------------------------------------------------------


def headline(passed: bool, failed: Sequence[str], title: str) -> str:
    if passed:
        return f"## ✅ {text(title)}: passed"
    where = ", ".join(f"**{text(name)}**" for name in failed)
    return f"## ❌ {text(title)}: failed" + (f" at {where}" if where else "")


def _server(git: Mapping[str, Any]) -> str | None:
    run_url, repo = git.get("run_url"), git.get("repository")
    if isinstance(run_url, str) and isinstance(repo, str) and f"/{repo}/" in run_url:
        server = run_url.split(f"/{repo}/", 1)[0]
        if re.fullmatch(r"https?://[A-Za-z0-9.:-]+", server):
            return server
    return None


def _safe_url(url: Any) -> str | None:
    if isinstance(url, str) and re.fullmatch(r"https?://[^\s()<>\"'`]+", url):
        return url
    return None


def links(
    git: Mapping[str, Any] | None,
    data_fingerprint: str | None,
    model: Mapping[str, Any] | None,
    image: Mapping[str, Any] | None,
    deployment: Mapping[str, Any] | None = None,
) -> str:
    """One line: commit → data fingerprint → model version → image digest (→ deployment), with a
    run link."""
    git = git or {}
    parts = []
    commit = git.get("commit")
    if isinstance(commit, str) and commit:
        shown = code(commit[:12])
        server, repo = _server(git), git.get("repository")
        if server and re.fullmatch(r"[0-9a-fA-F]{7,64}", commit):
            shown = f"[{shown}]({server}/{repo}/commit/{commit})"
        ref = git.get("branch") or git.get("ref")
        parts.append(f"commit {shown}" + (f" ({text(ref, 80)})" if ref else ""))
    else:
        parts.append("commit –")
    parts.append(f"data {code(_short_digest(data_fingerprint))}" if data_fingerprint else "data –")
    if model:
        name, version = model.get("name"), model.get("version")
        shown = code(f"{name or 'model'}" + (f" v{version}" if version is not None else ""))
        parts.append(f"model {shown}")
    else:
        parts.append("model –")
    if image and (image.get("digest") or image.get("reference")):
        parts.append(f"image {code(_short_digest(image.get('digest') or image.get('reference')))}")
    else:
        parts.append("image –")
    if deployment:
        parts.append(_deployment(deployment))
    line = " → ".join(parts)
    run_url = _safe_url(git.get("run_url"))
    return line + (f" · [run]({run_url})" if run_url else "")


def _deployment(deployment: Mapping[str, Any]) -> str:
    """The deployment link of the chain (image digest → deployment): where, how, which revision, when."""
    where = f"{deployment.get('namespace')}/{deployment.get('name')}"
    revision = deployment.get("revision") or deployment.get("commit")
    shown = f"deployment {text(deployment.get('target'))} {code(where)} ({text(deployment.get('mode'))})"
    if revision:
        shown += f" revision {code(str(revision)[:12])}"
    if deployment.get("time"):
        shown += f" at {text(deployment.get('time'))}"
    return shown


def _short_digest(value: Any) -> str:
    text_value = str(value)
    if re.fullmatch(r"sha256:[0-9a-f]{64}", text_value):
        return text_value[:19] + "…"
    return text_value


def provenance(
    git: Mapping[str, Any] | None,
    data_fingerprint: str | None,
    model: Mapping[str, Any] | None,
    image: Mapping[str, Any] | None,
    deployment: Mapping[str, Any] | None = None,
) -> str:
    """A details table with every identifier in full, for copy-paste."""
    rows = []
    for key, value in (git or {}).items():
        if value:
            rows.append((f"git {key}", value))
    if data_fingerprint:
        rows.append(("data fingerprint", data_fingerprint))
    for key, value in (model or {}).items():
        if value is not None and value != "":
            rows.append((f"model {key}", value))
    for key, value in (image or {}).items():
        if value:
            rows.append((f"image {key}", ", ".join(map(str, value)) if isinstance(value, list) else value))
    for key, value in (deployment or {}).items():
        if value is not None and value != "":
            rows.append((f"deployment {key}", value))
    if not rows:
        return ""
    lines = ["<details><summary>Provenance</summary>", "", "| | |", "| --- | --- |"]
    lines += [f"| {text(k)} | {code(v, 200)} |" for k, v in rows]
    return "\n".join([*lines, "", "</details>"])


# -- plots -----------------------------------------------------------------------------------------


def plots_section(files: Sequence[str], folder: str | None) -> str:
    if not files:
        return ""
    lines = ["### Plots", ""]
    where = f" in {code(folder)}" if folder else ""
    lines.append(f"Written{where} for upload as a workflow artifact:")
    lines.append("")
    lines += [f"- {code(name)}" for name in files]
    return "\n".join(lines)
