"""PNG plots from a per-row predictions file, for upload as workflow artifacts.

Classification: a confusion matrix; with scores, ROC and precision-recall curves and a
calibration (reliability) plot. Regression: predicted vs actual and the residuals. The file is
read and checked by the same code as the gate's, so a file the gate accepts plots the same way.
Plots are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas, never through
``pyplot``: no global state, no display needed.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci_lib.errors import UsageError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: One-vs-rest curves are drawn for at most this many classes.
MAX_CURVE_CLASSES = 10


def _figure(width: float = 5.5, height: float = 4.5) -> "Figure":
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError(
            "plots need matplotlib, which is not installed",
            hint="pip install 'mlci[report]', or leave out --predictions",
        ) from None
    # Fixed margins: a layout engine (constrained, tight) doubles the drawing time.
    figure = Figure(figsize=(width, height), dpi=100)
    figure.subplots_adjust(left=0.14, right=0.96, bottom=0.13, top=0.91)
    FigureCanvasAgg(figure)
    return figure


#: Every file write_plots may write: a report removes them first, so none is left from another run.
PLOT_FILES = (
    "confusion_matrix.png",
    "roc_curve.png",
    "precision_recall_curve.png",
    "calibration.png",
    "predicted_vs_actual.png",
    "residuals.png",
)


def _save(figure: "Figure", path: Path) -> Path:
    from mlci_lib.files import write_bytes_atomic

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return write_bytes_atomic(path, buffer.getvalue())


def write_plots(
    predictions: str | os.PathLike[str],
    folder: str | os.PathLike[str],
    *,
    label_column: str = "label",
    prediction_column: str = "prediction",
    score_column: str = "score",
    proba_prefix: str = "proba_",
    pos_label: str | None = None,
    task: str | None = None,
) -> list[Path]:
    """Write the plots that fit the task into ``folder``; return their paths."""
    from mlci_lib.files import check_output_folder
    from mlci_lib.gate.predictions import Columns, encode_tables, read_predictions

    columns = Columns(
        label=label_column, prediction=prediction_column, score=score_column, proba_prefix=proba_prefix
    )
    table = read_predictions(predictions, what="predictions file", columns=columns)
    (rows,), classes = encode_tables([table], task=task or None, pos_label=pos_label or None)
    _figure(1, 1)  # fail early, with the install hint, when matplotlib is missing
    out = Path(folder)
    check_output_folder(out, what="plots folder")
    if rows.task == "regression":
        return [_predicted_vs_actual(rows, out), _residuals(rows, out)]
    written = [_confusion(rows, classes, out)]
    if rows.scores is not None:
        written += [_roc(rows, classes, out), _precision_recall(rows, classes, out), _calibration(rows, out)]
    return written


def _confusion(rows: Any, classes: list[str], out: Path) -> Path:
    import numpy as np

    from mlci_lib.gate.metrics import confusion_matrix

    matrix = np.asarray(confusion_matrix(rows.labels, rows.predictions, rows.n_classes))
    size = max(4.5, min(0.6 * len(classes) + 3, 14))
    figure = _figure(size, size * 0.85)
    ax = figure.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=ax, shrink=0.8)
    ticks = range(len(classes))
    shown = [c if len(c) <= 14 else c[:13] + "…" for c in classes]
    ax.set_xticks(list(ticks), shown, rotation=45 if len(classes) > 4 else 0, ha="right")
    ax.set_yticks(list(ticks), shown)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix ({len(rows.labels):,} rows)")
    longest = max((len(c) for c in shown), default=1)
    rotated = len(classes) > 4
    figure.subplots_adjust(
        left=min(0.1 + 0.015 * longest, 0.35), bottom=min(0.12 + 0.012 * longest, 0.35) if rotated else 0.12
    )
    if len(classes) <= 20:
        middle = (int(matrix.min()) + int(matrix.max())) / 2
        for i in ticks:
            for j in ticks:
                colour = "white" if matrix[i, j] > middle else "black"
                ax.text(j, i, f"{matrix[i, j]:,}", ha="center", va="center", color=colour, fontsize=8)
    return _save(figure, out / "confusion_matrix.png")


def _one_vs_rest(rows: Any, classes: list[str]) -> list[tuple[str, Any, Any]]:
    """(class name, is-positive labels, scores) for each curve to draw."""
    import numpy as np

    if rows.task == "binary":
        return [(classes[rows.pos_index], rows.labels == rows.pos_index, np.asarray(rows.scores))]
    scores = np.asarray(rows.scores)
    return [(classes[k], rows.labels == k, scores[:, k]) for k in range(min(len(classes), MAX_CURVE_CLASSES))]


def _roc(rows: Any, classes: list[str], out: Path) -> Path:
    from sklearn.metrics import roc_auc_score, roc_curve

    figure = _figure()
    ax = figure.subplots()
    for name, positive, scores in _one_vs_rest(rows, classes):
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = roc_curve(positive, scores)
        auc = roc_auc_score(positive, scores)
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve" + (" (one vs rest)" if rows.task != "binary" else ""))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    return _save(figure, out / "roc_curve.png")


def _precision_recall(rows: Any, classes: list[str], out: Path) -> Path:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    figure = _figure()
    ax = figure.subplots()
    for name, positive, scores in _one_vs_rest(rows, classes):
        if not positive.any():
            continue
        precision, recall, _ = precision_recall_curve(positive, scores)
        ap = average_precision_score(positive, scores)
        ax.step(recall, precision, where="post", label=f"{name} (AP {ap:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall curve" + (" (one vs rest)" if rows.task != "binary" else ""))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", fontsize=8)
    return _save(figure, out / "precision_recall_curve.png")


def _calibration(rows: Any, out: Path) -> Path:
    import numpy as np

    scores = np.asarray(rows.scores)
    if rows.task == "binary":
        confidence, correct = scores, rows.labels == rows.pos_index
        what = "predicted probability of the positive class"
    else:  # top-label calibration: confidence of the predicted class vs accuracy
        confidence = scores.max(axis=1)
        correct = scores.argmax(axis=1) == rows.labels
        what = "confidence of the top class"
    bins = np.linspace(0, 1, 11)
    index = np.clip(np.digitize(confidence, bins[1:-1]), 0, 9)
    counts = np.bincount(index, minlength=10)
    filled = counts > 0
    mean_conf = np.bincount(index, weights=confidence, minlength=10)[filled] / counts[filled]
    observed = np.bincount(index, weights=correct.astype(float), minlength=10)[filled] / counts[filled]
    ece = float(np.sum(counts[filled] * np.abs(observed - mean_conf)) / len(confidence))
    figure = _figure(5.5, 5.5)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    figure.subplots_adjust(bottom=0.1, top=0.94, hspace=0.08)
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    top.plot(mean_conf, observed, marker="o", label=f"model (ECE {ece:.3f})")
    top.set_ylabel("observed frequency")
    top.set_title("Calibration")
    top.set_ylim(0, 1.01)
    top.legend(loc="upper left", fontsize=8)
    bottom.hist(confidence, bins=bins, color="tab:blue", alpha=0.7)
    bottom.set_xlabel(what)
    bottom.set_ylabel("rows")
    bottom.set_xlim(0, 1)
    return _save(figure, out / "calibration.png")


def _predicted_vs_actual(rows: Any, out: Path) -> Path:
    import numpy as np

    figure = _figure()
    ax = figure.subplots()
    y, p = np.asarray(rows.labels), np.asarray(rows.predictions)
    ax.scatter(y, p, s=6, alpha=0.4)
    low, high = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    ax.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1)
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.set_title(f"Predicted vs actual ({len(y):,} rows)")
    return _save(figure, out / "predicted_vs_actual.png")


def _residuals(rows: Any, out: Path) -> Path:
    import numpy as np

    figure = _figure()
    ax = figure.subplots()
    residuals = np.asarray(rows.predictions) - np.asarray(rows.labels)
    ax.hist(residuals, bins=40, color="tab:blue", alpha=0.8)
    ax.axvline(0, linestyle="--", color="grey", linewidth=1)
    ax.set_xlabel("prediction - actual")
    ax.set_ylabel("rows")
    ax.set_title("Residuals")
    return _save(figure, out / "residuals.png")
