"""The gate's settings, merged once: an option beats the gate file, which beats the default.

Every setting a user can give both on the command line (or a library call) and in the gate file
is resolved here, and only here, so the order cannot differ from one setting to the next.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TypeVar

from mlci_lib.errors import UsageError
from mlci_lib.gate.bootstrap import BootstrapSettings
from mlci_lib.gate.rules import (
    GateRules,
    InconclusivePolicy,
    check_confidence,
    check_policy,
    check_positive_int,
    check_resamples,
    check_seed,
)

DEFAULT_SLICE_MIN_SIZE = 30
_T = TypeVar("_T")
DEFAULT_POLICY: InconclusivePolicy = "fail"


@dataclasses.dataclass(frozen=True)
class GateSettings:
    """How the gate decides: the bootstrap, the inconclusive policy and the slices."""

    bootstrap: BootstrapSettings
    on_inconclusive: InconclusivePolicy
    slice_columns: tuple[str, ...]
    slice_min_size: int

    @classmethod
    def resolve(
        cls,
        rules: GateRules,
        *,
        resamples: int | None = None,
        confidence: float | None = None,
        seed: int | None = None,
        on_inconclusive: str | None = None,
        slice_column: Sequence[str] = (),
        slice_min_size: int | None = None,
    ) -> GateSettings:
        """Each setting from its option when given, else the gate file's, else the default."""
        defaults = BootstrapSettings()
        bootstrap = BootstrapSettings(
            resamples=_first(
                check_resamples(resamples, "option --resamples") if resamples is not None else None,
                rules.resamples,
                defaults.resamples,
            ),
            confidence=_first(
                check_confidence(confidence, "option --confidence") if confidence is not None else None,
                rules.confidence,
                defaults.confidence,
            ),
            seed=_first(check_seed(seed, "option --seed") if seed is not None else None, rules.seed, 0),
        )
        option_policy = check_policy(on_inconclusive, "option --on-inconclusive") if on_inconclusive else None
        policy = _first(
            option_policy,
            rules.on_inconclusive,
            DEFAULT_POLICY,
        )
        columns = tuple(dict.fromkeys([*rules.slice_columns, *slice_column]))
        if rules.slice_metrics and not columns:
            raise UsageError("slice rules need slice columns", hint="set slices.columns or --slice-column")
        option_size = (
            check_positive_int(slice_min_size, "option --slice-min-size")
            if slice_min_size is not None
            else None
        )
        min_size = _first(
            option_size,
            rules.slice_min_size,
            DEFAULT_SLICE_MIN_SIZE,
        )
        return cls(
            bootstrap=bootstrap, on_inconclusive=policy, slice_columns=columns, slice_min_size=min_size
        )


def _first(option: _T | None, gate_file: _T | None, default: _T) -> _T:
    return option if option is not None else gate_file if gate_file is not None else default
