"""Drift between reference data and current data: statistics per feature and a gate over them.

``detect_drift(reference, current, ...)`` returns a :class:`DriftVerdict`. This package never
imports Great Expectations; it needs only numpy, pandas and scipy.
"""

from __future__ import annotations

from mlci_lib.drift.gate import DriftConfig, DriftVerdict, FeatureDrift, FeatureRule, detect_drift

__all__ = ["DriftConfig", "DriftVerdict", "FeatureDrift", "FeatureRule", "detect_drift"]
