"Issue 5, item 7: `workbench serve --export-bundle` writes a build context that serves with no workspace, over HTTP and behind AWS Lambda."
import json, os, re, shutil, signal, subprocess, sys, time, urllib.error, urllib.request
from pathlib import Path
import numpy as np, pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
import workbench
from conftest import approve, clean_env, free_port
from workbench import data, demo, deployed, gates, onnx, registry, tracking
from workbench.config import load_settings
from workbench.workspace import open_workspace

BIN = Path(sys.executable).parent
NUM, CAT = ['income', 'credit_score', 'debt_to_income', 'delinquencies_2y', 'employment_years', 'age'], ['product', 'region']


@pytest.fixture(scope='module')
def home(tmp_path_factory):
    "A workspace whose credit-default champion is a logistic regression on every feature; returns (ws, frame of held-out rows)."
    ws = open_workspace(tmp_path_factory.mktemp('home')/'ws', load_settings(env={}))
    credit = data.commit(ws, 'credit', demo.training_frame(demo.generate(months=4, rows_per_month=800), 4), 'four months', 'ana')
    frame = data.load(ws, credit.ref)
    train, test = frame[:2400], frame[2400:]
    pre = ColumnTransformer([('num', make_pipeline(SimpleImputer(strategy='median'), StandardScaler()), NUM), ('cat', OneHotEncoder(handle_unknown='ignore'), CAT)])
    with tracking.start_run(ws, 'credit-default', credit.ref, NUM + CAT, 'defaulted') as run:
        pipe = make_pipeline(pre, LogisticRegression(max_iter=500)).fit(train[NUM + CAT], train.defaulted)
        exported = onnx.export(pipe, test[NUM + CAT])
        report = gates.evaluate(deployed.OnnxModel(exported.onnx), test[NUM + CAT], test.defaulted, test.gender, None,
                                exported.parity.max_abs_diff, ws.settings)
        registry.log_candidate(ws, run.run_id, exported, report)
    mv = registry.register(ws, run.run_id, 'credit-default', actor='ci-pipeline')
    approve(ws, mv.ref, 'bea'); registry.promote(ws, mv.ref, 'bea')
    return ws, test


@pytest.fixture(scope='module')
def wb(home):
    "Run the installed `workbench` command against the workspace; returns the CompletedProcess."
    ws, _ = home
    env = clean_env(WORKBENCH_HOME=str(ws.root), WORKBENCH_ACTOR='tester')
    def run(*args, cwd=None):
        return subprocess.run([str(BIN/'workbench'), *map(str, args)], cwd=cwd or ws.root.parent, env=env, capture_output=True, text=True, timeout=120)
    return run


@pytest.fixture(scope='module')
def bundle(home, wb):
    "The champion's bundle, exported through the CLI, and the command's output."
    ws, _ = home
    folder = ws.root.parent/'out'/'bundle'
    r = wb('serve', '--export-bundle', folder, 'credit-default@champion')
    assert r.returncode == 0, r.stderr
    return folder, r.stdout


@pytest.fixture(scope='module')
def venv(bundle, tmp_path_factory):
    "A fresh virtual environment (no workbench, no system packages) with only the bundle's requirements installed; returns its python."
    folder, _ = bundle
    root = tmp_path_factory.mktemp('venv')/'.venv'
    subprocess.run([sys.executable, '-m', 'venv', str(root)], check=True, timeout=120)
    python = root/'bin'/'python'
    r = subprocess.run([str(python), '-m', 'pip', 'install', '-q', '-r', str(folder/'requirements.txt')], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    probe = "import importlib.util as u; print([m for m in ('workbench', 'mlflow', 'sklearn', 'duckdb', 'mangum', 'onnxruntime') if u.find_spec(m)])"
    found = subprocess.run([str(python), '-c', probe], capture_output=True, text=True, check=True, cwd=root.parent, env=clean_env()).stdout.strip()
    assert found == "['mangum', 'onnxruntime']", found
    return python


def bare_env(**extra) -> dict:
    "The environment without any workbench setting or virtual environment of the developer's."
    drop = ('WORKBENCH_', 'VIRTUAL_ENV', 'PYTHONPATH', 'PYTHONHOME')
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)} | extra


def rows(home, n=8) -> pd.DataFrame:
    "Held-out applications, some with missing values, in the model's columns."
    _, test = home
    missing = test[test[NUM].isna().any(axis=1)].head(3)
    return pd.concat([missing, test.head(n - len(missing))])[NUM + CAT]


def test_bundle_contents(home, bundle):
    ws, _ = home
    folder, out = bundle
    assert out.strip() == (f"Bundled credit-default/1 (credit-default@champion) into {folder}: `python app.py` serves it, "
                           f"`docker build -t credit-default:1 {folder}` builds an image, app.handler is its AWS Lambda handler")
    assert sorted(p.name for p in folder.iterdir()) == ['Dockerfile', 'README.md', 'app.py', 'model.json', 'model.onnx',
                                                        'requirements.txt', 'settings.ini', 'workbench']
    assert sorted(p.name for p in (folder/'workbench').iterdir()) == ['__init__.py', 'canary.py', 'config.py', 'deployed.py', 'errors.py', 'protocols.py',
                                                                  'releases.py', 'server.py', 'serving.py']
    assert (folder/'workbench'/'serving.py').read_text() == (Path(workbench.__file__).parent/'serving.py').read_text()
    assert (folder/'model.onnx').read_bytes() == registry.load_onnx(ws, 'credit-default@champion')[0]
    about = json.loads((folder/'model.json').read_text())
    mv = registry.get(ws, 'credit-default/1')
    assert {k: about[k] for k in ('name', 'version', 'ref', 'exported_as', 'run_id', 'dataset', 'gates_passed', 'workbench_version')} == dict(
        name='credit-default', version=1, ref='credit-default/1', exported_as='credit-default@champion', run_id=mv.run_id, dataset=mv.dataset,
        gates_passed=True, workbench_version=workbench.__version__)
    assert [s['name'] for s in about['signature']] == NUM + CAT and about['signature'][0] == {'name': 'income', 'type': 'double', 'nullable': True}
    from importlib.metadata import version
    reqs = (folder/'requirements.txt').read_text().splitlines()
    assert [r.split('==')[0] for r in reqs] == ['numpy', 'pandas', 'fastcore', 'onnxruntime', 'orjson', 'starlette', 'prometheus-client',
                                                'uvicorn', 'uvloop', 'httptools', 'mangum']
    assert f"onnxruntime=={version('onnxruntime')}" in reqs and f"mangum=={version('mangum')}" in reqs
    docker = (folder/'Dockerfile').read_text()
    assert 'ARG BASE=python:3.11-slim\n' in docker and 'HOST=0.0.0.0' in docker and 'EXPOSE 8080' in docker and docker.endswith('CMD ["python", "app.py"]\n')
    assert 'app.handler' in (folder/'README.md').read_text() and 'FROM runtime AS lambda\nENTRYPOINT ["python", "-m", "awslambdaric"]\nCMD ["app.handler"]' in docker
    assert '--no-index' not in docker and not (folder/'wheels').exists()  # wheels only with --wheelhouse (tests/test_image.py)


def call(url:str, body:dict|None=None) -> tuple:
    "(status, JSON answer, headers) of a GET, or of a POST of `body` as JSON."
    req = urllib.request.Request(url, json.dumps(body).encode() if body is not None else None, {'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(req, timeout=10) as r: return r.status, json.loads(r.read()), r.headers
    except urllib.error.HTTPError as e: return e.code, json.loads(e.read()), e.headers


def files(folder:Path) -> set:
    return {str(p.relative_to(folder)) for p in folder.rglob('*') if '__pycache__' not in p.parts}


def test_serves_from_a_fresh_venv_without_workspace(home, bundle, venv, tmp_path):
    ws, _ = home
    folder = shutil.copytree(bundle[0], tmp_path/'elsewhere'/'credit-default-1')  # the bundle travels alone
    before, port = files(folder), free_port()
    proc = subprocess.Popen([str(venv), 'app.py'], cwd=folder, env=bare_env(PORT=str(port)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url, deadline = f'http://127.0.0.1:{port}', time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"app.py exited with {proc.returncode}:\n{proc.stderr.read()}"
            try:
                if call(url + '/ping')[0] == 200: break
            except OSError: pass
            assert time.monotonic() < deadline, 'the bundle did not start serving within 60 s'
            time.sleep(0.2)
        df = rows(home)
        model = deployed.OnnxModel((folder/'model.onnx').read_bytes())
        split = {'dataframe_split': json.loads(df.to_json(orient='split', index=False))}
        status, answer, headers = call(url + '/invocations', split)
        assert status == 200 and headers['x-model-version'] == 'credit-default/1'
        assert answer['predictions'] == model.predict(df).tolist()
        status, answer, _ = call(url + '/invocations', split | {'params': {'predict_method': 'predict_proba'}})
        np.testing.assert_allclose(answer['predictions'], model.predict_proba(df), rtol=0, atol=1e-12)

        values = lambda c: [None if pd.isna(v) else (v if isinstance(v, str) else float(v)) for v in df[c]]
        v2 = {'inputs': [{'name': c, 'shape': [len(df), 1], 'datatype': 'BYTES' if c in CAT else 'FP64', 'data': values(c)} for c in NUM + CAT]}
        status, answer, _ = call(url + '/v2/models/credit-default/infer', v2)
        assert status == 200 and (answer['model_name'], answer['model_version']) == ('credit-default', '1')
        out = {o['name']: o for o in answer['outputs']}
        assert out['label']['data'] == model.predict(df).tolist() and out['probabilities']['shape'] == [len(df), 2]
        np.testing.assert_allclose(np.reshape(out['probabilities']['data'], (len(df), 2)), model.predict_proba(df), rtol=0, atol=1e-12)

        status, answer, _ = call(url + '/invocations', {'dataframe_records': [{'income': 1.0}]})
        assert status == 400 and answer['message'].startswith('missing columns credit_score, debt_to_income')
        example = re.search(r"-d '(.+)'", (folder/'README.md').read_text())[1]  # the README's curl example works as written
        assert call(url + '/invocations', json.loads(example))[0] == 200
        assert call(url + '/v2')[1]['version'] == workbench.__version__  # the vendored workbench answers
        status = call(url + '/status')[1]
        assert status['champion']['requests'] == 4 and status['challenger'] is None and 'log' not in status  # no prediction log
        assert 'workbench_model_rows_total{model="credit-default",variant="champion",version="1"} 25.0' in urllib.request.urlopen(url + '/metrics').read().decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM and 'Traceback' not in err, err  # uvicorn shuts down, then re-raises the signal
    assert out.startswith(f'Serving credit-default/1 on http://127.0.0.1:{port}')
    assert files(folder) == before  # no workspace, log or settings file was created


LAMBDA = """import importlib.util, json, sys
spec = importlib.util.spec_from_file_location('app', sys.argv[1]); app = importlib.util.module_from_spec(spec); spec.loader.exec_module(app)
print(json.dumps([app.handler(e, None) for e in json.load(sys.stdin)]))"""


def rest_event(method:str, path:str, body:str|None) -> dict:
    "An API Gateway REST API (proxy integration, payload 1.0) event."
    headers = {'Content-Type': 'application/json', 'Host': 'abc123.execute-api.eu-west-1.amazonaws.com', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Port': '443'}
    return {'resource': '/{proxy+}', 'path': path, 'httpMethod': method, 'headers': headers, 'multiValueHeaders': {k: [v] for k, v in headers.items()},
            'queryStringParameters': None, 'multiValueQueryStringParameters': None, 'pathParameters': {'proxy': path.lstrip('/')}, 'stageVariables': None,
            'requestContext': {'resourcePath': '/{proxy+}', 'httpMethod': method, 'path': f'/prod{path}', 'stage': 'prod', 'requestId': 'c6af9ac6-7b61-11e6-9a41-93e8deadbeef',
                               'identity': {'sourceIp': '203.0.113.9', 'userAgent': 'curl/8'}, 'accountId': '123456789012', 'apiId': 'abc123'},
            'body': body, 'isBase64Encoded': False}


def http_api_event(method:str, path:str, body:str|None) -> dict:
    "An API Gateway HTTP API (payload 2.0) event."
    return {'version': '2.0', 'routeKey': '$default', 'rawPath': path, 'rawQueryString': '', 'cookies': [],
            'headers': {'content-type': 'application/json', 'host': 'abc123.execute-api.eu-west-1.amazonaws.com', 'x-forwarded-proto': 'https'},
            'requestContext': {'accountId': '123456789012', 'apiId': 'abc123', 'domainName': 'abc123.execute-api.eu-west-1.amazonaws.com', 'stage': '$default',
                               'requestId': 'JKJaXmPLvHcESHA=', 'routeKey': '$default', 'timeEpoch': 1700000000000,
                               'http': {'method': method, 'path': path, 'protocol': 'HTTP/1.1', 'sourceIp': '203.0.113.9', 'userAgent': 'curl/8'}},
            'body': body, 'isBase64Encoded': False}


def test_lambda_handler(home, bundle, venv, tmp_path):
    folder, _ = bundle
    df = rows(home, 5)
    model = deployed.OnnxModel((folder/'model.onnx').read_bytes())
    split = json.dumps({'dataframe_split': json.loads(df.to_json(orient='split', index=False))})
    records = json.dumps({'dataframe_records': json.loads(df.to_json(orient='records'))})
    events = [rest_event('POST', '/invocations', split), http_api_event('POST', '/invocations', records),
              http_api_event('POST', '/invocations', json.dumps({'dataframe_records': [json.loads(df.head(1).to_json(orient='records'))[0] | {'income': 'lots'}]})),
              rest_event('GET', '/v2/models/credit-default', None)]
    r = subprocess.run([str(venv), '-c', LAMBDA, str(folder/'app.py')], input=json.dumps(events), capture_output=True, text=True,
                       cwd=tmp_path, env=bare_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    rest, http, bad, meta = json.loads(r.stdout.splitlines()[-1])
    expected = model.predict(df).tolist()
    for answer in (rest, http):
        assert answer['statusCode'] == 200 and not answer['isBase64Encoded'], answer
        assert json.loads(answer['body']) == {'predictions': expected} and answer['headers']['x-model-version'] == 'credit-default/1'
    assert bad['statusCode'] == 400 and json.loads(bad['body']) == {'error_code': 'BAD_REQUEST', 'message': "column 'income' must hold numbers, got str values such as 'lots'"}
    assert meta['statusCode'] == 200 and [i['name'] for i in json.loads(meta['body'])['inputs']] == NUM + CAT


def test_export_into_a_folder_that_is_not_empty(wb, home, tmp_path):
    folder = tmp_path/'taken'
    folder.mkdir(); (folder/'notes.txt').write_text('mine')
    r = wb('serve', '--export-bundle', folder, 'credit-default@champion')
    assert r.returncode == 1 and r.stderr.strip() == f"Error: {folder} is not empty; give a new or empty folder for the bundle"
    assert [p.name for p in tmp_path.iterdir()] == ['taken'] and [p.name for p in folder.iterdir()] == ['notes.txt']
    r = wb('serve', '--export-bundle', folder/'notes.txt', 'credit-default@champion')
    assert r.returncode != 0 and 'notes.txt' in r.stderr and (folder/'notes.txt').read_text() == 'mine'


@pytest.mark.parametrize('ref, message', [('nope@champion', "no registered model named 'nope'"),
                                          ('credit-default/9', 'model credit-default has no version 9 (versions: 1)'),
                                          ('credit-default@challenger', 'model credit-default has no challenger alias yet'),
                                          ('Credit Default', "'Credit Default' is not a model reference")])
def test_export_of_an_unknown_model(wb, home, tmp_path, ref, message):
    r = wb('serve', '--export-bundle', tmp_path/'bundle', ref)
    assert r.returncode == 1 and r.stderr.startswith('Error: ') and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a temporary one


def test_export_takes_one_version(wb, home, tmp_path):
    r = wb('serve', '--export-bundle', tmp_path/'bundle', 'credit-default@champion', '--canary', 'credit-default@challenger:10')
    assert r.returncode == 1 and '--export-bundle takes one model version; drop --canary and --shadow' in r.stderr
    assert list(tmp_path.iterdir()) == []
