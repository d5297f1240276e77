"""Train and save a few models with a given seed, in a process of its own.

Run as ``python -m tests.helpers.seeded_training OUT SEED DATA_SEED [catboost]``: the digest tests
train twice in separate processes, so that Python object ids, zip write times and CatBoost's
model GUID differ between the two runs as they do between two CI runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd


def training_data(data_seed: int, n: int = 200) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(data_seed)
    frame = pd.DataFrame(
        {
            "region": rng.choice(["north", "south", "east", None], n),
            "income": rng.normal(50, 10, n).round(1),
            "age": rng.integers(18, 80, n),
        }
    )
    label = ((frame["income"] > 50) ^ (frame["region"] == "east")).astype(int)
    return frame, label


def main(out: Path, seed: int, data_seed: int, frameworks: list[str]) -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from mlci_lib.models import save_model

    frame, label = training_data(data_seed)
    pipeline = make_pipeline(
        make_column_transformer(
            (
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                ["region"],
            ),
            (StandardScaler(), ["income", "age"]),
        ),
        SGDClassifier(loss="log_loss", max_iter=30, tol=None, random_state=seed),
    ).fit(frame, label)
    save_model(pipeline, out / "pipeline", sample_input=frame.head(20))
    numeric = frame[["income", "age"]]
    forest = HistGradientBoostingClassifier(max_iter=10, random_state=seed, early_stopping=True).fit(
        numeric, label
    )
    save_model(forest, out / "hgb", sample_input=numeric.head(20))
    if "catboost" in frameworks:
        import catboost

        model = catboost.CatBoostClassifier(
            iterations=10, random_seed=seed, verbose=0, thread_count=1, train_dir=str(out / "catboost_info")
        ).fit(numeric, label)
        model.save_model(str(out / "model.cbm"))
    if "xgboost" in frameworks:
        import xgboost

        booster = xgboost.XGBClassifier(n_estimators=10, subsample=0.7, random_state=seed, n_jobs=1).fit(
            numeric, label
        )
        booster.save_model(str(out / "model.json"))
        booster.save_model(str(out / "model.ubj"))
    if "lightgbm" in frameworks:
        import lightgbm

        gbm = lightgbm.LGBMClassifier(
            n_estimators=10, subsample=0.7, subsample_freq=1, random_state=seed, verbose=-1, n_jobs=1
        ).fit(numeric, label)
        gbm.booster_.save_model(str(out / "model.txt"))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
