"""Run an expectation suite on data with Great Expectations 1.x semantics.

Two engines give one verdict. ``pandas`` (the default, mlci's native engine) evaluates the common
expectation types itself, with GX's semantics (:mod:`mlci_lib.data.native`), and runs every other
expectation on GX; GX is not imported when the suite needs nothing from it. ``gx`` runs every
expectation on GX. GX runs in an ephemeral context: no GX project folder is read or written. The
verdict fails closed: data without rows fails, a missing column is a failed expectation, an
expectation that raised counts as failed, and an expectation type GX does not know is an input
error that names it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import TYPE_CHECKING, Any, ClassVar

from mlci_lib.data.suite import Expectation, Suite, load_suite
from mlci_lib.errors import ConfigError, InputError
from mlci_lib.results import Result
from mlci_lib.values import shown

if TYPE_CHECKING:
    import pandas as pd

#: How ``mlci data check`` evaluates a suite (``--engine``).
ENGINES = ("pandas", "gx")

#: Expectations that compare the column's dtype; pandas 3's ``str`` dtype is unknown to GX there.
_TYPE_EXPECTATIONS = {"expect_column_values_to_be_in_type_list", "expect_column_values_to_be_of_type"}


@dataclasses.dataclass(frozen=True)
class ExpectationOutcome:
    index: int
    type: str
    column: str | None
    kwargs: dict[str, Any]
    success: bool
    element_count: int | None = None
    missing_count: int | None = None
    unexpected_count: int | None = None
    #: Share of the non-missing values that were unexpected (GX's ``unexpected_percent`` / 100).
    unexpected_share: float | None = None
    sample_unexpected: tuple[Any, ...] = ()
    observed_value: Any = None
    #: Why the expectation could not be evaluated (it then counts as failed).
    exception: str | None = None

    def describe(self) -> str:
        """One line for logs and annotations."""
        subject = f"{self.type} on column {self.column!r}" if self.column else self.type
        if self.exception:
            return f"{subject} could not be evaluated: {self.exception}"
        if self.success:
            return f"{subject} passed"
        if self.type == "expect_column_to_exist":
            return f"column {self.column!r} is missing from the data"
        parts = [f"{subject} failed"]
        if self.unexpected_count is not None:
            share = f" ({self.unexpected_share:.2%})" if self.unexpected_share is not None else ""
            parts.append(f"{self.unexpected_count} unexpected values{share}")
        if self.sample_unexpected:
            parts.append("e.g. " + ", ".join(_distinct_samples(self.sample_unexpected)))
        if self.observed_value is not None:
            parts.append(f"observed {_short(self.observed_value)}")
        return ": ".join(parts[:1]) + (": " + "; ".join(parts[1:]) if len(parts) > 1 else "")


@dataclasses.dataclass(frozen=True)
class DataCheckResult(Result):
    SCHEMA: ClassVar[str] = "mlci.data-check"
    SCHEMA_VERSION: ClassVar[int] = 1

    passed: bool
    data: str
    suite: str
    suite_source: str
    rows: int
    columns: int
    evaluated: int
    failed: int
    expectations: tuple[ExpectationOutcome, ...]
    #: Failures that are not one expectation, e.g. "the data has no rows".
    problems: tuple[str, ...]
    engine: str

    @property
    def failures(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(e for e in self.expectations if not e.success)


def _distinct_samples(values: tuple[Any, ...]) -> list[str]:
    """The sample values as shown, each once (a not-null failure's sample is all missing)."""
    return list(dict.fromkeys(_short(v) for v in values))


def _short(value: Any, limit: int = 60) -> str:
    if value is None:
        return "(missing)"  # GX lists a missing value as None (NaN and NA are null in our JSON)
    return shown(value, limit)


def _jsonable(value: Any) -> Any:
    """A sample or observed value as plain JSON: NaN and NA become null, unknown objects text."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return _jsonable(item())
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    return str(value)


# -- running GX -----------------------------------------------------------------------------


def _gx_context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def gx_suite(suite: Suite) -> Any:
    """Build the GX ``ExpectationSuite``; unknown types and bad arguments are input errors."""
    import great_expectations as gx
    from great_expectations.exceptions.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.registry import get_expectation_impl

    expectations = []
    for index, expectation in enumerate(suite.expectations):
        where = f"suite {suite.source}: expectation {index + 1} ({expectation.type})"
        try:
            impl = get_expectation_impl(expectation.type)
        except ExpectationNotFoundError:
            raise ConfigError(
                f"suite {suite.source}: expectation {index + 1} has unknown type {expectation.type!r}",
                hint="use an expectation type of Great Expectations 1.x (see its expectation gallery)",
            ) from None
        try:
            expectations.append(impl(**dict(expectation.kwargs), meta=dict(expectation.meta)))
        except Exception as exc:  # pydantic's ValidationError and GX's config errors
            detail = " ".join(str(exc).split())[:240]
            raise ConfigError(f"{where} has invalid arguments: {detail}", hint="fix its kwargs") from None
    return gx.ExpectationSuite(name=suite.name, expectations=expectations)


def _prepare_frame(frame: "pd.DataFrame", suite: Suite) -> "pd.DataFrame":
    """Give GX what it can type-check: pandas 3 ``str`` columns become ``object`` for type checks."""
    wanted = {e.column for e in suite.expectations if e.type in _TYPE_EXPECTATIONS and e.column}
    convert = [
        name
        for name in frame.columns
        if name in wanted and frame[name].dtype == "str" and frame[name].dtype != object
    ]
    if not convert:
        return frame
    frame = frame.copy(deep=False)
    for name in convert:
        frame[name] = frame[name].astype(object)
    return frame


def _outcome(index: int, expectation: Expectation, gx_result: Any, sample_size: int) -> ExpectationOutcome:
    info = gx_result.exception_info or {}
    message = None
    if info.get("raised_exception"):
        message = info.get("exception_message") or "raised an exception"
    else:
        for value in info.values():  # GX nests exceptions by metric when a metric failed
            if isinstance(value, dict) and value.get("raised_exception"):
                message = value.get("exception_message") or "raised an exception"
                break
    return outcome_of(
        index, expectation, bool(gx_result.success), dict(gx_result.result or {}), message, sample_size
    )


def outcome_of(
    index: int,
    expectation: Expectation,
    success: bool,
    result: dict[str, Any],
    message: str | None,
    sample_size: int,
) -> ExpectationOutcome:
    """The outcome of an expectation from what GX (or the native engine) reported."""
    percent = result.get("unexpected_percent")
    sample = result.get("partial_unexpected_list") or []
    success = bool(success) and message is None
    return ExpectationOutcome(
        index=index,
        type=expectation.type,
        column=expectation.column,
        kwargs=_jsonable(dict(expectation.kwargs)),
        success=success,
        element_count=result.get("element_count"),
        missing_count=result.get("missing_count"),
        unexpected_count=result.get("unexpected_count"),
        unexpected_share=None if percent is None else float(percent) / 100,
        sample_unexpected=tuple(_jsonable(v) for v in sample[:sample_size]),
        observed_value=_jsonable(result.get("observed_value")),
        exception=" ".join(str(message).split())[:300] if message else None,
    )


def check_data(
    data: "str | os.PathLike[str] | pd.DataFrame",
    suite: "str | os.PathLike[str] | Suite | dict[str, Any]",
    *,
    sample_size: int = 5,
    engine: str = "pandas",
) -> DataCheckResult:
    """Validate ``data`` (a table file or a data frame) against ``suite`` with GX 1.x semantics.

    ``engine="pandas"`` (mlci's native engine on pandas and pyarrow) evaluates the common
    expectation types natively and the others on GX; ``engine="gx"`` runs all of them on GX.
    """
    import pandas as pd

    from mlci_lib.data import native
    from mlci_lib.tables import read_table, require_uniform_types

    if engine not in ENGINES:
        raise InputError(f"unknown data check engine {engine!r}", hint=f"use --engine {' or '.join(ENGINES)}")
    loaded = load_suite(suite)
    if isinstance(data, pd.DataFrame):
        frame, data_name = data, "<data frame>"
    else:
        frame, data_name = read_table(data, what="data", require_rows=False), str(data)
    require_uniform_types(frame, file=data_name, what="data")
    if sample_size < 0:
        raise InputError(f"sample size must be 0 or more, got {sample_size}")
    covered = [engine == "pandas" and native.covers(e) for e in loaded.expectations]
    uncovered = [e for e, ok in zip(loaded.expectations, covered, strict=True) if not ok]
    if uncovered:
        # Unknown types and bad arguments fail before any expectation is evaluated.
        gx_suite(dataclasses.replace(loaded, expectations=tuple(uncovered)))
    if len(frame) == 0:
        problem = "the data has no rows (an empty table passes no check)"
        outcomes = tuple(
            ExpectationOutcome(
                i, e.type, e.column, _jsonable(dict(e.kwargs)), False, exception="not evaluated: no rows"
            )
            for i, e in enumerate(loaded.expectations)
        )
        return _result(loaded, data_name, frame, outcomes, (problem,), _engine_name(engine, len(uncovered)))
    prepared = _prepare_frame(frame, loaded)
    found: dict[int, ExpectationOutcome] = {}
    if engine == "pandas":
        columns = native.Columns(prepared)
        for index, (expectation, ok) in enumerate(zip(loaded.expectations, covered, strict=True)):
            if not ok:
                continue
            answer = native.dtype_in_list(expectation, columns) or native.evaluate(
                expectation, columns, sample_size
            )
            if answer is not None:
                found[index] = outcome_of(
                    index, expectation, answer.success, answer.result, None, sample_size
                )
    rest = [i for i in range(len(loaded.expectations)) if i not in found]
    if rest:
        part = dataclasses.replace(loaded, expectations=tuple(loaded.expectations[i] for i in rest))
        for index, outcome in zip(rest, _run_gx(part, prepared, sample_size), strict=True):
            found[index] = dataclasses.replace(outcome, index=index)
    outcomes = tuple(found[i] for i in range(len(loaded.expectations)))
    return _result(loaded, data_name, frame, outcomes, (), _engine_name(engine, len(rest)))


def _engine_name(engine: str, on_gx: int) -> str:
    from importlib.metadata import version

    gx = f"Great Expectations {version('great_expectations')}"
    if engine == "gx":
        return gx
    if on_gx == 0:
        return "mlci native engine (Great Expectations 1.x semantics)"
    return f"mlci native engine, {on_gx} expectation{'s' if on_gx != 1 else ''} on {gx}"


def _result(
    loaded: Suite,
    data_name: str,
    frame: "pd.DataFrame",
    outcomes: tuple[ExpectationOutcome, ...],
    problems: tuple[str, ...],
    engine: str,
) -> DataCheckResult:
    failed = sum(1 for o in outcomes if not o.success)
    return DataCheckResult(
        passed=failed == 0 and not problems,
        data=data_name,
        suite=loaded.name,
        suite_source=loaded.source,
        rows=len(frame),
        columns=len(frame.columns),
        evaluated=len(outcomes),
        failed=failed,
        expectations=outcomes,
        problems=problems,
        engine=engine,
    )


def _run_gx(suite: Suite, frame: "pd.DataFrame", sample_size: int) -> list[ExpectationOutcome]:
    """Outcomes of ``suite`` on ``frame`` from GX itself, in the suite's order."""
    gx_expectations = gx_suite(suite)
    context = _gx_context()
    asset = context.data_sources.add_pandas("mlci").add_dataframe_asset("data")
    definition = asset.add_batch_definition_whole_dataframe("whole")
    # GX's own validator, without a validation definition: ValidationDefinition.run also stores
    # the result, and that store's JSON encoder raises on the NumPy booleans some expectations
    # report ("Object of type bool is not JSON serializable"), which GX's batch.validate() does
    # not. batch.validate() in turn fingerprints the whole frame once more (a hash of every row).
    from great_expectations.validator.v1_validator import Validator

    validator = Validator(
        batch_definition=definition,
        batch_parameters={"dataframe": frame},
        result_format={"result_format": "BASIC", "partial_unexpected_count": max(sample_size, 1)},
    )
    validation = validator.validate_expectation_suite(context.suites.add(gx_expectations))
    # GX returns results in its own order; match them to the suite by configuration.
    by_position = _match_results(suite, validation.results)
    return [_outcome(i, e, by_position[i], sample_size) for i, e in enumerate(suite.expectations)]


def _key(kind: str, kwargs: Any) -> str:
    import json

    clean = {k: v for k, v in dict(kwargs).items() if k != "batch_id"}
    return kind + json.dumps(_jsonable(clean), sort_keys=True, default=str)


def _match_results(suite: Suite, results: list[Any]) -> list[Any]:
    pools: dict[str, list[Any]] = {}
    for result in results:
        config = result.expectation_config
        pools.setdefault(_key(config.type, config.kwargs), []).append(result)
    matched = []
    for expectation in suite.expectations:
        pool = pools.get(_key(expectation.type, _gx_kwargs(expectation)))
        if not pool:
            raise InputError(
                f"Great Expectations returned no result for {expectation.type} on {expectation.column!r}",
                hint="please report this with the suite",
            )
        matched.append(pool.pop(0))
    return matched


def _gx_kwargs(expectation: Expectation) -> dict[str, Any]:
    """The kwargs as GX echoes them back (GX normalizes numbers and fills defaults)."""
    from great_expectations.expectations.registry import get_expectation_impl

    impl = get_expectation_impl(expectation.type)
    return dict(impl(**dict(expectation.kwargs)).configuration.kwargs)
