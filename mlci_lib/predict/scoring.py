"""One chunk of rows in, an Arrow table of predictions out, as the serving runtime predicts.

The rows are checked and coerced by the model's signature (:meth:`LoadedModel.prepare`) and
predicted by :class:`~mlci_lib.models.predictor.Predictor`, the code behind ``POST /predict``. The
prediction column's type is fixed by the first chunk (integers as int64, floats as float64, text
as string) so that every chunk, and every Spark task, writes the same schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlci_lib.errors import InputError, MlciError
from mlci_lib.models.loaded import LoadedModel
from mlci_lib.models.predictor import Predictor
from mlci_lib.predict.columns import OutputColumns

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def model_columns(model: LoadedModel) -> list[str] | None:
    """The input columns the model reads, or None when it does not say (then: all but the id)."""
    if model.signature is not None:
        return model.signature.names
    names = getattr(model.estimator, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def plain_type(kind: pa.DataType) -> pa.DataType:
    """The type a prediction column is written with: one per kind of value, whatever the model gave."""
    import pyarrow as pa

    if pa.types.is_boolean(kind):
        return pa.bool_()
    if pa.types.is_integer(kind):
        return pa.int64()
    if pa.types.is_floating(kind):
        return pa.float64()
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
        return pa.string()
    raise InputError(
        f"the model's predictions are of type {kind}, which mlci predict does not write",
        hint="predictions must be numbers, booleans or text",
    )


class Scorer:
    """Scores chunks with ``model`` into tables of ``columns``."""

    def __init__(
        self,
        model: LoadedModel,
        columns: OutputColumns,
        *,
        prediction_type: pa.DataType | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self.model = model
        self.columns = columns
        self.predictor = Predictor(model)
        self.inputs = model_columns(model)
        self.prediction_type = prediction_type
        self.metadata = dict(metadata or {})
        self.id_type: pa.DataType | None = None

    def predict(self, frame: pd.DataFrame, *, where: str) -> tuple[Any, Any]:
        """Predictions and probabilities (or None) for ``frame``'s rows."""
        if self.inputs is None:
            frame = frame.drop(columns=[self.columns.id])
        ready = self.model.prepare(frame, source=where)
        try:
            return self.predictor(ready)
        except MlciError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            raise InputError(
                f"{where}: the model could not predict on these rows: {type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:300]}",
                hint="check that the data has the columns and types the model was trained on",
            ) from None

    def score(self, frame: pd.DataFrame, ids: Any, *, where: str) -> pa.Table:
        """The predictions table of ``frame`` (its id column given as ``ids``)."""
        import pyarrow as pa

        predictions, probabilities = self.predict(frame, where=where)
        predicted = pa.array(_values(predictions), from_pandas=True)
        if self.prediction_type is None:
            self.prediction_type = plain_type(predicted.type)
        ids = ids if isinstance(ids, (pa.Array, pa.ChunkedArray)) else pa.array(ids, from_pandas=True)
        if self.id_type is None:
            self.id_type = pa.string() if pa.types.is_large_string(ids.type) else ids.type
        arrays = [
            _cast(ids, self.id_type, f"{where}: id column {self.columns.id!r}"),
            _cast(predicted, self.prediction_type, f"{where}: the predictions"),
        ]
        fields = [
            pa.field(self.columns.id, self.id_type),
            pa.field(self.columns.prediction, self.prediction_type),
        ]
        if self.columns.probabilities:
            if probabilities is None or probabilities.shape[1] != len(self.columns.probabilities):
                raise InputError(f"{where}: the model gave no probability per class")
            for index, (name, _cls) in enumerate(self.columns.probabilities):
                arrays.append(pa.array(probabilities[:, index].astype("float64")))
                fields.append(pa.field(name, pa.float64()))
        schema = pa.schema(fields, metadata=self.metadata or None)
        return pa.Table.from_arrays(arrays, schema=schema)


def _values(predictions: Any) -> Any:
    import numpy as np

    array = np.asarray(predictions)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]  # a regressor or graph that answers one column per row
    if array.dtype.kind in "US":
        array = array.astype(object)
    return array


def _cast(values: pa.Array, kind: pa.DataType, where: str) -> pa.Array:
    import pyarrow as pa

    if values.type == kind:
        return values
    try:
        return values.cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(
            f"{where} changes type between chunks ({kind}, then {values.type}): {exc}",
            hint="write the column with one type throughout",
        ) from None
