"""Data checks: expectation suites (GX JSON or compact YAML), running them, and profiling.

``check_data`` runs on Great Expectations 1.x and imports it only when called; ``load_suite``
and ``profile_data`` need only pandas.
"""

from __future__ import annotations

from mlci_lib.data.check import DataCheckResult, ExpectationOutcome, check_data
from mlci_lib.data.profile import profile_data, write_profile
from mlci_lib.data.suite import Expectation, Suite, load_suite

__all__ = [
    "DataCheckResult",
    "Expectation",
    "ExpectationOutcome",
    "Suite",
    "check_data",
    "load_suite",
    "profile_data",
    "write_profile",
]
