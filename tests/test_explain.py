"""`workbench.explain` against the `shap` library as the oracle: the same per-input-column contributions to 1e-6
on the demo's credit data (with missing values) and on scikit-learn's wine and breast-cancer data."""
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor, GradientBoostingClassifier,
                              GradientBoostingRegressor, HistGradientBoostingClassifier, RandomForestClassifier,
                              RandomForestRegressor)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from workbench import demo
from workbench.errors import WorkbenchError
from workbench.explain import contributions, explainer, reasons, transformed

import shap  # noqa: E402  the oracle, in the test extra: its absence is a failure, never a skip
TOL = 1e-6


@pytest.fixture(scope='module')
def credit():
    frame = demo.training_frame(demo.generate(months=3, rows_per_month=800), 3)
    y = frame.pop('defaulted')
    return frame.drop(columns=['application_id', 'applied_at', 'month']), y


def fitted(credit, model, impute=True, target=None):
    "The demo's pipeline (numbers imputed or not, then scaled; text one-hot) around `model`, fitted, and its frame."
    X, y = credit
    if target is not None: X, y = X.drop(columns=[target]), X[target]
    numeric = [c for c in X if pd.api.types.is_numeric_dtype(X[c])]
    text = [c for c in X if c not in numeric]
    num = make_pipeline(SimpleImputer(strategy='median'), StandardScaler()) if impute else StandardScaler()
    pipe = make_pipeline(ColumnTransformer([('num', num, numeric), ('cat', OneHotEncoder(handle_unknown='ignore'), text)]),
                         model)
    return pipe.fit(X, y), X


def oracle(ex, model, Z, background):
    "shap's values for the rows `Z`, summed per input column: rows × columns (rows × classes × columns if multiclass)."
    if ex['kind'] == 'trees':
        values = shap.TreeExplainer(model, feature_perturbation='tree_path_dependent').shap_values(Z, check_additivity=False)
    else:
        values = shap.LinearExplainer(model, shap.maskers.Independent(background, max_samples=len(background))).shap_values(Z)
    values = np.asarray(values)
    if isinstance(values, np.ndarray) and values.ndim == 3 and values.shape[0] != len(Z): values = values.transpose(1, 2, 0)
    index = {c: i for i, c in enumerate(ex['features'])}
    M = np.zeros((len(ex['columns']), len(index)))
    M[np.arange(len(ex['columns'])), [index[c] for c in ex['columns']]] = 1.0
    if values.ndim == 3:  # rows × transformed columns × classes
        if ex['task'] == 'binary': return values[..., 1] @ M
        return np.einsum('rfk,fc->rkc', values, M)
    return values @ M


def output(ex, model, Z):
    "The model's own output in the explainer's space."
    if ex['space'] == 'log-odds': return model.decision_function(Z)
    if ex['space'] == 'probability':
        p = model.predict_proba(Z)
        return p[:, 1] if ex['task'] == 'binary' else p
    return model.predict(Z)


def check(pipe, X, rows=400):
    "Contributions agree with shap to 1e-6 and add up to the model's output; returns the largest difference."
    ex = explainer(pipe, X)
    json.dumps(ex, allow_nan=False)  # plain, strict JSON
    ex = json.loads(json.dumps(ex))  # and explained from what JSON gives back
    background = transformed(pipe, X)
    Z = background[:rows]
    model = pipe[-1] if hasattr(pipe, 'steps') else pipe
    mine = contributions(ex, Z)
    theirs = oracle(ex, model, Z, background)
    assert mine.shape == theirs.shape
    diff = float(np.abs(mine - theirs).max())
    print(f"{type(model).__name__}: max |workbench - shap| = {diff:.1e}")  # shown with pytest -s
    assert diff < TOL, diff
    np.testing.assert_allclose(np.asarray(ex['base_value']) + mine.sum(-1), output(ex, model, Z), atol=1e-9)
    return diff


@pytest.mark.parametrize('model', [
    RandomForestClassifier(n_estimators=50, max_depth=8, random_state=0),
    GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=0),
    LogisticRegression(max_iter=1000),
], ids=lambda m: type(m).__name__)
def test_credit_classifiers_agree_with_shap(credit, model):
    check(*fitted(credit, model))


@pytest.mark.parametrize('model', [
    HistGradientBoostingClassifier(max_iter=50, random_state=0),
    RandomForestClassifier(n_estimators=30, max_depth=8, random_state=0),  # scikit-learn's trees learn where NaN goes too
], ids=lambda m: type(m).__name__)
def test_missing_values_follow_the_model(credit, model):
    pipe, X = fitted(credit, model, impute=False)
    Z = transformed(pipe, X)
    assert np.isnan(Z[:400]).any(axis=1).sum() > 20  # rows that reach the model with NaN
    check(pipe, X)


@pytest.mark.parametrize('model', [
    ExtraTreesRegressor(n_estimators=30, max_depth=8, random_state=0),
    RandomForestRegressor(n_estimators=30, max_depth=8, random_state=0),
    GradientBoostingRegressor(n_estimators=40, max_depth=3, random_state=0),
    Ridge(),
], ids=lambda m: type(m).__name__)
def test_credit_regressors_agree_with_shap(credit, model):
    check(*fitted(credit, model, target='interest_rate'))


@pytest.mark.parametrize('model', [
    RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0),
    HistGradientBoostingClassifier(max_iter=20, random_state=0),
    LogisticRegression(max_iter=5000),
], ids=lambda m: type(m).__name__)
def test_wine_multiclass(model):
    data = load_wine(as_frame=True)
    pipe = make_pipeline(StandardScaler(), model).fit(data.data, data.target)
    ex = explainer(pipe, data.data)
    assert ex['task'] == 'multiclass' and ex['classes'] == [0, 1, 2] and len(ex['base_value']) == 3
    check(pipe, data.data)


@pytest.mark.filterwarnings('ignore:X does not have valid feature names')
def test_wine_gradient_boosting_adds_up():
    "shap explains GradientBoostingClassifier for two classes only: for three, the contributions must add up per class."
    data = load_wine(as_frame=True)
    model = GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0).fit(data.data, data.target)
    ex = explainer(model, data.data)
    c = contributions(ex, data.data.to_numpy())
    assert c.shape == (len(data.data), 3, data.data.shape[1])
    np.testing.assert_allclose(np.asarray(ex['base_value']) + c.sum(-1), model.decision_function(data.data.to_numpy()),
                               atol=1e-9)


@pytest.mark.filterwarnings('ignore:X does not have valid feature names')
def test_breast_cancer_bare_model():
    data = load_breast_cancer(as_frame=True)
    model = ExtraTreesClassifier(n_estimators=40, max_depth=10, random_state=0).fit(data.data, data.target)
    ex = explainer(model, data.data)
    assert ex['features'] == list(data.data.columns) and ex['space'] == 'probability'
    check(model, data.data)


@pytest.mark.parametrize('model', [SVC(), MLPClassifier(max_iter=500), KNeighborsClassifier()],
                         ids=lambda m: type(m).__name__)
def test_unsupported_models_are_refused_in_one_sentence(credit, model):
    X, y = credit
    pipe = make_pipeline(StandardScaler(), model).fit(X[['age', 'loan_amount']], y)
    with pytest.raises(WorkbenchError) as e:
        explainer(pipe, X[['age', 'loan_amount']])
    message = str(e.value)
    assert type(model).__name__ in message and 'RandomForest' in message and 'LogisticRegression' in message
    assert message.count('. ') == 0 and '\n' not in message


def test_reasons_for_the_riskiest_applicants(credit):
    pipe, X = fitted(credit, GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=0))
    ex = explainer(pipe, X)
    Z = transformed(pipe, X)
    c = contributions(ex, Z)
    risky = np.argsort(-pipe.decision_function(X))[:5]
    why = reasons(ex, c[risky], X.iloc[risky])
    assert len(why) == 5 and all(len(w) == 3 for w in why)
    for row, w in zip(risky, why):
        assert [r['contribution'] for r in w] == sorted(np.sort(c[row])[::-1][:3].tolist(), reverse=True)
        assert all(r['contribution'] > 0 and r['feature'] in X.columns for r in w)
    json.dumps(why)


def test_the_cli_explains_the_demo_champion_from_onnx(demo_run, tmp_path):
    "`workbench explain REF SOURCE`: reasons per row from the registered ONNX model and explainer, adding up to what the model outputs."
    import subprocess, sys
    from pathlib import Path
    from conftest import clean_env
    from workbench import data, registry
    from workbench.config import load_settings
    from workbench.deployed import OnnxModel
    from workbench.workspace import open_workspace
    env = clean_env(WORKBENCH_HOME=str(demo_run.ws))
    wb = lambda *a: subprocess.run([str(Path(sys.executable).parent/'workbench'), *map(str, a)], env=env, capture_output=True, text=True, timeout=300)
    ws = open_workspace(demo_run.ws, load_settings(env={}), create=False)
    source = data.resolve(ws, 'applications').ref
    r = wb('explain', 'credit-default@champion', source, '--top', 2, '--out', tmp_path/'why.parquet', '--format', 'json')
    assert r.returncode == 0, r.stderr
    shown, kept = json.loads(r.stdout), pd.read_parquet(tmp_path/'why.parquet')
    frame = data.load(ws, source)
    assert len(shown) == len(kept) == len(frame) and {'reason 1', 'reason 2'} <= set(shown[0]) and 'rows explained in' in r.stderr
    ex, _ = registry.load_explainer(ws, 'credit-default@champion')
    p = OnnxModel(registry.load_onnx(ws, 'credit-default@champion')[0]).predict_proba(frame)[:, 1]
    target = np.log(p / (1 - p)) if ex['space'] == 'log-odds' else p
    total = ex['base_value'] + kept.filter(like='contribution: ').sum(axis=1).to_numpy()
    assert np.abs(total - target).max() < 1e-6, ex['space']
    top = [max(((f, v) for f, v in zip(ex['features'], row) if v > 0), key=lambda x: x[1], default=(None, 0)) for row in kept.filter(like='contribution: ').to_numpy()]
    assert [s['reason 1'].split(' = ')[0] if s['reason 1'] else None for s in shown] == [f for f, _ in top]
    for args, says in [(['credit-default@champion', 'no_such_data'], "no dataset named 'no_such_data'"), (['nope@champion', source], "no registered model named 'nope'")]:
        r = wb('explain', *args)
        assert r.returncode == 1 and says in r.stderr and 'Traceback' not in r.stderr, r.stderr
