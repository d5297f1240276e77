"""Train the example model and save it as an mlci model folder.

    python train.py                       # model/ from data/train.csv
    python train.py --worse               # a deliberately worse model (for a failing release)

``EXAMPLE_WORSE_MODEL=1`` in the environment does the same as ``--worse``, so a CI run can
switch it without editing the pipeline. The worse model sees only age and region, which say
little about approval, so it loses accuracy and AUC against the champion and the gate fails.
The sensitive attribute ``sex`` is not a feature: it is kept for the slice gate only.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd
from mlci_lib.models import save_model
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

HERE = Path(__file__).resolve().parent
NUMERIC = ["age", "income", "debt_ratio", "years_employed"]
CATEGORICAL = ["region"]
FEATURES = NUMERIC + CATEGORICAL
WORSE_FEATURES = (["age"], ["region"])


def build(numeric: list[str], categorical: list[str]) -> Pipeline:
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    return Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=1000))])


def main() -> None:
    parser = argparse.ArgumentParser(description="train the example model")
    parser.add_argument("--data", default=str(HERE / "data" / "train.csv"))
    parser.add_argument("--out", default=str(HERE / "model"))
    parser.add_argument("--worse", action="store_true", help="train a deliberately worse model")
    args = parser.parse_args()
    worse = args.worse or os.environ.get("EXAMPLE_WORSE_MODEL", "").lower() in ("1", "true", "yes")

    frame = pd.read_csv(args.data)
    # Labelled production rows, when the retrain workflow names them (MLCI_LABELLED_ROWS: CSV
    # files of the training columns, comma-separated), are trained on as well.
    extra = [p for p in os.environ.get("MLCI_LABELLED_ROWS", "").split(",") if p.strip()]
    if extra:
        frame = pd.concat([frame, *(pd.read_csv(p.strip())[frame.columns] for p in extra)], ignore_index=True)
    numeric, categorical = WORSE_FEATURES if worse else (NUMERIC, CATEGORICAL)
    model = build(numeric, categorical)
    model.fit(frame[FEATURES], frame["approved"])
    save_model(model, args.out, sample_input=frame[FEATURES].head(5), name="loan-approval")
    print(f"trained {'a deliberately worse' if worse else 'the'} model on {len(frame)} rows: {args.out}")


if __name__ == "__main__":
    main()
