"""The gate's result types: the verdict, each rule's outcome, the slice table, and their vocabularies.

The one home of the ``mlci.gate-verdict`` shape; its JSON Schema is derived from these classes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from mlci_lib.gate.rules import InconclusivePolicy
from mlci_lib.results import Result

#: The closed vocabularies of a verdict: Literal types, so type checkers and the JSON Schema
#: (mlci_lib/schemas/mlci.gate-verdict.schema.json, derived from these) both know them.
Outcome = Literal["pass", "fail", "inconclusive", "undefined", "skipped"]
Status = Literal["pass", "warn", "fail"]
RuleKind = Literal[
    "metric", "slice", "slice-gap", "latency", "canary-errors", "canary-latency", "canary-predictions",
    # mlci monitor check's rules on a window of production traffic
    "rows", "drift", "prediction-drift", "data-quality", "estimated", "calibration",
]  # fmt: skip
Direction = Literal["higher", "lower"]
Comparison = Literal[">=", "<=", "|x| <="]
Method = Literal["bootstrap", "point"]

PASS: Outcome = "pass"
FAIL: Outcome = "fail"
INCONCLUSIVE: Outcome = "inconclusive"
UNDEFINED: Outcome = "undefined"
SKIPPED: Outcome = "skipped"
OUTCOMES: tuple[Outcome, ...] = (PASS, FAIL, INCONCLUSIVE, UNDEFINED, SKIPPED)


@dataclasses.dataclass(frozen=True)
class RuleResult:
    """The outcome of one check, with the numbers behind it."""

    rule: str
    kind: RuleKind
    metric: str
    check: str
    direction: Direction  # which way is better
    candidate: float | None
    baseline: float | None
    delta: float | None  # candidate - baseline
    #: What is compared with the threshold: value, change, relative-change or gap.
    statistic: str
    value: float | None
    interval: tuple[float, float] | None
    comparison: Comparison
    threshold: float
    outcome: Outcome
    required: bool = True
    slice: str | None = None
    #: "point", "bootstrap", or the interval method of a canary rule, spelled out.
    method: str = "point"
    message: str = ""
    #: The smallest distance between the statistic and the threshold that this sample size
    #: decides with 80% power at the verdict's confidence: (z_{1-α/2} + z_{0.80}) × SE, SE the
    #: standard deviation of the bootstrap distribution of the statistic. None without a bootstrap.
    mde: float | None = None
    #: For an inconclusive rule: the rows that would decide the observed distance from the
    #: threshold with 80% power, the SE scaling as 1/√n: n × ((z_{1-α/2} + z_{0.80}) × SE / distance)².
    rows_needed: int | None = None


@dataclasses.dataclass(frozen=True)
class SliceRow:
    column: str
    value: str
    rows: int
    gated: bool
    metrics: Mapping[str, float | None]


@dataclasses.dataclass(frozen=True)
class GateVerdict(Result):
    """The gate's decision: every rule with its numbers, and the overall result."""

    SCHEMA: ClassVar[str] = "mlci.gate-verdict"
    SCHEMA_VERSION: ClassVar[int] = 1

    passed: bool
    status: Status
    method: Method
    on_inconclusive: InconclusivePolicy
    confidence: float
    resamples: int
    seed: int
    task: str | None
    rows: int | None
    candidate: Mapping[str, Any]
    baseline: Mapping[str, Any] | None
    rules: tuple[RuleResult, ...]
    slices: tuple[SliceRow, ...] = ()
    counts: Mapping[str, int] = dataclasses.field(default_factory=dict)
    notes: tuple[str, ...] = ()
    #: Fingerprint of the data the candidate was evaluated on, when the gate was told (see run_gate).
    data_fingerprint: str | None = None

    def failing(self) -> list[RuleResult]:
        """Required rules that fail the gate: failed, or undefined (an undefined metric never passes)."""
        return [r for r in self.rules if r.required and r.outcome in (FAIL, UNDEFINED)]

    def inconclusive(self) -> list[RuleResult]:
        return [r for r in self.rules if r.required and r.outcome == INCONCLUSIVE]
