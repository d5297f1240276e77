"""The data-check result for people: one Markdown renderer for the job summary and the report.

``mlci data check`` renders the result it just computed; ``mlci report`` reads the result file
back into a :class:`~mlci_lib.data.check.DataCheckResult` and renders it here too. The one line
per expectation (annotations, logs) is :meth:`ExpectationOutcome.describe`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlci_lib.data.check import _distinct_samples, _short
from mlci_lib.report.escape import code, text
from mlci_lib.report.markdown import MAX_TABLE_ROWS, more, num

if TYPE_CHECKING:
    from mlci_lib.data.check import DataCheckResult, ExpectationOutcome

#: The job summary's title; the report calls the section "Data check".
TITLE = "mlci data check"
_HEADER = [
    "| # | expectation | column | result | unexpected | share | sample unexpected / observed / error |",
    "| ---: | --- | --- | :---: | ---: | ---: | --- |",
]


def check_markdown(v: DataCheckResult, *, title: str = TITLE) -> str:
    """The result as Markdown: what was checked, the failed expectations, then the passed ones."""
    if v.passed:
        head = f"### {text(title)}: ✅ passed, {v.evaluated} expectations"
    else:
        head = f"### {text(title)}: ❌ {v.failed} of {v.evaluated} expectations failed"
    lines = [
        head,
        "",
        f"Data {code(v.data)} ({v.rows:,} rows, {v.columns} columns), suite {code(v.suite)} "
        f"from {code(v.suite_source)}, {text(v.engine)}.",
        "",
    ]
    lines += [f"- **{text(problem)}**" for problem in v.problems]
    if v.problems:
        lines.append("")
    failures = [e for e in v.expectations if not e.success]
    passes = [e for e in v.expectations if e.success]
    if failures:
        lines += _HEADER + [_row(e) for e in failures[:MAX_TABLE_ROWS]]
        lines += more(min(len(failures), MAX_TABLE_ROWS), len(failures), "failed expectations")
        lines.append("")
    if passes:
        lines += ["<details><summary>Passed expectations</summary>", "", *_HEADER]
        lines += [_row(e) for e in passes[:MAX_TABLE_ROWS]]
        lines += more(min(len(passes), MAX_TABLE_ROWS), len(passes), "passed expectations")
        lines += ["", "</details>", ""]
    return "\n".join(lines).rstrip() + "\n"


def _row(e: ExpectationOutcome) -> str:
    mark = "✅" if e.success else "❌"
    if e.exception:
        detail = f"error: {text(e.exception, 200)}"
    elif e.type == "expect_column_to_exist" and not e.success:
        detail = "the column is missing from the data"
    elif e.sample_unexpected:
        detail = ", ".join(code(sample, 40) for sample in _distinct_samples(e.sample_unexpected)[:5])
    elif e.observed_value is not None:
        detail = f"observed {code(_short(e.observed_value), 80)}"
    else:
        detail = ""
    count = "" if e.unexpected_count is None else f"{e.unexpected_count:,}"
    share = "" if e.unexpected_share is None else num(e.unexpected_share, percent=True)
    column = code(e.column) if e.column else ""
    return f"| {e.index + 1} | {text(e.type)} | {column} | {mark} | {count} | {share} | {detail} |"
