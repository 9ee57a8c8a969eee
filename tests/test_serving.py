"""Issue 5: `workbench serve` as its users meet it, over HTTP, in a process of its own; in a folder and on a team's services.

One demo workspace (made once with `workbench demo`, which leaves a champion of `credit-default`) serves every test; each test starts
its own server on a free port and gives its requests ids with a prefix of its own, so the prediction log can be
checked per test. The test that promotes a second version comes last: it changes the champion.

The tests that read or write the workspace (the registry, the prediction log) run twice: on a copy of the demo's folder,
and on the demo run on a team's services (the workspace on SeaweedFS, MLflow a server on PostgreSQL, issue 20). The
tests of the HTTP surface alone (parsing, limits, fuzzing, metrics) run on the folder."""
import contextlib, json, math, random, re, shutil, signal, socket, subprocess, sys, time
from dataclasses import dataclass, field
from pathlib import Path
import httpx, numpy as np, pandas as pd, pytest
from conftest import approve, clean_env, free_port

BIN, HERE = Path(sys.executable).parent, Path(__file__).resolve().parent
MODEL = 'credit-default'
TOKEN = 'test-admin-token-7f3a'
DEMO = ['demo', '--months', '6', '--rows-per-month', '1000', '--drift-month', '5']  # as the `demo_run` fixture
folder_only = pytest.mark.parametrize('home', ['folder'], indirect=True)  # the HTTP surface: the same whatever the workspace
team_only = pytest.mark.parametrize('home', ['team'], indirect=True)


# ---------------------------------------------------------------- the workspace, and servers on it

@dataclass
class Home:
    "Where a module's servers run: a folder for their files and logs, the workspace they serve (a folder or an `s3://` URL), the environment that reaches it."
    root: Path; workspace: str; env: dict = field(default_factory=dict)
    def __truediv__(self, name): return self.root/name


@pytest.fixture(scope='module', params=['folder', 'team'])
def home(request, demo_run, tmp_path_factory):
    "A copy of the demo's workspace in a folder (its MLflow artifacts stay where the demo wrote them), or the demo run on a team's services."
    root = tmp_path_factory.mktemp(f'serving-{request.param}')
    if request.param == 'folder':
        shutil.copytree(demo_run.ws, root/'ws')
        yield Home(root, str(root/'ws'))
        return
    store, server = request.getfixturevalue('seaweedfs'), request.getfixturevalue('mlflow_server')
    env = {k: v for k, v in store.items() if k.startswith('AWS_')} | dict(
        WORKBENCH_WORKSPACE_TRACKING_URI=server.url, XDG_STATE_HOME=str(root/'state'), HOME=str(root))
    workspace = f"{store['WORKBENCH_HOME']}/serving"
    r = subprocess.run([str(BIN/'workbench'), *DEMO], env=clean_env(**env, WORKBENCH_HOME=workspace), capture_output=True, text=True,
                       timeout=900, cwd=root)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    with pytest.MonkeyPatch.context() as mp:  # and this process, which reads the workspace to check the servers
        for k, v in env.items(): mp.setenv(k, v)
        yield Home(root, workspace, env)


@pytest.fixture(scope='module')
def ws(home):
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    return open_workspace(home.workspace, load_settings(env=home.env), create=False)


@pytest.fixture(scope='module')
def champion(ws):
    "The champion in process: `(OnnxModel, input names, signature with nullable flags, version)`."
    from workbench import registry
    from workbench.deployed import OnnxModel
    onnx_bytes, mv = registry.load_onnx(ws, f'{MODEL}@champion')
    model = OnnxModel(onnx_bytes)
    names = [s['name'] for s in model.signature]
    return model, names, {s['name']: s for s in json.loads(model.metadata['signature'])}, mv.version


@pytest.fixture(scope='module')
def rows(ws, champion) -> pd.DataFrame:
    "Realistic rows: the latest applications, restricted to the model's inputs (some incomes etc. are missing)."
    from workbench import data
    return data.load(ws, 'applications')[champion[1]].reset_index(drop=True)


def records(df:pd.DataFrame) -> list:
    "Rows as JSON-ready dicts: Python numbers, None where a value is missing."
    return df.astype(object).where(df.notna(), None).to_dict('records')


class Served:
    "One `workbench serve` process on a free port."
    def __init__(self, home:Home, *options, env:dict|None=None):
        self.port, self.home = free_port(), home
        self.url = f'http://127.0.0.1:{self.port}'
        self.err_path = home/f'serve-{self.port}.err'
        cmd = [str(BIN/'workbench'), '--workspace', home.workspace, *options, 'serve', f'{MODEL}@champion', '--port', str(self.port)]
        self.cmd, self.killed, self.stopped = cmd, False, False
        with open(self.err_path, 'w') as err:
            self.proc = subprocess.Popen(cmd, cwd=home.root, env=clean_env(**home.env, **(env or {})), stdout=subprocess.DEVNULL, stderr=err)

    @property
    def stderr(self) -> str: return self.err_path.read_text(errors='replace')

    def wait_ready(self, timeout=90):
        t = time.monotonic()
        while time.monotonic() - t < timeout:
            if self.proc.poll() is not None: pytest.fail(f'the server exited with {self.proc.returncode} while starting:\n{self.stderr[-4000:]}')
            try:
                if httpx.get(self.url + '/health', timeout=2).status_code == 200: return self
            except httpx.TransportError: pass
            time.sleep(0.1)
        pytest.fail(f'the server did not answer /health within {timeout} s:\n{self.stderr[-4000:]}')

    def alive(self):
        "Fail the test if the server died."
        if self.proc.poll() is not None and not self.killed and not self.stopped:
            pytest.fail(f'the server died (exit code {self.proc.returncode}):\n{self.stderr[-4000:]}')

    def stop(self, timeout=60) -> int:
        "SIGTERM, and wait for the server to flush its log and exit; returns its exit code."
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try: self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill(); self.proc.wait()
                pytest.fail(f'the server did not exit within {timeout} s of SIGTERM:\n{self.stderr[-4000:]}')
        return self.proc.returncode

    def kill(self):
        self.killed = True
        self.proc.send_signal(signal.SIGKILL); self.proc.wait(30)


# uvicorn handles SIGTERM (finishes the requests in flight, runs the app's shutdown: the log's last flush), then
# re-raises the signal so that the parent sees how it ended: -SIGTERM is a clean exit, as 0 is.
CLEAN_EXIT = (0, -signal.SIGTERM)


@contextlib.contextmanager
def serving(home, *options, env=None, check=True):
    "A running server: yields it, SIGTERMs it after; fails the test if it died, exited badly or printed a traceback."
    s = Served(home, *options, env=env)
    try:
        yield s.wait_ready()
        s.alive()
    finally:
        code = s.stop()
    if check and not s.killed:
        assert code in CLEAN_EXIT, f'the server exited with {code} after SIGTERM:\n{s.stderr[-4000:]}'
    if check: assert 'Traceback' not in s.stderr, f'the server printed a traceback (an internal error):\n{s.stderr[-6000:]}'


def logged(ws, prefix:str) -> pd.DataFrame:
    "The prediction log's rows of the requests whose id starts with `prefix`."
    return ws.sql("select request_id, row, version, variant, prediction, score from predictions where starts_with(request_id, $p)",
                  params={'p': prefix}).df()


def invoke(client, body, rid=None, content_type='application/json', **kw):
    headers = {'Content-Type': content_type} | ({'X-Request-ID': rid} if rid else {})
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post('/invocations', content=content, headers=headers, **kw)


# ---------------------------------------------------------------- 0. the demo leaves the same state on a team's services as in a folder

def cli(env, *args) -> str:
    r = subprocess.run([str(BIN/'workbench'), *args], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


def sql(env, query) -> list: return json.loads(cli(env, 'sql', '--format', 'json', query))


ACTIONS = ('dataset.commit', 'model.register', 'model.approve', 'model.promote', 'pipeline.run')

def state(env) -> dict:
    "What the demo left, as read by `env`'s machine through the CLI."
    assert 'intact' in cli(env, 'audit', 'verify')
    return dict(
        datasets=sql(env, "select name, count(*) as versions from datasets group by name order by name"),
        events=sql(env, "select action, count(*) as n from audit where action in "
                        f"({', '.join(repr(a) for a in ACTIONS)}) group by action order by action"),
        champion=json.loads(sql(env, "select after from audit where action = 'model.promote' order by seq desc limit 1")
                            [0]['after'])['champion'],
        served=sql(env, "select distinct variant from predictions order by variant"),  # how much: until the canary decides
        drifted=sql(env, 'select distinct "window", feature from drift where drifted order by "window", feature'),
        pipelines=sql(env, "select pipeline, status, notebook from pipeline_runs order by started"))


@team_only
def test_the_demo_leaves_the_same_state_on_a_team_s_services(home, demo_run, tmp_path):
    folder = state(clean_env(WORKBENCH_HOME=str(demo_run.ws)))
    team = state(clean_env(**home.env | dict(WORKBENCH_HOME=home.workspace, XDG_STATE_HOME=str(tmp_path/'state'), HOME=str(tmp_path))))  # another machine
    assert team['drifted'], "the demo shifts month 5: some feature must drift"
    assert team['champion'] >= 1 and team['served']
    assert all(p['notebook'].startswith('s3://') for p in team['pipelines']), team['pipelines']
    for k in ('datasets', 'events', 'champion', 'served', 'drifted'): assert team[k] == folder[k], k
    assert [(p['pipeline'], p['status']) for p in team['pipelines']] == \
           [(p['pipeline'], p['status']) for p in folder['pipelines']]


# ---------------------------------------------------------------- 1. every protocol gives the in-process answer

def test_protocols_give_the_in_process_answer(home, champion, rows):
    from mlflow.models import convert_input_example_to_serving_input  # MLflow's own payload builder
    import tritonclient.http as triton
    model, names, _, version = champion
    batch = rows.tail(50).reset_index(drop=True)
    assert batch.isna().any(axis=None), 'the batch should hold missing values, as real applications do'
    want, proba = model.predict(batch), model.predict_proba(batch)
    recs = records(batch)
    shuffled = random.Random(0).sample(names, len(names))
    bodies = {'dataframe_split (mlflow helper)': json.loads(convert_input_example_to_serving_input(batch)),
              'dataframe_split (columns reordered)': {'dataframe_split': {'columns': shuffled, 'data': [[r[c] for c in shuffled] for r in recs]}},
              'dataframe_records': {'dataframe_records': recs},
              'instances': {'instances': recs},
              'inputs': {'inputs': {c: [r[c] for r in recs] for c in names}},
              'inputs ([n, 1] tensors, as for the ONNX flavor of MLflow)': {'inputs': {c: [[r[c]] for r in recs] for c in names}}}
    generated = set()
    with serving(home) as s, httpx.Client(base_url=s.url, timeout=30) as c:
        for k, (fmt, body) in enumerate(bodies.items()):
            r = invoke(c, body, rid=f'proto-{k}')
            assert r.status_code == 200, (fmt, r.text)
            assert np.array_equal(np.array(r.json()['predictions']), want), fmt
            assert (r.headers['x-request-id'], r.headers['x-model-version'], r.headers['x-variant']) == (f'proto-{k}', f'{MODEL}/{version}', 'champion')
            r = invoke(c, body | {'params': {'predict_method': 'predict_proba'}})
            assert r.status_code == 200, (fmt, r.text)
            got = np.array(r.json()['predictions'])
            assert got.shape == proba.shape and np.abs(got - proba).max() < 1e-6, fmt
            generated.add(r.headers['x-request-id'])  # made up by the server when the client sends none
        assert len(generated) == len(bodies) and all(generated)

        # the Open Inference Protocol, through a real KServe v2 client
        kserve = triton.InferenceServerClient(url=s.url.removeprefix('http://'))
        assert kserve.is_server_live() and kserve.is_server_ready() and kserve.is_model_ready(MODEL)
        meta = kserve.get_model_metadata(MODEL)
        assert meta['name'] == MODEL and meta['versions'] == [str(version)]
        assert [(i['name'], i['datatype']) for i in meta['inputs']] == [(s['name'], 'BYTES' if s['type'] == 'string' else 'FP64') for s in model.signature]
        assert [o['name'] for o in meta['outputs']] == ['label', 'probabilities']
        inputs = []
        for spec in model.signature:
            text = spec['type'] == 'string'
            t = triton.InferInput(spec['name'], [len(batch), 1], 'BYTES' if text else 'FP64')
            t.set_data_from_numpy(batch[spec['name']].to_numpy(dtype=object if text else np.float64).reshape(-1, 1), binary_data=False)
            inputs.append(t)
        res = kserve.infer(MODEL, inputs, request_id='proto-kserve',
                           outputs=[triton.InferRequestedOutput('label', binary_data=False), triton.InferRequestedOutput('probabilities', binary_data=False)])
        assert res.get_response()['id'] == 'proto-kserve' and res.get_response()['model_version'] == str(version)
        assert np.array_equal(res.as_numpy('label'), want.ravel())
        assert np.abs(res.as_numpy('probabilities') - proba).max() < 1e-6
        res = kserve.infer(MODEL, inputs, model_version=str(version), outputs=[triton.InferRequestedOutput('probabilities', binary_data=False)])
        assert res.as_numpy('label') is None and np.abs(res.as_numpy('probabilities') - proba).max() < 1e-6
        kserve.close()


# ---------------------------------------------------------------- 1b. issue 22: a reason for each decision, on request

@folder_only
def test_explanations_on_request_add_up_and_are_logged(home, ws, champion, rows):
    "`params.explain` on /invocations and the `contributions` output of v2: exact, from the ONNX model, in the prediction log too."
    from workbench import registry
    model, names, sig, version = champion
    ex, _ = registry.load_explainer(ws, f'{MODEL}@champion')
    batch = rows.tail(20).reset_index(drop=True)
    p = model.predict_proba(batch)[:, 1]
    target = np.log(p / (1 - p)) if ex['space'] == 'log-odds' else p
    with serving(home) as s, httpx.Client(base_url=s.url, timeout=30) as c:
        r = invoke(c, {'dataframe_records': records(batch), 'params': {'explain': 2}}, rid='why-1')
        assert r.status_code == 200, r.text
        a = r.json()
        total = [a['base_value'] + sum(row.values()) for row in a['contributions']]
        assert np.abs(np.array(total) - target).max() < 1e-6 and set(a['contributions'][0]) == set(ex['features'])
        assert all(len(w) <= 2 and all(x['contribution'] > 0 for x in w) for w in a['reasons'])
        worst = int(np.argmax(p))
        assert a['reasons'][worst][0]['feature'] == max(a['contributions'][worst], key=a['contributions'][worst].get)
        plain = invoke(c, {'dataframe_records': records(batch)}).json()
        assert plain == {'predictions': a['predictions']}  # nothing changes for a client that does not ask
        full = rows.dropna().tail(10)  # v2's JSON tensors carry no missing values
        q = model.predict_proba(full)[:, 1]
        tensors = [{'name': k, 'shape': [len(full), 1], 'datatype': 'BYTES' if sig[k]['type'] == 'string' else 'FP64',
                    'data': full[k].tolist()} for k in names]
        r = c.post(f'/v2/models/{MODEL}/infer', json={'id': 'why-v2', 'inputs': tensors, 'outputs': [{'name': 'label'}, {'name': 'contributions'}]})
        assert r.status_code == 200, r.text
        out = {o['name']: o for o in r.json()['outputs']}
        assert out['contributions']['shape'] == [len(full), len(ex['features'])]
        got = np.array(out['contributions']['data']).reshape(len(full), -1).sum(1) + ex['base_value']
        assert np.abs(got - (np.log(q / (1 - q)) if ex['space'] == 'log-odds' else q)).max() < 1e-6
        for bad in (0, 'yes', 101, -1):
            check_refused(invoke(c, {'dataframe_records': records(batch.head(1)), 'params': {'explain': bad}}), 400, 'params.explain')
    log = ws.sql("select row, outputs from predictions where request_id = 'why-1' order by row").df()
    logged = np.array([json.loads(o)['contributions'] for o in log.outputs])
    assert len(log) == len(batch) and np.abs(logged.sum(1) + ex['base_value'] - target).max() < 1e-6


# ---------------------------------------------------------------- 2. bad input: a 4xx that names the problem, never a 5xx

def check_refused(r, status:int, *words):
    "`r` is refused with `status` and a JSON message holding each of `words`."
    assert r.status_code == status, (r.status_code, r.text, words)
    body = r.json()
    message = body.get('message', body.get('error'))
    assert message and all(w in message for w in words), (message, words)
    return message


@folder_only
def test_bad_input_gets_a_4xx_naming_the_problem(home, ws, champion, rows):
    model, names, sig, version = champion
    forbidden = [n for n in names if sig[n]['type'] == 'double' and not sig[n].get('nullable', True)]
    nullable = [n for n in names if sig[n]['type'] == 'double' and sig[n].get('nullable', True)]
    text_forbidden = [n for n in names if sig[n]['type'] == 'string' and not sig[n].get('nullable', True)]
    assert nullable, 'income and credit_score have missing values in the training data: they should be nullable'
    row = records(rows.dropna().head(1))[0]
    rec = lambda **kw: {'dataframe_records': [row | kw]}
    text_col, num_col = next(n for n in names if sig[n]['type'] == 'string'), next(n for n in names if sig[n]['type'] == 'double')
    with serving(home, '--set', 'serving.max_rows=100') as s, httpx.Client(base_url=s.url, timeout=30) as c:
        cases = [
            ('malformed JSON', b'{"dataframe_split": {"columns": [', 400, ['not valid JSON']),
            ('not an object', [1, 2, 3], 400, ['JSON object']),
            ('no known format', {'data': [row]}, 400, ['dataframe_split', 'dataframe_records', 'instances', 'inputs']),
            ('two formats', {'instances': [row], 'inputs': {k: [v] for k, v in row.items()}}, 400, ['exactly one of']),
            ('missing column', {'dataframe_records': [{k: v for k, v in row.items() if k != 'credit_score'}]}, 400, ['missing column credit_score']),
            ('extra column', rec(favourite_colour='teal'), 400, ['unknown column favourite_colour']),
            ('text in a number column', rec(**{num_col: 'lots'}), 400, [f'column {num_col!r} must hold numbers', "'lots'"]),
            ('number in a text column', rec(**{text_col: 7}), 400, [f'column {text_col!r} must hold text', '7']),
            ('bool in a number column', rec(**{num_col: True}), 400, [f'column {num_col!r} must hold numbers']),
            ('Infinity', json.dumps(rec(**{nullable[0]: math.inf})), 400, [f'column {nullable[0]!r} has an infinite value']),
            ('-Infinity', json.dumps(rec(**{forbidden[0] if forbidden else num_col: -math.inf})), 400, ['has an infinite value']),
            ('too large a number', json.dumps(rec(**{num_col: 0})).replace(f'"{num_col}": 0', f'"{num_col}": 1{"0" * 400}'), 400, [f'column {num_col!r}', 'too large']),
            ('ragged dataframe_split', {'dataframe_split': {'columns': names, 'data': [list(row.values())[:-1]]}}, 400, ['row 0', 'values but there are']),
            ('ragged records', {'dataframe_records': [row, {k: v for k, v in row.items() if k != 'age'}]}, 400, ['row 1', 'other columns']),
            ('no rows', {'dataframe_records': []}, 400, ['no rows']),
            ('unknown predict_method', {'instances': [row], 'params': {'predict_method': 'explain'}}, 400, ['predict_method', "'explain'"]),
            ('101 rows', {'dataframe_records': [row] * 101}, 413, ['101 rows', 'serving.max_rows', '100']),
        ]
        for col in forbidden[:3]:  # NaN and null where the signature forbids them
            cases += [(f'null in {col}', rec(**{col: None}), 400, [f'column {col!r} has a missing value', 'forbids']),
                      (f'NaN in {col}', json.dumps(rec(**{col: math.nan})), 400, [f'column {col!r} has a missing value', 'forbids'])]
        for col in text_forbidden[:2]:
            cases.append((f'null in {col}', rec(**{col: None}), 400, [f'column {col!r} has a missing value']))
        for i, (what, body, status, words) in enumerate(cases):
            r = invoke(c, body, rid=f'bad-{i}')
            check_refused(r, status, *words)
            assert r.json()['error_code'] == 'BAD_REQUEST', what
        # what the signature allows is accepted, and scored as in process
        for i, col in enumerate(nullable):
            for j, body in enumerate([rec(**{col: None}), json.dumps(rec(**{col: math.nan}))]):
                r = invoke(c, body, rid=f'bad-ok-{i}-{j}')
                assert r.status_code == 200, (col, r.text)
                assert r.json()['predictions'] == model.predict(pd.DataFrame([row | {col: None}])[names].astype({col: float})).tolist()
        r = invoke(c, {'dataframe_records': [row] * 100}, rid='bad-ok-100rows')
        assert r.status_code == 200 and len(r.json()['predictions']) == 100

        check_refused(invoke(c, 'age,income\n1,2\n', content_type='text/plain'), 415, 'Content-Type text/plain is not supported')
        check_refused(invoke(c, b'<rows/>', content_type='application/xml'), 415, 'application/xml')
        check_refused(invoke(c, {'instances': [row]}, rid='x' * 129), 400, 'X-Request-ID')

        # the Open Inference Protocol
        v2 = lambda inputs, name=MODEL, **kw: c.post(f'/v2/models/{name}/infer', json={'inputs': inputs, **kw})
        tensors = [{'name': k, 'shape': [1, 1], 'datatype': 'BYTES' if sig[k]['type'] == 'string' else 'FP64', 'data': [v]} for k, v in row.items()]
        assert v2(tensors).status_code == 200
        check_refused(v2(tensors, name='nope'), 404, "unknown model 'nope'", MODEL)
        check_refused(c.get('/v2/models/nope'), 404, "unknown model 'nope'")
        check_refused(c.get('/v2/models/nope/ready'), 404, "unknown model 'nope'")
        check_refused(v2(tensors, name=f'{MODEL}/versions/7'), 404, 'no version', '7')
        check_refused(v2(tensors[1:]), 400, f'missing column {names[0]}')
        check_refused(v2(tensors + [{'name': 'zip', 'shape': [1], 'datatype': 'FP64', 'data': [1]}]), 400, "unknown input 'zip'")
        t = next(t for t in tensors if t['datatype'] == 'BYTES')
        check_refused(v2([x if x is not t else t | {'datatype': 'FP64'} for x in tensors]), 400, f"input {t['name']!r}", 'datatype must be BYTES')
        check_refused(v2([x if x is not t else t | {'shape': [2, 1]} for x in tensors]), 400, f"input {t['name']!r}", 'needs 2 values')
        check_refused(v2([x if x is not t else t | {'data': [3.5]} for x in tensors]), 400, f"column {t['name']!r} must hold text")
        check_refused(v2(tensors, outputs=[{'name': 'shap'}]), 400, "unknown output 'shap'")
        check_refused(c.post(f'/v2/models/{MODEL}/infer', content=b'{"inputs": [', headers={'Content-Type': 'application/json'}), 400, 'not valid JSON')
        check_refused(c.post(f'/v2/models/{MODEL}/infer', content=b'{}', headers={'Content-Type': 'application/json'}), 400, "'inputs'")

        # admin endpoints without WORKBENCH_ADMIN_TOKEN on the server
        for action in ('canary', 'promote', 'rollback', 'reload'):
            check_refused(c.post(f'/admin/{action}', json={'share': 0.5}, headers={'Authorization': f'Bearer {TOKEN}'}), 403, 'WORKBENCH_ADMIN_TOKEN')
        metrics = c.get('/metrics').text
        assert 'status="5' not in metrics, 'a 5xx was counted'
    log = logged(ws, 'bad-')
    assert set(log.request_id) == {f'bad-ok-{i}-{j}' for i in range(len(nullable)) for j in range(2)} | {'bad-ok-100rows'}, 'a refused request was logged'

    # a server with the admin token and a small body limit
    with serving(home, '--set', 'serving.max_body_mb=0.01', env={'WORKBENCH_ADMIN_TOKEN': TOKEN}) as s, httpx.Client(base_url=s.url, timeout=30) as c:
        limit = int(0.01 * 2**20)
        big = {'dataframe_records': [row] * 60}
        assert len(json.dumps(big)) > limit
        check_refused(invoke(c, big), 413, 'serving.max_body_mb', str(limit))
        chunks = lambda: (json.dumps(big)[i:i + 1000].encode() for i in range(0, len(json.dumps(big)), 1000))  # no Content-Length
        check_refused(c.post('/invocations', content=chunks(), headers={'Content-Type': 'application/json'}), 413, 'serving.max_body_mb')
        check_refused(c.post(f'/v2/models/{MODEL}/infer', content=b'{"inputs": [' + b' ' * limit + b']}', headers={'Content-Type': 'application/json'}), 413, 'serving.max_body_mb')
        assert invoke(c, {'dataframe_records': [row] * 5}).status_code == 200
        for headers in ({}, {'Authorization': 'Bearer wrong'}, {'Authorization': TOKEN}, {'Authorization': f'Basic {TOKEN}'}):
            check_refused(c.post('/admin/reload', headers=headers), 401, 'Authorization: Bearer')
        r = c.post('/admin/reload', headers={'Authorization': f'Bearer {TOKEN}'})
        assert r.status_code == 200 and r.json()['champion']['version'] == version
        check_refused(c.post('/admin/promote', headers={'Authorization': f'Bearer {TOKEN}'}), 409, 'no challenger')
        check_refused(c.post('/admin/canary', json={'share': 2}, headers={'Authorization': f'Bearer {TOKEN}'}), 400, 'share must be a number from 0 to 1')


# ---------------------------------------------------------------- 3. fuzzing from the OpenAPI document

@folder_only
def test_fuzzing_from_the_openapi_document_finds_no_server_error(home):
    config = home/'schemathesis.toml'
    config.write_text(f'[parameters]\n"path.name" = "{MODEL}"\n')  # reach the model's endpoints, not only their 404s
    with serving(home, env={'WORKBENCH_ADMIN_TOKEN': TOKEN}) as s:
        assert httpx.get(s.url + '/openapi.json').json()['openapi'].startswith('3.')
        cmd = [str(BIN/'schemathesis'), '--config-file', str(config), 'run', s.url + '/openapi.json', '--checks', 'not_a_server_error',
               '--max-examples', '50', '--seed', '20260501', '--generation-database', 'none', '--no-color', '--workers', '2',
               '--request-timeout', '20', '-H', f'Authorization: Bearer {TOKEN}']
        t = time.perf_counter()
        r = subprocess.run(cmd, cwd=home.root, env=clean_env(), capture_output=True, text=True, timeout=240)
        print(f'schemathesis took {time.perf_counter() - t:.0f} s; {next((l.strip() for l in r.stdout.splitlines() if " generated, " in l), "")}')
        assert r.returncode == 0, f'schemathesis found a failure:\n{r.stdout[-8000:]}\n{r.stderr[-2000:]}'
        selected, tested = re.search(r'Selected: \d+/(\d+)', r.stdout), re.search(r'Tested: (\d+)', r.stdout)
        assert selected and tested and tested[1] == selected[1], f'not every operation was tested:\n{r.stdout[-3000:]}'
        generated = int(next(l for l in r.stdout.splitlines() if ' generated, ' in l).split()[0])
        assert generated >= 300, r.stdout[-3000:]
        assert 'status="5' not in httpx.get(s.url + '/metrics').text


# ---------------------------------------------------------------- 6. metrics

def samples(text:str) -> dict:
    "`{(name, frozenset(labels)): value}` of a Prometheus exposition."
    from prometheus_client.parser import text_string_to_metric_families
    return {(x.name, frozenset(x.labels.items())): x.value for f in text_string_to_metric_families(text) for x in f.samples}


@folder_only
def test_metrics_count_requests_rows_latency_and_errors(home, champion, rows):
    recs = records(rows.dropna().head(10))
    by = frozenset({'model': MODEL, 'version': str(champion[3]), 'variant': 'champion'}.items())
    with serving(home) as s, httpx.Client(base_url=s.url, timeout=30) as c:
        sizes = [1, 2, 3, 1, 5, 10, 1]
        for n in sizes: assert invoke(c, {'dataframe_records': recs[:n]}).status_code == 200
        tensors = [{'name': k, 'shape': [2], 'datatype': 'BYTES' if isinstance(v, str) else 'FP64', 'data': [v, v]} for k, v in recs[0].items()]
        for _ in range(2): assert c.post(f'/v2/models/{MODEL}/infer', json={'inputs': tensors}).status_code == 200
        for body in ({'dataframe_records': [recs[0] | {'age': 'old'}]}, b'{', {'dataframe_records': [{'age': 1}]}):
            assert invoke(c, body).status_code == 400
        assert c.post(f'/v2/models/{MODEL}/infer', json={'inputs': []}).status_code == 400
        assert invoke(c, b'x', content_type='text/html').status_code == 415
        requests, scored_rows = len(sizes) + 2, sum(sizes) + 4
        t0 = time.monotonic()
        while (m := samples(c.get('/metrics').text))[('workbench_prediction_log_rows', frozenset())] < scored_rows and time.monotonic() - t0 < 15:
            time.sleep(0.2)  # the prediction log's next flush
        assert m[('workbench_model_requests_total', by)] == requests
        assert m[('workbench_model_rows_total', by)] == scored_rows
        assert m[('workbench_model_errors_total', by)] == 0
        assert m[('workbench_model_latency_seconds_count', by)] == requests
        assert 0 < m[('workbench_model_latency_seconds_sum', by)] < requests * 1.0
        buckets = {dict(k[1])['le']: v for k, v in m.items() if k[0] == 'workbench_model_latency_seconds_bucket' and by <= k[1]}
        assert buckets['+Inf'] == requests and len(buckets) >= 10 and list(buckets.values()) == sorted(buckets.values())
        assert m[('workbench_prediction_score_count', by)] == scored_rows
        http = lambda endpoint, status: m.get(('workbench_http_requests_total', frozenset({'endpoint': endpoint, 'status': status}.items())), 0)
        assert (http('/invocations', '200'), http('/invocations', '400'), http('/invocations', '415')) == (len(sizes), 3, 1)
        assert (http('/v2/models/infer', '200'), http('/v2/models/infer', '400')) == (2, 1)
        assert m[('workbench_in_flight_requests', frozenset())] == 0
        queued = m[('workbench_queue_seconds_total', frozenset())]  # from each request's first byte to its answer
        assert m[('workbench_model_latency_seconds_sum', by)] < queued < (requests + 5) * 1.0
        assert m[('workbench_prediction_log_rows', frozenset())] == scored_rows


# ---------------------------------------------------------------- 4. load, then SIGTERM: every answered row is logged, once

def load(url:str, rows_file:Path, out:Path, *args) -> subprocess.Popen:
    "Start the load generator (tests/serving_load.py) in a process of its own."
    return subprocess.Popen([sys.executable, str(HERE/'serving_load.py'), url, str(rows_file), str(out), *map(str, args)],
                            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(gen:subprocess.Popen, out:Path, timeout=240) -> dict:
    try: stdout, stderr = gen.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        gen.kill(); stdout, stderr = gen.communicate()
        pytest.fail(f'the load generator did not finish in {timeout} s:\n{stderr[-3000:]}')
    assert gen.returncode == 0 and out.exists(), f'the load generator failed:\n{stderr[-3000:]}'
    return json.loads(out.read_text())


@pytest.fixture(scope='module')
def rows_file(home, rows) -> Path:
    p = home/'rows.json'
    p.write_text(json.dumps(records(rows)))
    return p


def test_load_then_sigterm_logs_every_answered_row_once(home, ws, champion, rows_file):
    n, out = 50_000, home/'load.json'
    with serving(home) as s:
        gen = load(s.url, rows_file, out, '--requests', n, '--concurrency', 32, '--prefix', 'load')
        res = finished(gen, out)
        s.alive()
        t = time.perf_counter()
        assert s.stop() in CLEAN_EXIT, s.stderr[-3000:]
        print(f"\nload: {res['sent']} requests at concurrency 32 in {res['elapsed']:.1f} s = {res['rps']:.0f} requests/s; "
              f"statuses {res['statuses']}, connection errors {res['errors']}; the server exited {time.perf_counter() - t:.1f} s after SIGTERM")
    assert res['sent'] == n and res['errors'] == {}, res['errors']
    assert res['statuses'] == {'200': n}, (res['statuses'], res['refused'])
    answered = [rid for rid, _, _ in res['ok']]
    assert len(set(answered)) == n
    log = logged(ws, 'load-')
    assert len(log) == len(set(zip(log.request_id, log.row))), 'a row was logged twice'
    assert (log.row == 0).all() and (log.version == champion[3]).all() and (log.variant == 'champion').all()
    missing, extra = set(answered) - set(log.request_id), set(log.request_id) - set(answered)
    assert not missing and not extra, f'{len(missing)} answered requests are not in the log (e.g. {sorted(missing)[:3]}), {len(extra)} logged were not answered 200'
    assert log.prediction.isin(['0', '1']).all() and log.score.between(0, 1).all()


# ---------------------------------------------------------------- 5. SIGKILL under load: the log stays readable and loses at most the last flush

def test_sigkill_under_load_loses_at_most_the_last_flush(home, ws, rows_file):
    import pyarrow.parquet as pq
    flush = ws.settings['serving.flush_seconds']
    out = home/'kill.json'
    s = Served(home)
    try:
        s.wait_ready()
        gen = load(s.url, rows_file, out, '--requests', 10**7, '--concurrency', 32, '--prefix', 'kill', '--stop-on-error')
        t0 = time.monotonic()
        while True:  # a few thousand requests, and a few flushes behind us
            s.alive()
            assert gen.poll() is None, gen.communicate()[1][-3000:]
            done = httpx.get(s.url + '/status', timeout=10).json()['champion']['requests']
            if done >= 4000 and time.monotonic() - t0 >= 3 * flush: break
            assert time.monotonic() - t0 < 60, f'only {done} requests in 60 s'
            time.sleep(0.2)
        t_kill = time.time()
        s.kill()
        res = finished(gen, out, timeout=120)
    finally:
        if s.proc.poll() is None: s.kill()
    assert s.proc.returncode == -signal.SIGKILL
    assert res['statuses'].keys() == {'200'}, (res['statuses'], res['refused'])

    # every file of the table is readable, by DuckDB, delta-rs and pyarrow
    total = ws.sql('select count(*) from predictions').fetchall()[0][0]
    assert ws.delta('predictions').to_pyarrow_table().num_rows == total
    fs, _ = ws.storage()
    for path in ws.data_files('predictions'): pq.read_table(path, filesystem=fs)
    answered = {rid: t for rid, t, _ in res['ok']}
    log = logged(ws, 'kill-')
    assert len(log) == len(set(log.request_id)), 'a request was logged twice'
    assert set(log.request_id) <= set(answered), 'a request that was not answered 200 is in the log'
    old = {rid for rid, t in answered.items() if t < t_kill - 2 * flush}
    lost_old = old - set(log.request_id)
    recent = len(answered) - len(old)
    print(f"\nSIGKILL after {len(answered)} answers: {len(answered) - len(log)} not in the log, "
          f"{recent} were answered in the last {2 * flush:g} s before the kill")
    assert not lost_old, f'{len(lost_old)} requests answered more than {2 * flush:g} s before the kill are not in the log'

    # the table takes new rows after the kill
    with serving(home) as s, httpx.Client(base_url=s.url, timeout=30) as c:
        row = json.loads(Path(home/'rows.json').read_text())[0]
        assert invoke(c, {'dataframe_records': [row]}, rid='after-kill-1').status_code == 200
    assert list(logged(ws, 'after-kill-').request_id) == ['after-kill-1']


# ---------------------------------------------------------------- 7. hot reload under load (changes the champion: keep it last but one)

def test_promotion_is_picked_up_without_failing_a_request(home, ws, champion, rows_file):
    from workbench import registry
    out, stop = home/'reload.json', home/'reload.stop'
    row = json.loads(rows_file.read_text())[0]
    with serving(home) as s, httpx.Client(base_url=s.url, timeout=30) as c:
        gen = load(s.url, rows_file, out, '--requests', 10**7, '--concurrency', 32, '--prefix', 'reload', '--stop-file', stop)
        try:
            t0 = time.monotonic()
            while c.get('/status').json()['champion']['requests'] < 1000:
                assert gen.poll() is None and time.monotonic() - t0 < 60, gen.stderr.read() if gen.poll() is not None else 'too slow'
                time.sleep(0.1)
            # a second version (the champion's run registered again), approved by someone else, promoted
            old = registry.get(ws, f'{MODEL}/{champion[3]}')
            new = registry.register(ws, old.run_id, MODEL, actor='ci-pipeline')
            assert new.version > old.version
            approve(ws, new.ref, 'someone-else', 'serving test')
            registry.promote(ws, new.ref, 'someone-else', 'serving test: hot reload')
            t_promote, seen, i = time.monotonic(), [], 0
            while time.monotonic() - t_promote < 10:
                r = invoke(c, {'dataframe_records': [row]}, rid=f'reload-probe-{i}'); i += 1
                assert r.status_code == 200, r.text
                seen.append(r.headers['x-model-version'])
                if seen[-1] == new.ref: break
                time.sleep(0.1)
            switch = time.monotonic() - t_promote
            assert seen[-1] == new.ref, f'the server still serves {seen[-1]} {switch:.1f} s after the promotion:\n{s.stderr[-3000:]}'
            time.sleep(1)
        finally:
            stop.touch()
        res = finished(gen, out)
        s.alive()
        status = c.get('/status').json()
    print(f"\nhot reload: {new.ref} answered {switch:.1f} s after the promotion; under load: {res['sent']} requests, "
          f"{res['rps']:.0f}/s, versions {res['versions']}, statuses {res['statuses']}, errors {res['errors']}")
    assert res['errors'] == {} and res['statuses'] == {'200': res['sent']}, (res['statuses'], res['errors'], res['refused'])
    assert set(res['versions']) == {old.ref, new.ref}, res['versions']
    last = sorted(res['ok'], key=lambda x: x[1])[-200:]
    assert {v for _, _, v in last} == {new.ref}, f'the last answers before the stop should all come from {new.ref}'
    assert status['champion']['version'] == new.version
    log = logged(ws, 'reload-')
    assert set(log.request_id) == {rid for rid, _, _ in res['ok']} | {f'reload-probe-{j}' for j in range(i)}
    assert set(log.version) == {old.version, new.version}
    by_version = log[~log.request_id.str.startswith('reload-probe')].groupby('version').size().to_dict()
    assert by_version == {int(v.split('/')[1]): n for v, n in res['versions'].items()}, 'the log disagrees with x-model-version'


# ---------------------------------------------------------------- bugs found while writing these tests (they fail until fixed)

@folder_only
def test_csv_gives_the_in_process_answer(home, ws, rows):
    "MLflow's text/csv format: numbers arrive as text in CSV and must be read as numbers, as MLflow does (pandas.read_csv)."
    from workbench import registry
    from workbench.deployed import OnnxModel
    model = OnnxModel(registry.load_onnx(ws, f'{MODEL}@champion')[0])  # the champion now
    batch = rows.tail(50).reset_index(drop=True)
    with serving(home) as s, httpx.Client(base_url=s.url, timeout=30) as c:
        r = invoke(c, batch.to_csv(index=False), content_type='text/csv')
        assert r.status_code == 200, f'CSV is refused: {r.status_code} {r.text}'
        assert np.array_equal(np.array(r.json()['predictions']), model.predict(batch))


@folder_only
def test_text_the_server_cannot_encode_is_refused_not_a_5xx(home, ws, rows):
    "A JSON string escape of a lone surrogate ('\\ud800') is valid JSON syntax but not Unicode; ids go back in a header."
    row = records(rows.dropna().head(1))[0]
    text_col = 'region'
    tensors = [{'name': k, 'shape': [1], 'datatype': 'BYTES' if isinstance(v, str) else 'FP64', 'data': [v]} for k, v in row.items()]
    problems, answered = [], set()
    with serving(home, check=False) as s, httpx.Client(base_url=s.url, timeout=30) as c:
        # a lone surrogate in a text value (MLflow and KServe v2)
        body = json.dumps({'dataframe_records': [row | {text_col: 'SURROGATE'}]}).replace('SURROGATE', '\\ud800')
        r = invoke(c, body, rid='enc-surrogate-mlflow')
        if r.status_code != 400: problems.append(f'/invocations, {text_col}="\\ud800": {r.status_code} {r.text[:200]}')
        body = json.dumps({'inputs': [t | {'data': ['SURROGATE']} if t['name'] == text_col else t for t in tensors]}).replace('SURROGATE', '\\ud800')
        r = c.post(f'/v2/models/{MODEL}/infer', content=body, headers={'Content-Type': 'application/json'})
        if r.status_code != 400: problems.append(f'v2 infer, {text_col}="\\ud800": {r.status_code} {r.text[:200]}')
        # a KServe v2 `id` that cannot go back in the x-request-id header
        for rid, raw in [('enc-\\ud800', 'lone surrogate'), ('enc-a\\r\\nx-injected: 1', 'CR LF'), ('enc-\\u0007bell', 'control character')]:
            try:
                r = c.post(f'/v2/models/{MODEL}/infer', content=json.dumps({'id': 'ID', 'inputs': tensors}).replace('"ID"', f'"{rid}"'),
                           headers={'Content-Type': 'application/json'})
                if r.status_code == 200 and 'x-injected' not in r.headers: answered.add(json.loads(f'"{rid}"'))
                elif r.status_code != 400: problems.append(f'v2 infer, id with a {raw}: {r.status_code} {r.text[:200]}')
            except httpx.TransportError as e: problems.append(f'v2 infer, id with a {raw}: no answer ({type(e).__name__}: {e})')
        # an X-Request-ID is echoed byte for byte
        r = invoke(c, {'dataframe_records': [row]}, rid=b'enc-caf\xe9')
        got = dict(r.headers.raw).get(b'x-request-id')
        if r.status_code == 200: answered.add('enc-caf\xe9')
        if r.status_code == 200 and got != b'enc-caf\xe9': problems.append(f"X-Request-ID b'enc-caf\\xe9' comes back as {got!r}")
    if 'Traceback' in s.stderr: problems.append('the server printed tracebacks:\n' + '\n'.join(l for l in s.stderr.splitlines() if 'Error' in l))
    unanswered = set(logged(ws, 'enc-').request_id) - answered
    if unanswered: problems.append(f'requests answered with an error or not at all are in the prediction log: {sorted(map(repr, unanswered))}')
    assert not problems, 'server bugs:\n' + '\n'.join(problems)


# ---------------------------------------------------------------- issue 17: the Open Inference Protocol as clients really speak it

@folder_only
def test_tritonclient_with_its_defaults_gets_the_invocations_answer(home, ws, champion, rows):
    "Triton's HTTP client as its users call it: binary tensor data both ways, a compressed body, the model's config, JSON errors."
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException
    from workbench import registry
    model, names, _, _ = champion
    version = registry.champion(ws, MODEL).version  # the hot-reload test may have promoted a later version of the same model
    text = [s['name'] for s in model.signature if s['type'] == 'string']
    batch = rows[rows[text].notna().all(axis=1)].tail(40).reset_index(drop=True)  # binary BYTES has no null: tritonclient would send None as 'None'
    assert batch.drop(columns=text).isna().any(axis=None), 'the batch should hold missing numbers (NaN in binary FP64)'
    with serving(home) as s, httpx.Client(base_url=s.url, timeout=30) as c:
        r = invoke(c, {'dataframe_split': {'columns': names, 'data': [[r[n] for n in names] for r in records(batch)]}, 'params': {'predict_method': 'predict_proba'}})
        assert r.status_code == 200, r.text
        proba = np.array(r.json()['predictions'])
        labels = np.array(invoke(c, {'dataframe_records': records(batch)}).json()['predictions'])
        kserve = triton.InferenceServerClient(url=s.url.removeprefix('http://'))
        inputs = []
        for spec in model.signature:
            t = triton.InferInput(spec['name'], [len(batch), 1], 'BYTES' if spec['name'] in text else 'FP64')
            t.set_data_from_numpy(batch[spec['name']].to_numpy(dtype=object if spec['name'] in text else np.float64).reshape(-1, 1))  # binary_data=True by default
            inputs.append(t)
        assert all('binary_data_size' in t._get_tensor()['parameters'] for t in inputs)
        for k, kw in enumerate([{},  # no outputs named: the client asks for all of them as binary data
                                {'outputs': [triton.InferRequestedOutput('label'), triton.InferRequestedOutput('probabilities')]},
                                {'outputs': [triton.InferRequestedOutput('probabilities', binary_data=False)], 'request_compression_algorithm': 'gzip'}]):
            res = kserve.infer(MODEL, inputs, request_id=f'tritonbin-{k}', **kw)
            assert res.get_response()['id'] == f'tritonbin-{k}' and res.get_response()['model_version'] == str(version)
            assert np.array_equal(res.as_numpy('probabilities'), proba), kw  # bit for bit: the same model on the same values
            if k < 2: assert np.array_equal(res.as_numpy('label'), labels) and res.get_output('label')['parameters']['binary_data_size'] == 8 * len(batch)
        config = kserve.get_model_config(MODEL)
        assert (config['name'], config['platform'], config['max_batch_size']) == (MODEL, 'onnxruntime_onnx', ws.settings['serving.max_rows'])
        assert [(i['name'], i['data_type'], i['dims']) for i in config['input']] == [(n, 'TYPE_STRING' if n in text else 'TYPE_FP64', [1]) for n in names]
        assert [o['name'] for o in config['output']] == ['label', 'probabilities'] and kserve.get_model_config(MODEL, str(version)) == config
        assert 'binary_tensor_data' in kserve.get_server_metadata()['extensions']
        for call, msg in [(lambda: kserve.get_model_config('nosuch'), f"unknown model 'nosuch'; this server serves {MODEL}"),
                          (lambda: kserve.get_model_config(MODEL, '999'), f"model {MODEL} has no version '999'")]:
            with pytest.raises(InferenceServerException) as e: call()
            assert e.value.status() == '404' and msg in e.value.message(), e.value  # the client parsed the JSON error
        kserve.close()
    log = logged(ws, 'tritonbin-')
    assert len(log) == 3 * len(batch) and set(log.version) == {version}


@folder_only
def test_binary_data_that_does_not_add_up_is_a_400_naming_the_problem(home):
    head = json.dumps({'inputs': [{'name': 'x', 'shape': [1], 'datatype': 'FP64', 'parameters': {'binary_data_size': 8}}]}).encode()
    with serving(home) as s, httpx.Client(base_url=s.url, timeout=30) as c:
        for body, length, words in [(head + b'\0' * 4, str(len(head)), ["binary_data_size add up to 8 bytes, but 4 follow the JSON header"]),
                                    (head, '99999', ['Inference-Header-Content-Length must be']),
                                    (head + b'\0' * 8, None, ['not valid JSON'])]:
            r = c.post(f'/v2/models/{MODEL}/infer', content=body, headers={'Content-Type': 'application/octet-stream'} | ({'Inference-Header-Content-Length': length} if length else {}))
            check_refused(r, 400, *words)


@folder_only
def test_deeply_nested_json_is_a_400_on_both_protocols(home):
    "`[` x 100,000 once overflowed the JSON parser's recursion: a 500 RecursionError on /invocations and on v2 infer."
    deep = b'[' * 100_000
    with serving(home) as s, httpx.Client(base_url=s.url, timeout=30) as c:
        check_refused(invoke(c, deep), 400, 'the body nests arrays and objects 100000 levels deep; at most 32 are allowed')
        check_refused(invoke(c, b'{"inputs": {"income": ' + b'[' * 40 + b'1' + b']' * 40 + b'}}'), 400, '42 levels deep')
        check_refused(c.post(f'/v2/models/{MODEL}/infer', content=deep, headers={'Content-Type': 'application/json'}), 400, '100000 levels deep')
        head = b'{"inputs": ' + deep  # the JSON header of a binary request goes through the same check
        check_refused(c.post(f'/v2/models/{MODEL}/infer', content=head + b'\0' * 8, headers={'Inference-Header-Content-Length': str(len(head))}), 400, 'levels deep')
        r = c.get('/no/such/path')
        assert r.status_code == 404 and r.json() == {'error': 'no GET /no/such/path here (see /openapi.json)'}


@folder_only
def test_serve_on_a_busy_port_says_so_in_one_sentence(home, wb, env):
    "Once it printed its banner, then uvicorn's error; now one sentence, no banner, exit code 1."
    env['WORKBENCH_HOME'] = home.workspace
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0)); taken.listen()
        port = taken.getsockname()[1]
        r = wb('serve', f'{MODEL}@champion', '--port', port, check=False, timeout=120)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == '' and r.stderr.strip() == f'Error: port {port} on 127.0.0.1 is in use; pass --port', (r.stdout, r.stderr)
