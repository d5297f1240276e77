"""Converting scikit-learn, XGBoost and LightGBM models to ONNX, checked against the native model.

scikit-learn estimators and pipelines convert with skl2onnx; XGBoost and LightGBM with onnxmltools'
converters, registered with skl2onnx so that their scikit-learn wrappers convert inside pipelines
too, and on their own for bare boosters. The converted model is then run with onnxruntime on the
sample rows next to the native model: labels must be equal, and probabilities and regression values
within the tolerance (``|onnx - native| <= tolerance * max(1, |native|)``, the rule the image smoke
test applies), else the conversion is refused. Inputs are double where every operator of the
graph has a double kernel, else float32; trees compute in float32 either way, which is why the
default tolerance is 1e-4 and not zero.

SimpleImputer: see :func:`_with_double_imputer` (a double-precision form with standard operators).

Tree ensembles (:func:`_tree_converter`, wrapped around skl2onnx's and onnxmltools' own converters):

- skl2onnx 1.20's HistGradientBoosting converter puts Python ``False`` into the integer attribute
  ``nodes_missing_value_tracks_true`` for leaves, which the installed onnx (1.2x, protobuf 5+)
  refuses ("Expected an int, got a boolean"); booleans in list attributes become 0/1 before each
  node is made, the graph skl2onnx means to build.
- after double-precision preprocessing, the trees get their input through one Cast to float32 and
  declare float32 scores, as the tree operators compute: the comparison float32(x) <= float32(t)
  splits like scikit-learn, XGBoost and LightGBM do, which a double x against a float32 threshold
  does not (a HistGradientBoosting pipeline with a scaler disagreed on labels before this).

HistGradientBoosting with native categorical features is refused: that converter has no
categorical splits.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
from pathlib import Path
from typing import Any

from mlci_lib.errors import CheckFailed, InputError, ModelLoadError
from mlci_lib.models.loaded import LoadedModel
from mlci_lib.models.signature import ModelSignature
from mlci_lib.results import Result

DEFAULT_TOLERANCE = 1e-4
#: Opsets every onnxruntime since 1.14 runs; onnxmltools' tree converters need ai.onnx.ml 3.
TARGET_OPSET = {"": 15, "ai.onnx.ml": 3}
MAX_CHECK_ROWS = 1000


@dataclasses.dataclass(frozen=True)
class OnnxConversion(Result):
    """A model converted to ONNX and how closely it matches the native model on the sample rows."""

    SCHEMA = "mlci.onnx-conversion"
    SCHEMA_VERSION = 1

    path: Path
    digest: str
    source_digest: str
    estimator: str
    converter: str
    task: str
    opset: dict[str, int]
    #: Converted and native values agree when ``|onnx - native| <= tolerance * max(1, |native|)``.
    tolerance: float
    #: Largest ``|onnx - native|`` over probabilities (classifiers) or values (regressors).
    max_abs_difference: float
    rows_checked: int
    labels_equal: bool
    passed: bool
    message: str


class OnnxMismatchError(CheckFailed):
    """The converted model does not predict what the native one does; ``conversion`` says how."""

    title = "mlci ONNX conversion check failed"

    def __init__(self, message: str, conversion: OnnxConversion, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.conversion = conversion


def convert_model(
    loaded: LoadedModel,
    sample_frame: Any,
    dest: str | os.PathLike[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    name: str | None = None,
) -> OnnxConversion:
    """Convert ``loaded`` to the ONNX file ``dest`` and check it on ``sample_frame``'s rows.

    Raises ModelLoadError naming the estimator when no converter supports it, and
    :class:`OnnxMismatchError` (with the measured result) when the converted model differs.
    """
    if loaded.framework == "onnx":
        raise InputError(f"model {loaded.source} is already an ONNX model", hint="serve it as it is")
    if loaded.framework == "pickle":
        raise ModelLoadError(
            f"model {loaded.source} was loaded from a pickle; mlci converts scikit-learn, XGBoost and "
            "LightGBM models only",
            hint="save it with skops or its framework's own format",
        )
    if len(sample_frame) == 0:
        raise InputError("the sample rows for the ONNX conversion check are empty", hint="pass sample data")
    sample = loaded.prepare(sample_frame.head(MAX_CHECK_ROWS), source="sample data")
    signature = loaded.signature or ModelSignature.infer(sample)
    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    estimator = loaded.estimator
    onx, converter = _convert(estimator, signature, loaded.source)
    classes = loaded.classes
    task = "classification" if loaded.is_classifier else "regression"
    meta = {
        "signature": signature.to_dict(),
        "classes": classes,
        "task": task,
        "name": name or (loaded.metadata or {}).get("name"),
        "converted_from": {"digest": loaded.digest, "framework": loaded.framework, "converter": converter},
    }
    _write_onnx(onx, meta, target)
    try:
        return check_conversion(loaded, sample, target, converter=converter, tolerance=tolerance)
    except OnnxMismatchError as exc:
        if exc.conversion.labels_equal or not loaded.is_classifier:
            raise
        # Equal votes (a forest's 10 of 20 trees) are a tie that the graph's label output may break
        # the other way; scikit-learn takes the first class of highest probability. Labels
        # derived that way from the converted probabilities are tried once, under the same check.
        _write_onnx(onx, {**meta, "labels": "argmax"}, target)
        try:
            return check_conversion(loaded, sample, target, converter=converter, tolerance=tolerance)
        except OnnxMismatchError:
            raise exc from None


def _write_onnx(onx: Any, meta: dict[str, Any], target: Path) -> None:
    import json

    from mlci_lib.models.onnx_format import METADATA_KEY

    kept = [p for p in onx.metadata_props if p.key != METADATA_KEY]
    del onx.metadata_props[:]
    onx.metadata_props.extend(kept)
    entry = onx.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(meta, sort_keys=True, default=str)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(onx.SerializeToString())
    tmp.replace(target)


def check_conversion(
    loaded: LoadedModel, sample: Any, onnx_file: Path, *, converter: str, tolerance: float
) -> OnnxConversion:
    """Compare the ONNX model at ``onnx_file`` with ``loaded`` on ``sample`` (prepared rows)."""
    import numpy as np

    from mlci_lib.models.onnx_format import load_onnx

    converted = load_onnx(onnx_file)
    native_labels, native_scores = loaded.predict(sample, source="sample data")
    onnx_labels, onnx_scores = converted.predict(sample, source="sample data")
    if loaded.is_classifier:
        labels_equal = [_plain(v) for v in native_labels] == [_plain(v) for v in onnx_labels]
        want = np.asarray(native_scores, dtype=np.float64)
        got = np.asarray(onnx_scores, dtype=np.float64)
    else:
        labels_equal = True
        want = np.asarray(native_labels, dtype=np.float64).reshape(len(sample), -1)
        got = np.asarray(onnx_labels, dtype=np.float64).reshape(len(sample), -1)
    if want.shape != got.shape:
        difference = float("inf")
        within = False
    else:
        gap = np.abs(want - got)
        gap[np.isnan(want) & np.isnan(got)] = 0.0
        difference = float(np.nanmax(gap, initial=0.0)) if not np.isnan(gap).any() else float("inf")
        within = bool((gap <= tolerance * np.maximum(1.0, np.abs(np.nan_to_num(want)))).all())
    passed = labels_equal and within
    estimator_name = _describe(loaded.estimator)
    if passed:
        message = (
            f"{estimator_name} converted with {converter}: {len(sample)} rows, labels equal, "
            f"max |difference| {difference:.3g} within tolerance {tolerance:g}"
        )
    elif not labels_equal:
        differ = sum(1 for a, b in zip(native_labels, onnx_labels, strict=True) if _plain(a) != _plain(b))
        message = (
            f"the ONNX conversion of {estimator_name} predicts other labels on {differ} of {len(sample)} rows"
        )
    else:
        message = (
            f"the ONNX conversion of {estimator_name} differs from the native model by up to "
            f"{difference:.3g} on {len(sample)} rows (tolerance {tolerance:g})"
        )
    import onnx

    model = onnx.load(str(onnx_file), load_external_data=False)
    result = OnnxConversion(
        path=onnx_file,
        digest=converted.digest,
        source_digest=loaded.digest,
        estimator=estimator_name,
        converter=converter,
        task="classification" if loaded.is_classifier else "regression",
        opset={(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import},
        tolerance=tolerance,
        max_abs_difference=difference,
        rows_checked=len(sample),
        labels_equal=labels_equal,
        passed=passed,
        message=message,
    )
    if not passed:
        raise OnnxMismatchError(
            message,
            result,
            hint="serve this model with the native runtime (runtime: native), or pass a larger tolerance "
            "if the difference is acceptable",
        )
    return result


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _describe(estimator: Any) -> str:
    steps = getattr(estimator, "steps", None)
    if steps:
        return "Pipeline(" + ", ".join(type(step).__name__ for _, step in steps) + ")"
    return type(estimator).__name__


def _convert(estimator: Any, signature: ModelSignature, source: Path) -> tuple[Any, str]:
    """The ONNX ModelProto of ``estimator`` and the converter that made it."""
    from mlci_lib.models.native_adapter import NativeModel

    if isinstance(estimator, NativeModel) and estimator.framework in ("xgboost", "lightgbm"):
        # A model loaded from its framework's own file (what save_model writes): its Booster.
        if estimator.categories:
            raise ModelLoadError(
                f"model {source}: a {estimator.framework} model with categorical features has no "
                "ONNX converter (onnxmltools reads numeric splits only)",
                hint="serve it with the native runtime (runtime: native)",
            )
        estimator = estimator.native
    kind = type(estimator).__module__.split(".")[0]
    if kind in ("xgboost", "lightgbm") and type(estimator).__name__ == "Booster":
        return _convert_booster(estimator, kind, signature, source)
    if not hasattr(estimator, "fit"):
        raise ModelLoadError(
            f"model {source}: {type(estimator).__name__} has no ONNX converter in mlci",
            hint="mlci converts scikit-learn estimators and pipelines, XGBoost and LightGBM models",
        )
    try:
        import onnx  # noqa: F401 - the converters build onnx protobufs
        import skl2onnx  # noqa: F401
    except ImportError as exc:
        raise ModelLoadError(
            f"converting {_describe(estimator)} to ONNX needs {exc.name}, which is not installed",
            hint="pip install 'mlci[onnx]' (onnx, onnxruntime, skl2onnx, onnxmltools)",
        ) from None
    _register_converters()
    _refuse_unsupported(estimator, source)
    from skl2onnx import convert_sklearn

    model = _without_xgboost_names(estimator)
    options = {id(model): {"zipmap": False}} if hasattr(model, "classes_") else None
    failure: Exception | None = None
    # Doubles first: scikit-learn computes in float64, and a scaler computed in float32 moves values
    # across tree thresholds. Converters without double support fail; float32 is the fallback.
    for precision in ("double", "float"):
        try:
            onx = convert_sklearn(
                model,
                initial_types=_initial_types(model, signature, source, precision),
                options=options,
                target_opset=TARGET_OPSET,
            )
        except (InputError, ModelLoadError):
            raise
        except Exception as exc:
            failure = failure or exc
            continue
        if _runs(onx):
            return onx, _converter_name(estimator)
    first = " ".join(str(failure).split())[:300] if failure else "onnxruntime cannot run the converted graph"
    raise ModelLoadError(
        f"model {source}: skl2onnx could not convert {_describe(estimator)}: "
        f"{type(failure).__name__}: {first}",
        hint="serve it with the native runtime (runtime: native)",
    )


def _runs(onx: Any) -> bool:
    """Whether onnxruntime accepts the graph (some double-precision kernels do not exist)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4
    try:
        onnxruntime.InferenceSession(onx.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception:
        return False
    return True


def _converter_name(estimator: Any) -> str:
    import skl2onnx

    names = {type(step).__module__.split(".")[0] for step in _walk(estimator)}
    if names & {"xgboost", "lightgbm"}:
        import onnxmltools

        return f"skl2onnx {skl2onnx.__version__} + onnxmltools {onnxmltools.__version__}"
    return f"skl2onnx {skl2onnx.__version__}"


def _initial_types(
    estimator: Any, signature: ModelSignature, source: Path, precision: str
) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    number = DoubleTensorType if precision == "double" else FloatTensorType

    dates = [c.name for c in signature.columns if c.kind == "datetime"]
    if dates:
        raise ModelLoadError(
            f"model {source}: datetime column {dates[0]!r} has no ONNX tensor type",
            hint="derive numeric features from it before the model, or serve with the native runtime",
        )
    text = any(c.kind == "string" for c in signature.columns)
    if text or _reads_columns_by_name(estimator):
        # One input per column, named like it: ColumnTransformer selects them by name.
        return [
            (c.name, StringTensorType([None, 1]) if c.kind == "string" else number([None, 1]))
            for c in signature.columns
        ]
    return [("input", number([None, len(signature.columns)]))]


def _reads_columns_by_name(estimator: Any) -> bool:
    from sklearn.compose import ColumnTransformer

    return any(isinstance(step, ColumnTransformer) for step in _walk(estimator))


def _walk(estimator: Any) -> list[Any]:
    """``estimator`` and the steps of the containers in it (Pipeline, ColumnTransformer, FeatureUnion).

    Meta-estimators with converters of their own (voting, stacking, calibration) convert their
    inner estimators themselves, and say so when one has no converter.
    """
    found = [estimator]
    for attribute in ("steps", "transformers_", "transformer_list"):
        for item in getattr(estimator, attribute, None) or []:
            child = item[1] if isinstance(item, tuple) else item
            if hasattr(child, "fit"):
                found.extend(_walk(child))
    return found


def _refuse_unsupported(estimator: Any, source: Path) -> None:
    import skl2onnx
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._registration import _converter_pool

    for step in _walk(estimator):
        cls = type(step)
        if cls.__name__ in ("Pipeline", "ColumnTransformer", "FeatureUnion"):
            continue
        alias = sklearn_operator_name_map.get(cls)
        library = cls.__module__.split(".")[0]
        if alias is None and library in ("xgboost", "lightgbm"):
            try:
                import onnxmltools  # noqa: F401
            except ImportError:
                raise ModelLoadError(
                    f"model {source}: converting {cls.__name__} to ONNX needs onnxmltools, "
                    "which is not installed",
                    hint="pip install 'mlci[onnx]'",
                ) from None
        if alias is None or alias not in _converter_pool:
            raise ModelLoadError(
                f"model {source}: {cls.__name__} has no ONNX converter (skl2onnx {skl2onnx.__version__}, "
                "onnxmltools)",
                hint="serve this model with the native runtime (runtime: native)",
            )
        categorical = getattr(step, "is_categorical_", None)
        if cls.__name__.startswith("HistGradientBoosting") and categorical is not None and categorical.any():
            raise ModelLoadError(
                f"model {source}: {cls.__name__} with native categorical features has no ONNX converter "
                f"(skl2onnx {skl2onnx.__version__} converts numeric splits only)",
                hint="one-hot or ordinal-encode the categories in the pipeline instead, or serve with the "
                "native runtime",
            )


def _without_xgboost_names(estimator: Any) -> Any:
    """A copy of an XGBoost wrapper without feature names (onnxmltools reads features as f0, f1...).

    Inside a pipeline XGBoost sees arrays and has no names; on its own it keeps the DataFrame's.
    """
    if type(estimator).__module__.split(".")[0] != "xgboost":
        return estimator
    clone = copy.deepcopy(estimator)
    clone.get_booster().feature_names = None
    return clone


def _convert_booster(booster: Any, kind: str, signature: ModelSignature, source: Path) -> tuple[Any, str]:
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    types = [("input", FloatTensorType([None, len(signature.columns)]))]
    try:
        if kind == "xgboost":
            clone = copy.deepcopy(booster)
            clone.feature_names = None
            onx = onnxmltools.convert_xgboost(clone, initial_types=types, target_opset=TARGET_OPSET[""])
        else:
            onx = onnxmltools.convert_lightgbm(
                booster, initial_types=types, target_opset=TARGET_OPSET[""], zipmap=False
            )
    except Exception as exc:
        first = " ".join(str(exc).split())[:300]
        raise ModelLoadError(
            f"model {source}: onnxmltools could not convert the {kind} Booster: "
            f"{type(exc).__name__}: {first}",
            hint="serve it with the native runtime (runtime: native)",
        ) from None
    return onx, f"onnxmltools {onnxmltools.__version__}"


@functools.cache
def _register_converters() -> None:
    """Register onnxmltools' XGBoost/LightGBM converters with skl2onnx and adapt HistGradientBoosting's."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common._registration import get_converter, register_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    try:
        import xgboost
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    except ImportError:
        pass
    else:
        update_registered_converter(
            xgboost.XGBClassifier,
            "XGBoostXGBClassifier",
            calculate_linear_classifier_output_shapes,
            convert_xgboost,
            options=classifier_options,
        )
        update_registered_converter(
            xgboost.XGBRegressor,
            "XGBoostXGBRegressor",
            calculate_linear_regressor_output_shapes,
            convert_xgboost,
        )
    try:
        import lightgbm
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    except ImportError:
        pass
    else:
        update_registered_converter(
            lightgbm.LGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options=classifier_options,
        )
        update_registered_converter(
            lightgbm.LGBMRegressor,
            "LightGbmLGBMRegressor",
            calculate_linear_regressor_output_shapes,
            convert_lightgbm,
        )
    imputer = get_converter("SklearnSimpleImputer")
    if not getattr(imputer._fct, "_mlci_double", False):
        register_converter(
            "SklearnSimpleImputer",
            _with_double_imputer(imputer._fct),
            options=imputer.get_allowed_options(),
            overwrite=True,
        )
    from skl2onnx.common._registration import _converter_pool

    for alias in TREE_CONVERTERS:
        registered = _converter_pool.get(alias)
        if registered is None or getattr(registered._fct, "_mlci_trees", False):
            continue
        register_converter(
            alias, _tree_converter(registered._fct), options=registered.get_allowed_options(), overwrite=True
        )


#: Boosted tree converters adapted by :func:`_tree_converter`. scikit-learn's forests are left as
#: skl2onnx converts them: with double inputs they average their trees' votes in double, which
#: keeps a tie between equal votes a tie (float32 sums break it one way or the other).
TREE_CONVERTERS = (
    "SklearnHistGradientBoostingClassifier",
    "SklearnHistGradientBoostingRegressor",
    "XGBoostXGBClassifier",
    "XGBoostXGBRegressor",
    "LightGbmLGBMClassifier",
    "LightGbmLGBMRegressor",
)


def _tree_converter(convert: Any) -> Any:
    def converter(scope: Any, operator: Any, container: Any) -> None:
        add_node = container.add_node

        def add_int_node(*args: Any, **attributes: Any) -> Any:
            for key, value in attributes.items():
                if isinstance(value, list) and any(isinstance(v, bool) for v in value):
                    attributes[key] = [int(v) if isinstance(v, bool) else v for v in value]
            return add_node(*args, **attributes)

        container.add_node = add_int_node
        from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

        inputs = operator.inputs
        if len(inputs) == 1 and isinstance(inputs[0].type, DoubleTensorType):
            # The tree operators compare in float32. Rounding is monotonic, so float32(x) against
            # float32(threshold) splits as x against the threshold; a double x against a float32
            # threshold does not. So the double preprocessing before the trees ends in one Cast,
            # and the scores are declared float32, which is what the operators give.
            from onnx import TensorProto
            from skl2onnx.common._apply_operation import apply_cast

            cast = scope.declare_local_variable("float_features", FloatTensorType(inputs[0].type.shape))
            apply_cast(scope, inputs[0].full_name, cast.full_name, container, to=TensorProto.FLOAT)
            operator.inputs = [cast]
            for output in operator.outputs:
                if isinstance(output.type, DoubleTensorType):
                    output.type = FloatTensorType(output.type.shape)
        try:
            convert(scope, operator, container)
        finally:
            operator.inputs = inputs
            del container.add_node  # the instance attribute; the class's method shows again

    converter._mlci_trees = True  # type: ignore[attr-defined]
    return converter


def _with_double_imputer(convert: Any) -> Any:
    """SimpleImputer for double inputs with standard operators (IsNaN, Where).

    skl2onnx emits ``ai.onnx.ml.Imputer``, which onnxruntime runs for float32 only, so a pipeline
    with an imputer could only convert in float32, where a scaler's rounding moves values across
    tree thresholds. ``Where(IsNaN(x), statistics, x)`` is the same computation in double. Anything
    else (text, integer inputs, a missing-value marker other than NaN, empty features) is left to
    skl2onnx's own converter.
    """

    def converter(scope: Any, operator: Any, container: Any) -> None:
        import math

        import numpy as np
        from onnx import TensorProto
        from skl2onnx.common.data_types import DoubleTensorType
        from skl2onnx.operator_converters.common import concatenate_variables

        imputer = operator.raw_operator
        missing = imputer.missing_values
        statistics = np.asarray(getattr(imputer, "statistics_", []), dtype=np.float64)
        simple = (
            all(isinstance(i.type, DoubleTensorType) for i in operator.inputs)
            and isinstance(missing, float)
            and math.isnan(missing)
            and statistics.size > 0
            and not np.isnan(statistics).any()
            and not getattr(imputer, "add_indicator", False)
        )
        if not simple:
            convert(scope, operator, container)
            return
        features = concatenate_variables(scope, operator.inputs, container)
        mask = scope.get_unique_variable_name("missing")
        fill = scope.get_unique_variable_name("fill")
        container.add_initializer(fill, TensorProto.DOUBLE, [1, statistics.size], statistics.tolist())
        container.add_node("IsNaN", [features], [mask], name=scope.get_unique_operator_name("IsNaN"))
        container.add_node(
            "Where",
            [mask, fill, features],
            [operator.outputs[0].full_name],
            name=scope.get_unique_operator_name("Where"),
        )

    converter._mlci_double = True  # type: ignore[attr-defined]
    return converter
