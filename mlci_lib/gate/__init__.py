"""The metric gate: a noise-aware verdict of a candidate model against its baseline.

``run_gate`` reads predictions or metrics, computes metrics by scikit-learn's definitions,
bootstraps the candidate-minus-baseline difference when it has per-row predictions, and decides
every rule as pass, fail or inconclusive. Modules: metrics (definitions), predictions (inputs),
bootstrap (intervals), rules (gate file), latency, verdict (the decision), render (Markdown).
"""

from __future__ import annotations

from mlci_lib.gate.metrics import METRICS
from mlci_lib.gate.predictions import compute_metrics
from mlci_lib.gate.results import GateVerdict, RuleResult
from mlci_lib.gate.rules import GateRules, load_gate_rules
from mlci_lib.gate.verdict import run_gate

__all__ = [
    "METRICS",
    "GateRules",
    "GateVerdict",
    "RuleResult",
    "compute_metrics",
    "load_gate_rules",
    "run_gate",
]
