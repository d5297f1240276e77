"""The scikit-learn models teams train, fitted on small real data, for the loading tests.

Each entry builds a fresh estimator and names the task it is fitted for. The data has what real
tables have: text columns with pandas' own missing values, NaN in numeric columns, a category
column, string class labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import (
    AdaBoostClassifier,
    AdaBoostRegressor,
    BaggingClassifier,
    BaggingRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
    RandomForestRegressor,
    RandomTreesEmbedding,
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.experimental import enable_iterative_imputer  # noqa: F401  (makes IterativeImputer importable)
from sklearn.feature_selection import (
    RFE,
    SelectFromModel,
    SelectKBest,
    SelectPercentile,
    VarianceThreshold,
    f_classif,
    mutual_info_classif,
)
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.linear_model import (
    ElasticNet,
    HuberRegressor,
    Lasso,
    LinearRegression,
    LogisticRegression,
    LogisticRegressionCV,
    Ridge,
    RidgeCV,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.model_selection import GridSearchCV, TunedThresholdClassifierCV
from sklearn.multiclass import OneVsRestClassifier
from sklearn.naive_bayes import BernoulliNB, GaussianNB, MultinomialNB
from sklearn.neighbors import (
    KNeighborsClassifier,
    KNeighborsRegressor,
    LocalOutlierFactor,
    RadiusNeighborsClassifier,
)
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    PowerTransformer,
    QuantileTransformer,
    RobustScaler,
    SplineTransformer,
    StandardScaler,
    TargetEncoder,
)
from sklearn.svm import SVC, SVR, LinearSVC, NuSVC, OneClassSVM
from sklearn.tree import DecisionTreeClassifier

ROWS = 240
TEXT = ["region"]
NUMERIC = ["income", "age", "score"]


def frame() -> pd.DataFrame:
    """A table as read_csv gives it: text with NaN, numbers with NaN."""
    rng = np.random.default_rng(7)
    region = rng.choice(["north", "south", "east", "west"], ROWS).astype(object)
    region[rng.random(ROWS) < 0.1] = np.nan
    income = rng.lognormal(3, 0.5, ROWS)
    income[rng.random(ROWS) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "region": region,
            "income": income,
            "age": rng.integers(18, 80, ROWS).astype(float),
            "score": rng.normal(size=ROWS),
        }
    )


def numeric_frame() -> pd.DataFrame:
    data = frame()
    return data[NUMERIC].fillna(data["income"].median())


def categorical_frame() -> pd.DataFrame:
    """The table with its text as pandas' category dtype (HistGradientBoosting's native categoricals)."""
    data = frame()
    data["region"] = data["region"].astype("category")
    return data


def labels(task: str, data: pd.DataFrame) -> np.ndarray:
    signal = data["score"].to_numpy() + 0.02 * (data["age"].to_numpy() - 50)
    signal = signal + np.where(data["region"].astype(object) == "north", 0.8, 0.0)
    if task == "binary":
        return (signal > 0.2).astype(int)
    if task == "multiclass":
        return np.asarray(np.select([signal < -0.4, signal < 0.6], ["low", "mid"], "high"), dtype=object)
    return 3.0 * signal + np.nan_to_num(data["income"].to_numpy(), nan=20.0) / 10


def encoded(scaler: Any = None, text: Any = None) -> ColumnTransformer:
    """The standard tabular preprocessing: impute and one-hot encode text, impute and scale numbers."""
    return ColumnTransformer(
        [
            (
                "text",
                text
                if text is not None
                else make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                TEXT,
            ),
            ("numbers", make_pipeline(SimpleImputer(), scaler or StandardScaler()), NUMERIC),
        ]
    )


def ordinal() -> Any:
    return make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
    )


@dataclass(frozen=True)
class Case:
    build: Callable[[], Any]
    task: str
    data: Callable[[], pd.DataFrame] = frame


def tabular(model: Callable[[], Any], task: str) -> Case:
    return Case(lambda: Pipeline([("prep", encoded()), ("model", model())]), task)


CASES: dict[str, Case] = {
    # Linear models, SVMs, neighbours, naive Bayes, neural networks after the standard preprocessing.
    "logistic regression": tabular(lambda: LogisticRegression(max_iter=500), "binary"),
    "logistic regression, string classes": tabular(lambda: LogisticRegression(max_iter=500), "multiclass"),
    "ridge": tabular(Ridge, "regression"),
    "lasso": tabular(lambda: Lasso(alpha=0.01), "regression"),
    "elastic net": tabular(lambda: ElasticNet(alpha=0.01), "regression"),
    "linear regression": tabular(LinearRegression, "regression"),
    "sgd classifier": tabular(lambda: SGDClassifier(random_state=0), "multiclass"),
    "sgd regressor": tabular(lambda: SGDRegressor(random_state=0), "regression"),
    "svc with probabilities": tabular(lambda: SVC(probability=True, random_state=0), "multiclass"),
    "svr": tabular(SVR, "regression"),
    "svc on sparse rows": Case(
        lambda: make_pipeline(
            ColumnTransformer(
                [
                    ("text", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder()), TEXT),
                    ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
                ],
                sparse_threshold=1.0,
            ),
            SVC(),
        ),
        "multiclass",
    ),
    "one class svm": Case(
        lambda: make_pipeline(StandardScaler(), OneClassSVM(nu=0.1)), "outliers", numeric_frame
    ),
    "linear svc": tabular(LinearSVC, "binary"),
    "k neighbours classifier": tabular(lambda: KNeighborsClassifier(5), "multiclass"),
    "k neighbours regressor": tabular(lambda: KNeighborsRegressor(5), "regression"),
    "k neighbours, minkowski p=3": tabular(
        lambda: KNeighborsClassifier(5, p=3, algorithm="kd_tree"), "binary"
    ),
    "k neighbours, ball tree": tabular(
        lambda: KNeighborsRegressor(5, algorithm="ball_tree", metric="manhattan"), "regression"
    ),
    "ridge cv": tabular(RidgeCV, "regression"),
    "logistic regression cv": tabular(lambda: LogisticRegressionCV(Cs=3, cv=3, max_iter=300), "multiclass"),
    "huber regressor": tabular(HuberRegressor, "regression"),
    "nu svc": tabular(lambda: NuSVC(probability=True, random_state=0), "multiclass"),
    "radius neighbours": tabular(lambda: RadiusNeighborsClassifier(radius=5.0), "multiclass"),
    "local outlier factor": tabular(lambda: LocalOutlierFactor(novelty=True), "outliers"),
    "linear discriminant analysis": tabular(LinearDiscriminantAnalysis, "multiclass"),
    "gaussian naive bayes": tabular(GaussianNB, "multiclass"),
    "multinomial naive bayes": Case(
        lambda: make_pipeline(encoded(MinMaxScaler()), MultinomialNB()), "multiclass"
    ),
    "bernoulli naive bayes": tabular(BernoulliNB, "binary"),
    "mlp classifier": tabular(lambda: MLPClassifier((16,), max_iter=300, random_state=0), "multiclass"),
    "mlp regressor, sgd": tabular(
        lambda: MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", max_iter=100, random_state=0),
        "regression",
    ),
    # Every tree ensemble after the standard preprocessing: its trees see the encoded width.
    "decision tree": tabular(lambda: DecisionTreeClassifier(max_depth=5, random_state=0), "multiclass"),
    "random forest": tabular(lambda: RandomForestClassifier(20, random_state=0), "binary"),
    "random forest, string classes": tabular(
        lambda: RandomForestClassifier(20, random_state=0), "multiclass"
    ),
    "random forest regressor": tabular(lambda: RandomForestRegressor(20, random_state=0), "regression"),
    "extra trees": tabular(lambda: ExtraTreesClassifier(20, random_state=0), "multiclass"),
    "extra trees regressor": tabular(lambda: ExtraTreesRegressor(20, random_state=0), "regression"),
    "gradient boosting": tabular(
        lambda: GradientBoostingClassifier(n_estimators=20, random_state=0), "binary"
    ),
    "gradient boosting, string classes": tabular(
        lambda: GradientBoostingClassifier(n_estimators=10, random_state=0), "multiclass"
    ),
    "gradient boosting, init zero": tabular(
        lambda: GradientBoostingClassifier(init="zero", n_estimators=10, random_state=0), "multiclass"
    ),
    "gradient boosting regressor": tabular(
        lambda: GradientBoostingRegressor(n_estimators=20, random_state=0), "regression"
    ),
    "hist gradient boosting": tabular(lambda: HistGradientBoostingClassifier(max_iter=20), "binary"),
    "hist gradient boosting, string classes": tabular(
        lambda: HistGradientBoostingClassifier(max_iter=10), "multiclass"
    ),
    "hist gradient boosting regressor": tabular(
        lambda: HistGradientBoostingRegressor(max_iter=20), "regression"
    ),
    "ada boost": tabular(lambda: AdaBoostClassifier(n_estimators=20, random_state=0), "multiclass"),
    "ada boost regressor": tabular(lambda: AdaBoostRegressor(n_estimators=10, random_state=0), "regression"),
    "bagging with feature subsets": tabular(
        lambda: BaggingClassifier(
            DecisionTreeClassifier(max_depth=4), n_estimators=10, max_features=0.6, random_state=0
        ),
        "multiclass",
    ),
    "bagging regressor, bootstrapped features": tabular(
        lambda: BaggingRegressor(n_estimators=10, max_features=0.7, bootstrap_features=True, random_state=0),
        "regression",
    ),
    "isolation forest": Case(
        lambda: IsolationForest(n_estimators=20, max_features=0.7, random_state=0), "outliers", numeric_frame
    ),
    "isolation forest in a pipeline": tabular(
        lambda: IsolationForest(n_estimators=20, random_state=0), "outliers"
    ),
    "random forest on NaN directly": Case(
        lambda: RandomForestRegressor(10, random_state=0), "regression", lambda: frame()[NUMERIC]
    ),
    "hist gradient boosting, quantile loss": tabular(
        lambda: HistGradientBoostingRegressor(loss="quantile", quantile=0.8, max_iter=10), "regression"
    ),
    "gradient boosting, huber loss": tabular(
        lambda: GradientBoostingRegressor(loss="huber", n_estimators=10, random_state=0), "regression"
    ),
    "random trees embedding": Case(
        lambda: make_pipeline(encoded(), RandomTreesEmbedding(5, random_state=0), RidgeCV()), "regression"
    ),
    # Histogram gradient boosting's own categorical handling, on the raw table.
    "hist gradient boosting, native categoricals": Case(
        lambda: HistGradientBoostingClassifier(max_iter=20, categorical_features="from_dtype"),
        "multiclass",
        categorical_frame,
    ),
    "hist gradient boosting regressor, categoricals by name": Case(
        lambda: make_pipeline(
            ColumnTransformer(
                [("text", ordinal(), TEXT)], remainder="passthrough", verbose_feature_names_out=False
            ),
            HistGradientBoostingRegressor(max_iter=20, categorical_features=[0]),
        ),
        "regression",
    ),
    # Meta-estimators.
    "calibrated classifier": tabular(
        lambda: CalibratedClassifierCV(LogisticRegression(max_iter=500), cv=3), "multiclass"
    ),
    "calibrated forest": tabular(
        lambda: CalibratedClassifierCV(RandomForestClassifier(10, random_state=0), cv=3, method="isotonic"),
        "binary",
    ),
    "stacking classifier": tabular(
        lambda: StackingClassifier(
            [
                ("forest", RandomForestClassifier(10, random_state=0)),
                ("linear", LogisticRegression(max_iter=500)),
            ],
            final_estimator=RandomForestClassifier(10, random_state=0),
            passthrough=True,
            cv=3,
        ),
        "multiclass",
    ),
    "stacking regressor": tabular(
        lambda: StackingRegressor(
            [("forest", RandomForestRegressor(10, random_state=0)), ("ridge", Ridge())],
            final_estimator=GradientBoostingRegressor(n_estimators=10, random_state=0),
            cv=3,
        ),
        "regression",
    ),
    "voting classifier": tabular(
        lambda: VotingClassifier(
            [
                ("forest", RandomForestClassifier(10, random_state=0)),
                ("hist", HistGradientBoostingClassifier(max_iter=5)),
                ("linear", LogisticRegression(max_iter=500)),
            ],
            voting="soft",
        ),
        "multiclass",
    ),
    "voting regressor": tabular(
        lambda: VotingRegressor([("forest", RandomForestRegressor(10, random_state=0)), ("ridge", Ridge())]),
        "regression",
    ),
    "transformed target regressor": tabular(
        lambda: TransformedTargetRegressor(
            regressor=RandomForestRegressor(10, random_state=0), func=np.arcsinh, inverse_func=np.sinh
        ),
        "regression",
    ),
    "transformed target, quantile transformer": tabular(
        lambda: TransformedTargetRegressor(
            regressor=Ridge(), transformer=QuantileTransformer(n_quantiles=50)
        ),
        "regression",
    ),
    # Transformers, each in front of a model.
    "ordinal encoder": Case(
        lambda: make_pipeline(encoded(text=ordinal()), RandomForestClassifier(10, random_state=0)),
        "multiclass",
    ),
    "target encoder": Case(
        lambda: make_pipeline(encoded(text=TargetEncoder(random_state=0)), Ridge()), "regression"
    ),
    "knn imputer": Case(
        lambda: make_pipeline(
            ColumnTransformer(
                [("text", ordinal(), TEXT), ("numbers", make_pipeline(KNNImputer(), RobustScaler()), NUMERIC)]
            ),
            ExtraTreesRegressor(10, random_state=0),
        ),
        "regression",
    ),
    "min max scaler": Case(lambda: make_pipeline(encoded(MinMaxScaler()), SVC()), "binary"),
    "robust scaler": Case(lambda: make_pipeline(encoded(RobustScaler()), Ridge()), "regression"),
    "quantile transformer": Case(
        lambda: make_pipeline(encoded(QuantileTransformer(n_quantiles=50)), LogisticRegression()), "binary"
    ),
    "power transformer": Case(lambda: make_pipeline(encoded(PowerTransformer()), Ridge()), "regression"),
    "spline transformer": Case(
        lambda: make_pipeline(
            encoded(SplineTransformer(n_knots=4)), RandomForestRegressor(10, random_state=0)
        ),
        "regression",
    ),
    "k bins discretizer": Case(
        lambda: make_pipeline(
            encoded(KBinsDiscretizer(n_bins=4, quantile_method="averaged_inverted_cdf")),
            GradientBoostingClassifier(n_estimators=10, random_state=0),
        ),
        "binary",
    ),
    "polynomial features then a forest": Case(
        lambda: make_pipeline(encoded(), PolynomialFeatures(2), RandomForestClassifier(20, random_state=0)),
        "binary",
    ),
    "polynomial features then hist gradient boosting": Case(
        lambda: make_pipeline(encoded(), PolynomialFeatures(2), HistGradientBoostingRegressor(max_iter=10)),
        "regression",
    ),
    "select k best": Case(
        lambda: make_pipeline(
            encoded(), SelectKBest(f_classif, k=4), ExtraTreesClassifier(10, random_state=0)
        ),
        "multiclass",
    ),
    "select from model": Case(
        lambda: make_pipeline(
            encoded(),
            SelectFromModel(RandomForestRegressor(10, random_state=0)),
            GradientBoostingRegressor(n_estimators=10, random_state=0),
        ),
        "regression",
    ),
    "select percentile, mutual information": Case(
        lambda: make_pipeline(
            encoded(),
            SelectPercentile(mutual_info_classif, percentile=50),
            RandomForestClassifier(10, random_state=0),
        ),
        "multiclass",
    ),
    "recursive feature elimination": Case(
        lambda: make_pipeline(
            encoded(), RFE(RandomForestClassifier(10, random_state=0), n_features_to_select=4)
        ),
        "multiclass",
    ),
    "pca": Case(lambda: make_pipeline(encoded(), PCA(3), ExtraTreesClassifier(10, random_state=0)), "binary"),
    "iterative imputer": Case(
        lambda: make_pipeline(IterativeImputer(random_state=0), RandomForestRegressor(10, random_state=0)),
        "regression",
        lambda: frame()[NUMERIC],
    ),
    "missing indicator": Case(
        lambda: make_pipeline(SimpleImputer(add_indicator=True), GradientBoostingRegressor(n_estimators=10)),
        "regression",
        lambda: frame()[NUMERIC],
    ),
    "grid search": Case(
        lambda: GridSearchCV(
            make_pipeline(encoded(), RandomForestClassifier(10, random_state=0)),
            {"randomforestclassifier__max_depth": [3, 6]},
            cv=3,
        ),
        "multiclass",
    ),
    "one vs rest": tabular(
        lambda: OneVsRestClassifier(RandomForestClassifier(10, random_state=0)), "multiclass"
    ),
    "tuned decision threshold": tabular(
        lambda: TunedThresholdClassifierCV(LogisticRegression(max_iter=500), cv=3), "binary"
    ),
    "variance threshold": Case(
        lambda: make_pipeline(encoded(), VarianceThreshold(0.01), KNeighborsClassifier()), "binary"
    ),
    "function transformer, numpy function": Case(
        lambda: make_pipeline(
            ColumnTransformer(
                [
                    ("text", ordinal(), TEXT),
                    (
                        "numbers",
                        make_pipeline(SimpleImputer(), FunctionTransformer(np.log1p)),
                        ["income", "age"],
                    ),
                ]
            ),
            RandomForestRegressor(10, random_state=0),
        ),
        "regression",
    ),
    "feature union": Case(
        lambda: make_pipeline(
            encoded(),
            FeatureUnion(
                [("scaled", StandardScaler()), ("squares", PolynomialFeatures(2, include_bias=False))]
            ),
            ExtraTreesClassifier(10, random_state=0),
        ),
        "multiclass",
    ),
}


def fit(name: str) -> tuple[Any, pd.DataFrame]:
    """The fitted model of ``name`` and the rows it was fitted on."""
    case = CASES[name]
    data = case.data()
    model = case.build()
    if case.task == "outliers":
        model.fit(data)
    else:
        # Every table has the rows of frame(), in its order: the labels come from the whole table.
        model.fit(data, labels(case.task, frame()))
    return model, data


def outputs(model: Any, data: pd.DataFrame) -> list[np.ndarray]:
    """What the model computes on ``data``: predictions, and probabilities or scores where it has them."""
    results = [np.asarray(model.predict(data))]
    for method in ("predict_proba", "decision_function", "score_samples"):
        if hasattr(model, method):
            try:
                results.append(np.asarray(getattr(model, method)(data)))
            except AttributeError:  # e.g. predict_proba of a hard-voting ensemble
                continue
    return results
