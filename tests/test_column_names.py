"Any column name a DataFrame can hold works end to end, nobody sees a renamed column, and missing values follow the model (issue 17, items 2 and 8)."
import contextlib, csv, io, json, os
import httpx, numpy as np, pandas as pd, pyarrow as pa, pyarrow.parquet as pq
import pytest
from conftest import BIN, clean_env, free_port, started

MODEL, KEY, TARGET = 'odd-names', 'patient id', 'diagnosis'
IMPUTED = ['mean radius', 'select']  # an imputer on their path: missing values are taken
PLAIN = ['mean.texture', 'order', 'Age', 'age', 'größe', '2nd worst area', "worst 'concave' points"]  # no imputer: missing values are refused
TEXT = 'tumour "grade"'  # an encoder that errors on unknown values: a missing one is refused too
FEATURES = IMPUTED + PLAIN + [TEXT]


def frame() -> pd.DataFrame:
    "scikit-learn's breast cancer data under its own names and odder ones: spaces, dots, quotes, unicode, a leading digit, SQL words, names differing in case."
    from sklearn.datasets import load_breast_cancer
    X = load_breast_cancer(as_frame=True).frame
    df = pd.DataFrame({KEY: [f'p-{i:04d}' for i in range(len(X))], 'mean radius': X['mean radius'], 'select': X['mean smoothness'] * 100,
                       'mean.texture': X['mean texture'], 'order': X['mean compactness'] * 10, 'Age': X['worst radius'], 'age': X['worst texture'],
                       'größe': X['mean area'] / 100, '2nd worst area': X['worst area'] / 100, "worst 'concave' points": X['worst concave points'] * 10,
                       TEXT: pd.cut(X['worst concavity'], [-1, .2, .4, 2], labels=['low', 'mid', 'high']).astype(str), TARGET: X['target']})
    df.loc[df.index[::9], 'mean radius'] = np.nan  # real data has holes, here where the imputer is
    return df


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "A workspace with the data committed and a model trained, exported, logged and registered under the data's own names."
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from workbench import data, onnx, registry, tracking
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    home = tmp_path_factory.mktemp('names')
    ws = open_workspace(home/'ws', load_settings(env={}))
    df = frame()
    v = data.commit(ws, 'tumours', df, 'breast cancer, odd names', 'ana')
    train, test = df[:400], df[400:]
    pre = ColumnTransformer([('imputed', make_pipeline(SimpleImputer(strategy='median'), StandardScaler()), IMPUTED),
                             ('plain', StandardScaler(), PLAIN), ('text', OneHotEncoder(handle_unknown='error'), [TEXT])])
    pipe = make_pipeline(pre, LogisticRegression(max_iter=2000))
    with tracking.start_run(ws, MODEL, v.ref, FEATURES, TARGET, {'model': 'LogisticRegression'}) as run:
        pipe.fit(train[FEATURES], train[TARGET])
        exported = onnx.export(pipe, test[FEATURES], settings=ws.settings)
        registry.log_candidate(ws, run.run_id, exported)
    registry.client(ws).set_tag(run.run_id, 'workbench.keys', json.dumps([KEY]))  # as the training pipeline records keys
    mv = registry.register(ws, run.run_id, MODEL, actor='ci-pipeline')
    return home, ws, pipe, exported, mv, test.reset_index(drop=True)


def test_the_model_keeps_the_names_and_measures_missing_values(trained):
    "The graph's inputs may be safe identifiers, but the signature, the registry's copy and the flags use the original names."
    from workbench import registry
    from workbench.deployed import OnnxModel
    home, ws, pipe, exported, mv, test = trained
    m = OnnxModel(exported.onnx)
    assert [s['name'] for s in exported.signature] == [i.name for i in m.inputs] == FEATURES
    renamed = {i.name: i.tensor for i in m.inputs if i.tensor != i.name}
    assert renamed['mean radius'] == 'mean_radius' and set(renamed) >= {'mean radius', 'mean.texture', TEXT} and 'Age' not in renamed
    assert {i.name: i.nullable for i in m.inputs} == {n: n in IMPUTED for n in FEATURES}
    assert np.abs(m.predict_proba(test) - pipe.predict_proba(test[FEATURES])).max() < 1e-9
    served, _ = registry.load_onnx(ws, mv.ref)
    assert [i.name for i in OnnxModel(served).inputs] == FEATURES


@contextlib.contextmanager
def serving(home, ref):
    "`workbench serve REF` on 127.0.0.1 and a free port; SIGTERM after (the prediction log flushes)."
    port = free_port()
    url, log = f'http://127.0.0.1:{port}', home/f'serve-{port}.log'
    with started([BIN/'workbench', '--workspace', home/'ws', 'serve', ref, '--port', port], url + '/health', log=log, cwd=home, env=clean_env()):
        with httpx.Client(base_url=url, timeout=30) as c: yield c
    assert 'Traceback' not in log.read_text()


def records(df:pd.DataFrame) -> list:
    return df.astype(object).where(df.notna(), None).to_dict('records')


def refused(r, *words):
    assert r.status_code == 400, (r.status_code, r.text)
    message = r.json().get('message', r.json().get('error'))
    assert all(w in message for w in words), (message, words)
    return message


def test_served_by_the_original_names_on_both_protocols_with_keys_logged(trained):
    from workbench.deployed import OnnxModel
    home, ws, pipe, exported, mv, test = trained
    rows = test.head(5)
    want = pipe.predict_proba(rows[FEATURES])[:, 1]
    with serving(home, mv.ref) as c:
        post = lambda body, rid, ct='application/json': c.post('/invocations', content=body if isinstance(body, str) else json.dumps(body),
                                                                 headers={'Content-Type': ct, 'X-Request-ID': rid})
        # MLflow's JSON, keys included: scored as scikit-learn scores the frame
        r = post({'dataframe_split': {'columns': [KEY] + FEATURES, 'data': rows[[KEY] + FEATURES].astype(object).where(rows[[KEY] + FEATURES].notna(), None).values.tolist()}}, 'names-split')
        assert r.status_code == 200, r.text
        assert r.json()['predictions'] == pipe.predict(rows[FEATURES]).tolist()
        assert post({'dataframe_records': records(rows[[KEY] + FEATURES])}, 'names-records').status_code == 200
        # CSV, its header holding the quotes and spaces as they are
        buf = io.StringIO(); rows[[KEY] + FEATURES].to_csv(buf, index=False, quoting=csv.QUOTE_MINIMAL)
        assert post(buf.getvalue(), 'names-csv', 'text/csv').status_code == 200
        # the Open Inference Protocol, tensors named by column
        meta = c.get(f'/v2/models/{MODEL}').json()
        assert [t['name'] for t in meta['inputs']] == FEATURES
        tensors = [{'name': n, 'shape': [5, 1], 'datatype': 'BYTES' if n == TEXT else 'FP64', 'data': [None if v != v else v for v in rows[n].tolist()]} for n in FEATURES]
        r = c.post(f'/v2/models/{MODEL}/infer', json={'inputs': tensors})
        assert r.status_code == 200, r.text
        out = {o['name']: np.array(o['data']).reshape(o['shape']) for o in r.json()['outputs']}
        assert np.abs(out['probabilities'][:, 1] - want).max() < 1e-9
        # /openapi.json: the original names, never a graph's
        spec = json.dumps(c.get('/openapi.json').json(), ensure_ascii=False)
        renamed = [i.tensor for i in OnnxModel(exported.onnx).inputs if i.tensor != i.name]
        assert all(json.dumps(n, ensure_ascii=False) in spec for n in FEATURES) and not [t for t in renamed if json.dumps(t) in spec]
        # missing values follow the model: taken where it imputes, refused (naming column and row) where it does not
        one = records(rows.head(2)[[KEY] + FEATURES])
        assert post({'dataframe_records': [one[0], one[1] | {'mean radius': None, 'select': None}]}, 'names-imputed').status_code == 200
        refused(post({'dataframe_records': [one[0], one[1] | {'order': None}]}, 'names-bad-1'), "column 'order' has a missing value", 'row 1', 'forbids')
        refused(post({'dataframe_records': [one[0] | {TEXT: None}]}, 'names-bad-2'), f"column {TEXT!r} has a missing value")
        refused(c.post(f'/v2/models/{MODEL}/infer', json={'inputs': [t | {'data': [None] * 5} if t['name'] == 'Age' else t for t in tensors]}), "column 'Age' has a missing value")
        # errors name the original columns
        refused(post({'dataframe_records': [{k: v for k, v in one[0].items() if k != 'mean radius'}]}, 'names-bad-3'), "missing column 'mean radius'")
        refused(post({'dataframe_records': [one[0] | {'mean_radius': 1.0}]}, 'names-bad-4'), 'unknown column mean_radius')
        refused(post({'dataframe_records': [one[0] | {'größe': 'groß'}]}, 'names-bad-5'), "column 'größe' must hold numbers")
    log = ws.sql("select request_id, \"row\", inputs from predictions where starts_with(request_id, 'names-') order by request_id, \"row\"").df()
    assert not log.request_id.str.startswith('names-bad').any(), 'a refused request was logged'
    split = [json.loads(i) for i in log[log.request_id == 'names-split'].inputs]
    assert [r[KEY] for r in split] == rows[KEY].tolist() and set(split[0]) == {KEY} | set(FEATURES)  # the key, with the row, under the original names


def test_batch_scores_by_the_original_names(trained, tmp_path):
    from workbench import batch
    from workbench.config import WorkbenchError
    home, ws, pipe, exported, mv, test = trained
    src = tmp_path/'in.parquet'
    pq.write_table(pa.Table.from_pandas(test[[KEY] + FEATURES], preserve_index=False), src)
    r = batch.score(ws, mv.ref, str(src), tmp_path/'out.parquet', batch_size=64, keys=[KEY])
    out = pq.read_table(tmp_path/'out.parquet')
    assert out.column_names == [KEY, 'prediction', 'probability', 'model_version'] and r['rows'] == len(test)
    assert out[KEY].to_pylist() == test[KEY].tolist()
    assert np.abs(out['probability'].to_numpy() - pipe.predict_proba(test[FEATURES])[:, 1]).max() < 1e-9
    assert test['mean radius'].isna().any()  # missing values where the model imputes are scored
    bad = test.copy(); bad.loc[70, 'order'] = np.nan
    pq.write_table(pa.Table.from_pandas(bad[[KEY] + FEATURES], preserve_index=False), tmp_path/'bad.parquet')
    with pytest.raises(WorkbenchError, match="column 'order' has a missing value \\(null or NaN\\) in row 70"):
        batch.score(ws, mv.ref, str(tmp_path/'bad.parquet'), tmp_path/'bad-out.parquet', batch_size=64)
    assert not (tmp_path/'bad-out.parquet').exists()


def test_spark_scores_by_the_original_names(trained, tmp_path):
    "The Spark engine reads `Age` and `age` as two columns and gives DuckDB's scores; under CI a missing engine fails, never skips."
    from workbench import batch, spark
    home, ws, pipe, exported, mv, test = trained
    try: spark.session('local[1]')
    except Exception as e:
        if os.environ.get('CI'): pytest.fail(f'Spark is not usable here: {e}')
        pytest.skip(f'Spark is not usable here: {e}')
    src = tmp_path/'in.parquet'
    pq.write_table(pa.Table.from_pandas(test[[KEY] + FEATURES], preserve_index=False), src)
    batch.score(ws, mv.ref, str(src), tmp_path/'spark', engine='spark', batch_size=64, keys=[KEY])
    out = pq.read_table(tmp_path/'spark').to_pandas().sort_values(KEY)
    assert out[KEY].tolist() == sorted(test[KEY]) and list(out.columns) == [KEY, 'prediction', 'probability', 'model_version']
    want = pd.Series(pipe.predict_proba(test[FEATURES])[:, 1], index=test[KEY]).loc[out[KEY]].to_numpy()
    assert np.abs(out['probability'].to_numpy() - want).max() < 1e-9
