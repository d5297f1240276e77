"""Batch scoring (``mlci predict``): a model's predictions on a table too large for one request.

Split by job: :mod:`~mlci_lib.predict.columns` (the output columns' names),
:mod:`~mlci_lib.predict.sources` (reading the input in bounded chunks),
:mod:`~mlci_lib.predict.scoring` (a chunk in, an Arrow table of predictions out),
:mod:`~mlci_lib.predict.output` (writing atomically, with the model's identity in the metadata),
:mod:`~mlci_lib.predict.spark_engine` (the same scoring inside Spark) and
:mod:`~mlci_lib.predict.run` (:func:`predict_batch`, which ties them together).
"""

from __future__ import annotations

from mlci_lib.predict.run import ENGINES, PredictResult, predict_batch

__all__ = ["ENGINES", "PredictResult", "predict_batch"]
