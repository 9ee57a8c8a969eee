"""Exact explanations (issue 22): `workbench.explain` against `shap.TreeExplainer` / `shap.LinearExplainer` on the same model and rows.

Data: 20,000 demo credit rows for training and 20,000 others to explain (`demo.generate`, seed 42). Models: the train
pipeline's preprocessing (median imputation + scaling, one-hot text) then a RandomForestClassifier(100 trees, depth 8),
a GradientBoostingClassifier(60 trees, depth 3) and a LogisticRegression, as `pipelines/train.ipynb` fits them.

For each model, in one run: the batch rate (rows/s) of ours (`explain.explained`: ONNX Runtime computes the features
from the exported model, then the contributions) and of shap on scikit-learn's transformed matrix
(`shap_values`), the single-row latency (p50 and p99 over 300 rows, each explained alone) of both, the single-row
scoring latency of the ONNX model alone (what an explained request adds to), and the largest difference between the two
per input column (which must be below 1e-6). Prints one line of JSON per model.

    pytest tests/benchmarks/bench_explain.py -m benchmark -s -p no:cacheprovider
"""
import json, time
import numpy as np, pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from workbench import demo, explain, onnx
from workbench.deployed import OnnxModel

NUM = ['age', 'income', 'employment_years', 'loan_amount', 'term_months', 'interest_rate', 'credit_score', 'debt_to_income',
       'num_open_accounts', 'delinquencies_2y']
CAT = ['home_ownership', 'purpose', 'product', 'region']
ROWS, SINGLE = 20_000, 300


def frame():
    f = demo.training_frame(demo.generate(months=10, rows_per_month=4_000, drift_month=11, seed=42), 10)
    return f[NUM + CAT].iloc[:ROWS], f.defaulted.iloc[:ROWS], f[NUM + CAT].iloc[ROWS:2 * ROWS].reset_index(drop=True)


def per_input(pipe, values:np.ndarray) -> np.ndarray:
    "shap's values over the transformed columns, summed over the columns each input column gives."
    names = list(pipe[0].get_feature_names_out())
    owner = [next(i for i, c in enumerate(NUM + CAT) if n.split('__', 1)[1] == c or n.split('__', 1)[1].startswith(c + '_')) for n in names]
    M = np.zeros((len(names), len(NUM + CAT))); M[np.arange(len(names)), owner] = 1
    return values @ M


def timed(f, reps:int=1) -> float:
    t = time.perf_counter()
    for _ in range(reps): f()
    return (time.perf_counter() - t) / reps


@pytest.mark.benchmark
@pytest.mark.parametrize('name', ['random forest, 100 trees, depth 8', 'gradient boosting, 60 trees, depth 3', 'logistic regression'])
def test_explanations_against_shap(name):
    import shap
    X, y, rows = frame()
    est = {'random forest, 100 trees, depth 8': RandomForestClassifier(100, max_depth=8, random_state=0, n_jobs=1),
           'gradient boosting, 60 trees, depth 3': GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=0),
           'logistic regression': LogisticRegression(max_iter=2000)}[name]
    pre = ColumnTransformer([('num', make_pipeline(SimpleImputer(strategy='median'), StandardScaler()), NUM),
                             ('cat', OneHotEncoder(handle_unknown='ignore', sparse_output=False), CAT)])
    pipe = make_pipeline(pre, est).fit(X, y)
    exported = onnx.export(pipe, rows.head(2000))
    ex, features, model = exported.explainer, OnnxModel(exported.features), OnnxModel(exported.onnx)
    Z = pipe[0].transform(rows)
    if isinstance(est, LogisticRegression):
        # the same background as ours: the held-out rows the model was exported with
        oracle = shap.LinearExplainer(est, shap.maskers.Independent(pipe[0].transform(rows.head(2000)), max_samples=2000))
        theirs = lambda z: oracle.shap_values(z)
    else:
        oracle = shap.TreeExplainer(est, feature_perturbation='tree_path_dependent')
        theirs = lambda z: np.asarray(oracle.shap_values(z, check_additivity=False))[..., 1] if isinstance(est, RandomForestClassifier) else oracle.shap_values(z)
    explain.explained(ex, features, rows.head(5))  # compiled once, as a server's first request would
    ours_s, theirs_s = timed(lambda: explain.explained(ex, features, rows)), timed(lambda: theirs(Z))
    mine, oracle_values = explain.explained(ex, features, rows), per_input(pipe, theirs(Z))
    diff = float(np.abs(mine - oracle_values).max())
    one = [rows.iloc[[i]] for i in range(SINGLE)]
    lat = lambda f: np.array([timed(lambda r=r: f(r)) for r in one]) * 1000
    ours_1, theirs_1 = lat(lambda r: explain.explained(ex, features, r)), lat(lambda r: theirs(pipe[0].transform(r)))
    score_1 = lat(lambda r: model.predict_proba(r))
    out = dict(model=name, rows=ROWS, ours_rows_per_s=round(ROWS / ours_s), shap_rows_per_s=round(ROWS / theirs_s),
               ratio=round(theirs_s / ours_s, 2), ours_row_p50_ms=round(float(np.median(ours_1)), 3),
               ours_row_p99_ms=round(float(np.percentile(ours_1, 99)), 3), shap_row_p50_ms=round(float(np.median(theirs_1)), 3),
               score_row_p50_ms=round(float(np.median(score_1)), 3), max_abs_diff=diff, explainer_json_bytes=len(json.dumps(ex)))
    print(json.dumps(out))
    assert diff < 1e-6, out
    assert out['ours_rows_per_s'] > 0 and out['shap_rows_per_s'] > 0
