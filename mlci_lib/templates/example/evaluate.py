"""Write the model's per-row predictions on the evaluation data, in mlci's predictions format.

    python evaluate.py                    # predictions.csv from model/ and data/eval.csv

Columns: ``id``, ``label``, ``prediction``, ``score`` (probability of approval), and the slice
columns ``sex`` and ``region``, which the gate uses for its per-group rules.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from mlci_lib.models import load_model

HERE = Path(__file__).resolve().parent
SLICES = ["sex", "region"]


def main() -> None:
    parser = argparse.ArgumentParser(description="evaluate the example model")
    parser.add_argument("--model", default=str(HERE / "model"))
    parser.add_argument("--data", default=str(HERE / "data" / "eval.csv"))
    parser.add_argument("--out", default=str(HERE / "predictions.csv"))
    args = parser.parse_args()

    frame = pd.read_csv(args.data)
    model = load_model(args.model)
    predicted, proba = model.predict(frame, source=args.data)
    assert proba is not None, "the example model is a classifier, so it gives probabilities"
    positive = list(model.classes or []).index(1)
    predictions = pd.DataFrame(
        {
            "id": frame["id"],
            "label": frame["approved"],
            "prediction": predicted,
            "score": proba[:, positive].round(6),
            **{name: frame[name] for name in SLICES},
        }
    )
    predictions.to_csv(args.out, index=False)
    accuracy = float((predictions["label"] == predictions["prediction"]).mean())
    print(f"wrote {len(predictions)} predictions to {args.out} (accuracy {accuracy:.3f})")


if __name__ == "__main__":
    main()
