"""Scoped trust in skops files: a type one estimator needs is trusted only where it puts it.

Histogram gradient boosting with categorical features keeps ``functools.partial(check_array)``
inside its own preprocessor; the same partial anywhere else, or wrapping another function, is
refused. The crafted files are real skops files whose schema was rewritten, as an attacker would.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from mlci_lib.errors import ModelLoadError, UnsafeModelError
from mlci_lib.models import load_model, save_model
from mlci_lib.models.skops_io import SCOPED_TRUSTED_TYPES
from tests.sklearn_catalogue import categorical_frame, labels

HGB = "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier"


def pipeline_with_hist_gradient_boosting() -> tuple[Pipeline, Any]:
    data = categorical_frame()
    model = Pipeline(
        [
            ("squash", FunctionTransformer(np.arcsinh, feature_names_out="one-to-one")),
            ("model", HistGradientBoostingClassifier(max_iter=10, categorical_features=[0])),
        ]
    )
    numeric = data.assign(region=data["region"].cat.codes.astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(numeric, labels("binary", data))
    return model, numeric


def nodes(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if "__loader__" in value:
            yield value
        for item in value.values():
            yield from nodes(item)
    elif isinstance(value, list):
        for item in value:
            yield from nodes(item)


def rewrite_schema(model_file: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite the schema inside a skops file, keeping every other member as it was."""
    with zipfile.ZipFile(model_file) as source:
        members = {info.filename: source.read(info) for info in source.infolist()}
    schema = json.loads(members["schema.json"])
    change(schema)
    members["schema.json"] = json.dumps(schema).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for name, content in members.items():
            target.writestr(name, content)
    model_file.write_bytes(buffer.getvalue())


def step_state(schema: dict[str, Any], index: int) -> dict[str, Any]:
    """The attribute dict of step ``index`` of a saved Pipeline."""
    steps = schema["content"]["content"]["steps"]["content"]
    state: dict[str, Any] = steps[index]["content"][1]["content"]["content"]
    return state


def the_partial(schema: dict[str, Any]) -> dict[str, Any]:
    return next(node for node in nodes(schema) if node["__loader__"] == "PartialNode")


def partial_of(module: str, name: str, schema: dict[str, Any]) -> dict[str, Any]:
    node = copy.deepcopy(the_partial(schema))
    node["__id__"] = 1
    node["content"]["func"] = {
        "__class__": name,
        "__module__": module,
        "__loader__": "FunctionNode",
        "__id__": 2,
    }
    return node


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, Pipeline, Any]:
    model, data = pipeline_with_hist_gradient_boosting()
    save_model(model, tmp_path / "model")
    return tmp_path / "model", model, data


def test_partial_inside_hist_gradient_boosting_is_trusted_there(saved: tuple[Path, Pipeline, Any]) -> None:
    folder, model, data = saved
    untrusted = sio.get_untrusted_types(file=folder / "model.skops")
    assert "functools.partial" in untrusted  # skops itself does not trust it
    loaded = load_model(folder)
    np.testing.assert_array_equal(loaded.estimator.predict_proba(data), model.predict_proba(data))


def test_scoped_types_are_not_in_the_global_list() -> None:
    from mlci_lib.models import DEFAULT_TRUSTED_TYPES

    assert "functools.partial" in SCOPED_TRUSTED_TYPES[HGB]
    assert "functools.partial" not in DEFAULT_TRUSTED_TYPES
    assert "sklearn.utils.validation.check_array" not in DEFAULT_TRUSTED_TYPES


def test_partial_in_a_function_transformer_is_refused(tmp_path: Path) -> None:
    data = categorical_frame()[["income", "age"]].fillna(1.0)
    model = FunctionTransformer(functools.partial(np.add, 1.0)).fit(data)
    save_model(model, tmp_path / "model")
    with pytest.raises(
        UnsafeModelError, match=r"holds functools.partial at func, where mlci does not trust it"
    ):
        load_model(tmp_path / "model")
    # Trusted by the user, it loads (the user's list is global, as they asked).
    loaded = load_model(tmp_path / "model", trusted_types=["functools.partial"])
    np.testing.assert_array_equal(loaded.estimator.transform(data), model.transform(data))


@pytest.mark.slow
def test_partial_of_os_system_under_hist_gradient_boosting_is_refused(
    saved: tuple[Path, Pipeline, Any],
) -> None:
    folder, _, _ = saved

    def smuggle(schema: dict[str, Any]) -> None:
        the_partial(schema)["content"]["func"] = {
            "__class__": "system",
            "__module__": "posix",
            "__loader__": "FunctionNode",
            "__id__": 3,
        }

    rewrite_schema(folder / "model.skops", smuggle)
    with pytest.raises(
        UnsafeModelError,
        match=r"needs types outside the allowed list: posix.system \(at steps\[1\]\[1\]._preprocessor"
        r".transformers\[1\]\[1\].func.func inside HistGradientBoostingClassifier\)",
    ):
        load_model(folder)


def test_partial_next_to_hist_gradient_boosting_is_refused(saved: tuple[Path, Pipeline, Any]) -> None:
    folder, _, _ = saved
    rewrite_schema(
        folder / "model.skops",
        lambda schema: step_state(schema, 0).__setitem__(
            "func", partial_of("sklearn.utils.validation", "check_array", schema)
        ),
    )
    with pytest.raises(
        UnsafeModelError, match=r"functools.partial at steps\[0\]\[1\].func, where mlci does not"
    ) as e:
        load_model(folder)
    assert "only inside HistGradientBoostingClassifier" in str(e.value)


def test_partial_of_eval_next_to_hist_gradient_boosting_is_refused(saved: tuple[Path, Pipeline, Any]) -> None:
    folder, _, _ = saved
    rewrite_schema(
        folder / "model.skops",
        lambda schema: step_state(schema, 0).__setitem__("func", partial_of("builtins", "eval", schema)),
    )
    with pytest.raises(UnsafeModelError, match=r"builtins.eval"):
        load_model(folder)


@pytest.mark.parametrize("reference", ["CachedNode", "a node with the same id"])
@pytest.mark.slow
def test_partial_defined_inside_and_referenced_outside_is_refused(
    reference: str, saved: tuple[Path, Pipeline, Any]
) -> None:
    """skops builds one object per id: a reference outside the scope gets the partial from inside."""
    folder, _, _ = saved

    def reference_it(schema: dict[str, Any]) -> None:
        target = the_partial(schema)
        if reference == "CachedNode":
            node = {"__class__": "partial", "__module__": "functools", "__loader__": "CachedNode"}
        else:
            node = {"__class__": "arcsinh", "__module__": "numpy", "__loader__": "FunctionNode"}
        # Added as the pipeline's last attribute, so skops meets the partial (inside the model) first.
        state = schema["content"]
        state["content"]["smuggled"] = {**node, "__id__": target["__id__"]}
        key_types = state["key_types"]["content"]
        key_types.append(copy.deepcopy(key_types[0]))  # one key type per key, or skops drops it

    rewrite_schema(folder / "model.skops", reference_it)
    data = (folder / "model.skops").read_bytes()
    # The flat list skops offers would let it through: the object is a partial outside the model.
    unsafe = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    assert isinstance(vars(unsafe)["smuggled"], functools.partial)
    with pytest.raises(
        UnsafeModelError, match=r"functools.partial at smuggled, where mlci does not trust it"
    ):
        load_model(folder)


def test_cached_node_to_nothing_is_a_damaged_file(saved: tuple[Path, Pipeline, Any]) -> None:
    folder, _, _ = saved
    rewrite_schema(
        folder / "model.skops",
        lambda schema: step_state(schema, 0).__setitem__(
            "func",
            {"__class__": "partial", "__module__": "functools", "__loader__": "CachedNode", "__id__": 7},
        ),
    )
    with pytest.raises(ModelLoadError, match=r"not a valid skops file"):
        load_model(folder)


def test_partial_at_the_top_level_is_refused(tmp_path: Path) -> None:
    sio.dump(functools.partial(np.add, 1.0), tmp_path / "model.skops")
    with pytest.raises(
        UnsafeModelError, match=r"holds functools.partial at the top level, where mlci does not"
    ):
        load_model(tmp_path / "model.skops")


def test_partial_of_os_system_next_to_the_model_names_both(saved: tuple[Path, Pipeline, Any]) -> None:
    folder, _, _ = saved
    rewrite_schema(
        folder / "model.skops",
        lambda schema: step_state(schema, 0).__setitem__("func", partial_of("posix", "system", schema)),
    )
    with pytest.raises(UnsafeModelError) as refused:
        load_model(folder)
    message = str(refused.value)
    assert "needs types outside the allowed list: posix.system (at steps[0][1].func.func)" in message
    assert "holds functools.partial at steps[0][1].func, where mlci does not trust it" in message
    assert "\n" not in message


def test_unknown_legitimate_type_gets_the_trust_hint(tmp_path: Path) -> None:
    data = categorical_frame()[["income", "age"]].fillna(1.0)
    model = FunctionTransformer(np.clip, kw_args={"a_min": 0, "a_max": 50}).fit(data)
    save_model(model, tmp_path / "model")
    with pytest.raises(
        UnsafeModelError, match=r"needs types outside the allowed list: numpy.clip"
    ) as refused:
        load_model(tmp_path / "model")
    hint = refused.value.hint or ""
    assert "--trust-type" in hint and "crafted" not in hint
    loaded = load_model(tmp_path / "model", trusted_types=["numpy.clip"])
    np.testing.assert_array_equal(loaded.estimator.transform(data), model.transform(data))


@pytest.mark.slow
def test_smuggled_partial_is_a_one_line_exit_2_from_the_cli(
    saved: tuple[Path, Pipeline, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from mlci_lib.cli import main
    from tests.helpers.components import free_port

    folder, _, _ = saved
    rewrite_schema(
        folder / "model.skops",
        lambda schema: step_state(schema, 0).__setitem__("func", partial_of("posix", "system", schema)),
    )
    assert main(["serve", str(folder), "--port", str(free_port())]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mlci: error:")]
    assert len(errors) == 1 and "posix.system (at steps[0][1].func.func)" in errors[0], errors
