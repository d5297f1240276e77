"""`mlci model baseline NAME@ALIAS`: today's champion's per-row predictions on the evaluation rows.

The gate then compares candidate and champion on the same rows (paired), instead of against
numbers someone wrote down months ago. The model is downloaded and loaded with mlci's safety
rules (skops; pickle only with ``allow_pickle``), never with MLflow's pickle loader.

Output columns follow the shared predictions format: ``id`` (when the data has the id column),
``label``, ``prediction``, and ``score`` (binary: probability of the positive class, the second
of the model's classes) or ``proba_<class>`` per class (multiclass), then the kept columns.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mlci_lib.errors import InputError, MlciError
from mlci_lib.models import load_model
from mlci_lib.registry.push import validate_model_name, validate_version
from mlci_lib.registry.tracking import mlflow_error_code, mlflow_session, redact_uri, service_error
from mlci_lib.results import Result
from mlci_lib.retry import RetryPolicy
from mlci_lib.tables import FORMATS, read_table, table_format

if TYPE_CHECKING:
    import pandas as pd


@dataclasses.dataclass(frozen=True)
class BaselineResult(Result):
    SCHEMA: ClassVar[str] = "mlci.model-baseline"
    SCHEMA_VERSION: ClassVar[int] = 1

    model_ref: str
    found: bool  # False: the alias points nowhere yet (first release) and that was allowed
    name: str
    alias: str | None
    version: str | None
    run_id: str | None
    digest: str | None
    output: str | None
    rows: int
    columns: tuple[str, ...]
    tracking_uri: str
    passed: bool = True


def parse_model_ref(ref: str) -> tuple[str, str | None, str | None]:
    """``NAME@ALIAS`` or ``NAME/VERSION`` (``models:/`` prefix allowed) -> (name, alias, version)."""
    text = (ref or "").strip().removeprefix("models:/")
    match = re.fullmatch(r"(?P<name>[^@/]+)(?:@(?P<alias>[^@/]+)|/(?P<version>[^@/]+))", text)
    if not match:
        raise InputError(
            f"model reference {ref!r} is not NAME@ALIAS or NAME/VERSION",
            hint="e.g. loan-approval@champion or loan-approval/3",
        )
    name = validate_model_name(match["name"], option="MODEL")
    if match["alias"] is not None:
        from mlci_lib.registry.promote import validate_alias

        return name, validate_alias(match["alias"], option="MODEL"), None
    return name, None, validate_version(match["version"], option="MODEL")


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` in the format its extension names (CSV, Parquet, JSON Lines), atomically."""
    target = Path(path)
    fmt = table_format(target)
    if fmt not in FORMATS.values():
        raise InputError(f"output {target} must be a file", hint="name a .csv, .parquet or .jsonl file")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        if fmt == "csv":
            frame.to_csv(tmp, index=False)
        elif fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_json(tmp, orient="records", lines=True)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def predictions_frame(
    loaded: Any,
    frame: pd.DataFrame,
    *,
    source: str,
    label_column: str | None,
    id_column: str | None,
    keep_columns: Sequence[str],
    proba_prefix: str = "proba_",
) -> pd.DataFrame:
    """Per-row predictions of ``loaded`` on ``frame`` in the shared predictions format."""
    import pandas as pd

    wanted = [c for c in (label_column, *keep_columns) if c]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        shown = ", ".join(map(str, list(frame.columns)[:12]))
        option = "--label-column" if missing[0] == label_column else "--keep-column"
        raise InputError(
            f"{source} has no column {missing[0]!r} (option {option})", hint=f"its columns: {shown}"
        )
    predicted, proba = loaded.predict(frame, source=source)
    out: dict[str, Any] = {}
    if id_column and id_column in frame.columns:
        out["id"] = frame[id_column].to_numpy()
    if label_column:
        labels = frame[label_column]
        if labels.isna().any():
            row = int(labels.isna().to_numpy().nonzero()[0][0])
            raise InputError(
                f"{source}: column {label_column!r} is empty at row {row + 1}", hint="fill the label"
            )
        out["label"] = labels.to_numpy()
    out["prediction"] = predicted
    classes = loaded.classes
    if proba is not None and classes is not None:
        if len(classes) == 2:
            out["score"] = proba[:, 1]
        else:
            for index, cls in enumerate(classes):
                out[f"{proba_prefix}{cls}"] = proba[:, index]
    for name in keep_columns:
        if name not in out:
            out[name] = frame[name].to_numpy()
    return pd.DataFrame(out)


def baseline_predictions(
    model_ref: str,
    data: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    label_column: str | None = "label",
    id_column: str | None = "id",
    keep_columns: Iterable[str] = (),
    proba_prefix: str = "proba_",
    tracking_uri: str | None = None,
    allow_pickle: bool = False,
    trusted_types: Iterable[str] = (),
    missing_ok: bool = False,
    workspace: str | os.PathLike[str] = ".",
    policy: RetryPolicy | None = None,
) -> BaselineResult:
    """Load the model behind ``model_ref`` and write its predictions on ``data`` to ``output``.

    With ``missing_ok``, an alias or model that does not exist yet (the very first release) gives
    ``found=False`` and writes nothing; otherwise it is an :class:`InputError`.
    """
    name, alias, version = parse_model_ref(model_ref)
    keep = [str(c) for c in keep_columns if str(c).strip()]
    table_format(output)  # a bad output name fails before any download
    frame = read_table(data, what="evaluation data")
    with mlflow_session(tracking_uri, workspace=workspace, policy=policy) as client:
        uri = client.tracking_uri
        try:
            try:
                mv = (
                    client.get_model_version_by_alias(name, alias)
                    if alias
                    else client.get_model_version(name, version)
                )
            except Exception as error:
                if mlflow_error_code(error) not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                    raise
                if missing_ok:
                    return BaselineResult(
                        model_ref=model_ref, found=False, name=name, alias=alias, version=None, run_id=None,
                        digest=None, output=None, rows=0, columns=(), tracking_uri=redact_uri(uri),
                    )  # fmt: skip
                raise InputError(
                    f"{model_ref} does not exist on {redact_uri(uri)}",
                    hint="push and promote a model first, or allow a missing baseline (--missing-ok)",
                ) from None
            import mlflow.artifacts

            with tempfile.TemporaryDirectory(prefix="mlci-baseline-") as tmp:
                # The version's own artifact location, from this session's client: a models:/ URI
                # would be resolved against whatever registry the process has set.
                source = client.get_model_version_download_uri(name, mv.version)
                folder = mlflow.artifacts.download_artifacts(
                    artifact_uri=source, dst_path=tmp, tracking_uri=uri
                )
                loaded = load_model(folder, allow_pickle=allow_pickle, trusted_types=tuple(trusted_types))
                predictions = predictions_frame(
                    loaded,
                    frame,
                    source=str(data),
                    label_column=label_column or None,
                    id_column=id_column or None,
                    keep_columns=keep,
                    proba_prefix=proba_prefix,
                )
        except MlciError:
            raise
        except Exception as error:
            raise service_error(error, doing=f"fetching {model_ref}", tracking_uri=uri) from None
    written = write_table(predictions, output)
    return BaselineResult(
        model_ref=model_ref,
        found=True,
        name=name,
        alias=alias,
        version=str(mv.version),
        run_id=str(mv.run_id or "") or None,
        digest=(mv.tags or {}).get("mlci.model.digest") or loaded.digest,
        output=str(written),
        rows=len(predictions),
        columns=tuple(str(c) for c in predictions.columns),
        tracking_uri=redact_uri(uri),
    )
