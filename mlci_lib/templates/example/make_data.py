"""Write the example's data: loan applications with a sensitive attribute, generated deterministically.

    python make_data.py            # data/train.csv, data/eval.csv, data/recent.csv

The same seed gives the same files on any machine (numpy's PCG64), so the committed CSVs can be
regenerated and checked. ``recent.csv`` plays last week's production traffic: incomes have shifted
upwards and more applicants come from one region, so ``mlci drift`` has something to find.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

REGIONS = ["north", "south", "east", "west"]
HERE = Path(__file__).resolve().parent


def applications(n: int, seed: int, *, shifted: bool = False, start_id: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], size=n, p=[0.45, 0.55])
    region_p = [0.55, 0.15, 0.15, 0.15] if shifted else [0.25, 0.25, 0.25, 0.25]
    region = rng.choice(REGIONS, size=n, p=region_p)
    age = rng.integers(18, 76, size=n)
    income = np.round(rng.lognormal(mean=10.6 + (0.35 if shifted else 0.0), sigma=0.45, size=n), 2)
    debt_ratio = np.round(np.clip(rng.beta(2.0, 5.0, size=n), 0.0, 1.0), 4)
    years_employed = np.minimum(rng.poisson(6, size=n), age - 16)
    region_effect = {"north": 0.3, "south": -0.2, "east": 0.0, "west": -0.1}
    logit = (
        1.4 * (np.log(income) - 10.6) / 0.45
        - 2.2 * (debt_ratio - 0.28) / 0.16
        + 0.5 * (years_employed - 6) / 2.5
        + np.array([region_effect[r] for r in region])
        + 0.2
    )
    approved = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "id": [f"A{start_id + i:06d}" for i in range(n)],
            "age": age,
            "income": income,
            "debt_ratio": debt_ratio,
            "years_employed": years_employed,
            "region": region,
            "sex": sex,
            "approved": approved,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "data"), help="output folder (default: data/)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    applications(2000, seed=7).to_csv(out / "train.csv", index=False)
    applications(1000, seed=8, start_id=2000).to_csv(out / "eval.csv", index=False)
    applications(600, seed=9, shifted=True, start_id=3000).to_csv(out / "recent.csv", index=False)
    print(f"wrote train.csv, eval.csv, recent.csv to {out}")


if __name__ == "__main__":
    main()
