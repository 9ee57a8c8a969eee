"""Serving one registered model over HTTP: `workbench serve` against `mlflow models serve` and MLServer 1.7, with a bare Starlette app as the ceiling.

The same registered model (`credit-default` version 1, alias `champion`, from `workbench demo`) is served by
`workbench --workspace WS serve credit-default/1 --workers 1` and by
`mlflow models serve -m models:/credit-default/1 --env-manager local --workers 1`; a bare Starlette app that returns a
constant JSON (`bare_app` below, run by uvicorn with `--loop uvloop --http httptools --no-access-log --workers 1`)
gives the ceiling of the HTTP stack. The servers run one after another, each in its own process on 127.0.0.1; the
load comes from a separate process, `wrk` (`apt-get install -y wrk`), with `tests/benchmarks/wrk_post.lua`: the same
single-row JSON POST to /invocations at concurrency 1 (`-t1 -c1`) and 8 (`-t1 -c8`), a 2 s warm-up, then
$WORKBENCH_BENCH_SECONDS (default 10) measured seconds. Each server must answer the row correctly once before the load
and give no non-2xx response and no socket error under it. One line of JSON reports requests/s and p50/p99 latency
of each server and the ratios. Targets at concurrency 8: at least 5x MLflow's requests/s, at most 1/3 of its p99,
and at least 60% of the bare app's requests/s.

Payload: every server gets the same request, MLflow's `dataframe_split` with one row
(`{"dataframe_split": {"columns": ["age", ...], "data": [[39, ...]]}}`). The registered version's pyfunc loader
(`onnx_pyfunc`, since issue 18) takes it and enforces its column signature, so MLflow now refuses the tensor form
(`{"inputs": {"age": [[39.0]], ...}}`) this benchmark used to send. Answers: each server's default for the request,
the label, `{"predictions": [0]}` (workbench's probabilities, asked for with `params.predict_method=predict_proba`, are
checked once before the load); the bare app returns that answer as a constant.

MLServer 1.7 (`mlserver` with `mlserver-sklearn`, installed by this benchmark into a venv of its own, by default
~/.cache/workbench-bench/mlserver-venv, $WORKBENCH_BENCH_MLSERVER_VENV; the same scikit-learn version as ours so that
it unpickles the pipeline) is compared on a scikit-learn pipeline both serve: the demo keeps no pickle of its champion,
so the benchmark fits one like it (the train pipeline's logistic candidate on the demo's `credit` data) and registers it
as `credit-twin` through its ONNX export; workbench serves `credit-twin/1`, MLServer the same fitted pipeline (joblib)
with its sklearn runtime, `mlserver start` on 127.0.0.1 with `parallel_workers: 0`:
inference in the server's process (MLServer 1.7.1's inference worker processes die at start with the uvloop 0.22+ that
pip installs with it, "There is no current event loop in thread 'MainThread'"; in-process is also its quicker
configuration for one small model, with no hop between processes). Both get the same Open Inference Protocol request at
`/v2/models/credit-twin/infer`: one tensor of shape [1] per column, FP64 or BYTES, with MLServer's
`"content_type": "pd"` (and `"str"` on text columns) that its runtime needs to make a DataFrame (workbench takes and
ignores them). MLServer answers its default output (the label), workbench its default outputs (label and
probabilities); both must agree with the fitted pipeline: the same label, and MLServer's `predict_proba` output (asked
for once before the load) within 1e-4 of workbench's (ONNX) probabilities. wrk drives both at concurrency 1 and 8 as above.
Target: at least 10x MLServer's requests/s at concurrency 8.

One line of JSON per comparison: `serving` (workbench, MLflow and the bare app on /invocations: at concurrency 1
p50/p99 and their ratio to MLflow's, at 8 requests/s and p99 and their ratios; targets 5x MLflow's requests/s and at
most 1/3 of its p99 at concurrency 8, and a p99 of at most 2 ms at concurrency 1), then `serving-v2` (workbench and
MLServer on the v2 request). Every figure is printed before any target is asserted.

Run: pytest tests/benchmarks/bench_serving.py -m benchmark -s -p no:cacheprovider
The workspace is made once with `workbench demo` (a minute or so) and cached in $WORKBENCH_BENCH_CACHE (default
/tmp/workbench-bench) as serving-ws; delete that folder to rebuild it. Each run serves a fresh copy of it.
"""
import contextlib, json, math, os, shutil, subprocess, sys, time, urllib.error, urllib.request, venv
from pathlib import Path
import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

pytestmark = pytest.mark.benchmark
CACHE = Path(os.environ.get('WORKBENCH_BENCH_CACHE', '/tmp/workbench-bench'))
SECONDS = int(os.environ.get('WORKBENCH_BENCH_SECONDS', '10'))
WARMUP_SECONDS, CONCURRENCY = 2, (1, 8)
MODEL, VERSION = 'credit-default', 1
TWIN = 'credit-twin'  # the model both workbench and MLServer serve: a scikit-learn pipeline registered by this benchmark
HERE, ROOT, BIN = Path(__file__).resolve().parent, Path(__file__).resolve().parents[2], Path(sys.executable).parent
WRK, LUA = shutil.which('wrk'), HERE/'wrk_post.lua'
MLSERVER_VENV = Path(os.environ.get('WORKBENCH_BENCH_MLSERVER_VENV', Path.home()/'.cache'/'workbench-bench'/'mlserver-venv'))
C1_P99_TARGET_MS = 2.0

# The bare app: the HTTP stack alone (uvicorn + Starlette), reading the body and returning a constant of the same shape.
BARE_ANSWER = b'{"predictions":[0]}'  # what `workbench serve` answers for one row
async def _bare_invocations(request):
    await request.body()
    return Response(BARE_ANSWER, media_type='application/json')
async def _bare_health(request): return Response(b'{"status": "ok"}', media_type='application/json')
bare_app = Starlette(routes=[Route('/invocations', _bare_invocations, methods=['POST']), Route('/health', _bare_health)])


@pytest.fixture(scope='module')
def workspace():
    "The demo workspace, made once with `workbench demo`; a folder without the ready mark is a failed build and is redone."
    ws, mark = CACHE/'serving-ws', CACHE/'serving-ws'/'.bench-ready'
    if not mark.exists():
        shutil.rmtree(ws, ignore_errors=True)
        ws.parent.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        r = subprocess.run([str(BIN/'workbench'), 'demo'], env={**os.environ, 'WORKBENCH_HOME': str(ws)}, cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, f'`workbench demo` failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
        mark.write_text('made by bench_serving.py\n')
        print(f'\nmade the demo workspace {ws} in {time.perf_counter() - t:.0f} s')
    return ws


def _plain(v):
    "A JSON value of a pandas/numpy scalar."
    return v.item() if hasattr(v, 'item') else v

@pytest.fixture(scope='module')
def row(workspace):
    "The champion's input columns, one row of the first scoring batch with them, the two payloads and the expected answer."
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    from workbench import registry, data
    from workbench.deployed import OnnxModel
    ws = open_workspace(workspace, load_settings(env={}), create=False)
    onnx_bytes, mv = registry.load_onnx(ws, f'{MODEL}/{VERSION}')
    m = OnnxModel(onnx_bytes)
    cols, types = [s['name'] for s in m.signature], {s['name']: s['type'] for s in m.signature}
    df = data.load(ws, 'applications')[cols].head(1)
    values = [_plain(v) for v in df.iloc[0]]
    split = {'dataframe_split': {'columns': cols, 'data': [values]}}
    tensors = {'inputs': {c: [[float(v) if types[c] in ('double', 'float') else v]] for c, v in zip(cols, values)}}
    proba = [float(p) for p in m.predict_proba(df)[0]]
    def tensor(c, v):
        text = types[c] == 'string'
        return {'name': c, 'shape': [1], 'datatype': 'BYTES' if text else 'FP64', 'data': [v if text else float(v)]} | \
            ({'parameters': {'content_type': 'str'}} if text else {})
    v2 = {'parameters': {'content_type': 'pd'}, 'inputs': [tensor(c, v) for c, v in zip(cols, values)]}
    return dict(columns=cols, split=json.dumps(split), tensors=json.dumps(tensors), v2=json.dumps(v2), label=int(m.predict(df)[0]),
                proba=proba, run_id=mv.run_id)


def _numbers(x):
    "Every number in a decoded JSON value, depth first."
    if isinstance(x, bool): yield int(x)
    elif isinstance(x, (int, float)): yield x
    elif isinstance(x, dict):
        for v in x.values(): yield from _numbers(v)
    elif isinstance(x, list):
        for v in x: yield from _numbers(v)

def check_answer(body:bytes, expected:list):
    "The answer's predictions are, flattened, the `expected` numbers (to 1e-6): one row's label and/or probabilities."
    out = json.loads(body)
    assert isinstance(out, dict) and 'predictions' in out, f'no predictions in {body[:300]!r}'
    nums = list(_numbers(out['predictions']))
    assert len(nums) == len(expected) and all(math.isclose(n, e, rel_tol=1e-6, abs_tol=1e-9) for n, e in zip(nums, expected)), \
        f'expected the predictions {expected}, got {body[:300]!r}'


def _post(url:str, body:str, timeout=30):
    req = urllib.request.Request(url, data=body.encode(), headers={'Content-Type': 'application/json'}, method='POST')
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r: return r.status, r.read()
    except urllib.error.HTTPError as e: return e.code, e.read()

@contextlib.contextmanager
def serving(name:str, cmd:list, port:int, log:Path, env:dict|None=None, timeout=180, health='/health', clean=False):
    "Run `cmd` as a server in its own process group until GET `health` answers 200 (failing loudly if it does not); stop it after."
    from conftest import started  # here: uvicorn imports this file for the bare app, without the tests' folder on its path
    env = (env or {}) if clean else {**os.environ, 'PATH': f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    base = f'http://127.0.0.1:{port}'
    with started(cmd, f'{base}{health}', timeout, log=log, env=env, cwd=ROOT, start_new_session=True): yield base


def wrk(url:str, body_file:Path, connections:int, seconds:int) -> dict:
    "One wrk run (one thread, `connections` connections), as the JSON that wrk_post.lua prints."
    r = subprocess.run([WRK, '-t1', f'-c{connections}', f'-d{seconds}s', '--latency', '-s', str(LUA), url],
                       env={**os.environ, 'WRK_BODY_FILE': str(body_file)}, capture_output=True, text=True, timeout=seconds + 60)
    line = next((l for l in r.stdout.splitlines() if l.startswith('WRK_JSON ')), None)
    assert r.returncode == 0 and line, f'wrk failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}'
    return json.loads(line.removeprefix('WRK_JSON '))

def load(name:str, base:str, body:str, check, tmp:Path, path:str='/invocations') -> dict:
    "Check one answer, then for each concurrency: a warm-up run and a measured run; {c: {rps, p50_ms, p99_ms}}."
    status, answer = _post(f'{base}{path}', body)
    assert status == 200, f'{name} answered {status}: {answer[:1000]!r}'
    check(answer)
    body_file = tmp/f'{name}.json'
    body_file.write_text(body)
    out = {}
    for c in CONCURRENCY:
        wrk(f'{base}{path}', body_file, c, WARMUP_SECONDS)
        res = wrk(f'{base}{path}', body_file, c, SECONDS)
        assert res['requests'] > 0 and not any(res['errors'].values()), f'{name} at concurrency {c}: {res}'
        out[c] = {'rps': round(res['rps'], 1), 'p50_ms': round(res['p50_ms'], 3), 'p99_ms': round(res['p99_ms'], 3)}
    return out


def mlserver_venv() -> Path:
    "MLServer 1.7 with its sklearn runtime in a venv of its own (made once), with our scikit-learn version; fails saying why it cannot be made."
    import sklearn
    python, mark = MLSERVER_VENV/'bin'/'python', MLSERVER_VENV/'.bench-ready'
    wanted = f"mlserver==1.7.* mlserver-sklearn==1.7.* scikit-learn=={sklearn.__version__}"
    if not mark.exists() or mark.read_text() != wanted:
        shutil.rmtree(MLSERVER_VENV, ignore_errors=True)
        venv.create(MLSERVER_VENV, with_pip=True)
        r = subprocess.run([str(python), '-m', 'pip', 'install', '--disable-pip-version-check', *wanted.split()],
                           capture_output=True, text=True, timeout=1800)
        assert r.returncode == 0, f'MLServer 1.7 could not be installed into {MLSERVER_VENV}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
        mark.write_text(wanted)
    return MLSERVER_VENV


def sklearn_twin(ws_path:Path, columns:list):
    """A scikit-learn pipeline like the champion's (the train pipeline's logistic candidate: median-impute and scale the numbers,
    one-hot the text, logistic regression) fitted on the demo's `credit` data, registered as TWIN/1 through its ONNX export."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from workbench import data, onnx as wonnx, registry, suites, tracking
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    ws = open_workspace(ws_path, load_settings(env={}), create=False)
    target = suites.roles(ws, 'credit')['target']
    frame, version = data.load(ws, 'credit'), data.resolve(ws, 'credit')
    X, y = frame[columns], frame[target]
    numeric = [c for c in columns if X[c].dtype.kind in 'iuf']
    pre = ColumnTransformer([('num', make_pipeline(SimpleImputer(strategy='median'), StandardScaler()), numeric),
                             ('cat', OneHotEncoder(handle_unknown='ignore'), [c for c in columns if c not in numeric])])
    pipe = make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(X, y)
    with tracking.start_run(ws, TWIN, version.ref, columns, target) as run:
        registry.log_candidate(ws, run.run_id, wonnx.export(pipe, X))
    registry.register(ws, run.run_id, TWIN, actor='bench')
    return pipe


def mlserver_model(pipeline, folder:Path, port:int) -> Path:
    "A folder `mlserver start` serves: `pipeline` (joblib) as TWIN, with MLServer's sklearn runtime, on `port`."
    import joblib
    from conftest import free_port
    folder.mkdir(parents=True)
    joblib.dump(pipeline, folder/'model.joblib')
    (folder/'settings.json').write_text(json.dumps({'host': '127.0.0.1', 'http_port': port, 'grpc_port': free_port(),
                                                    'metrics_port': free_port(), 'parallel_workers': 0}))
    (folder/'model-settings.json').write_text(json.dumps({'name': TWIN, 'implementation': 'mlserver_sklearn.SKLearnModel',
                                                          'parameters': {'uri': './model.joblib', 'version': '1'}}))
    return folder


def v2_outputs(body:bytes) -> dict:
    "A v2 answer's outputs, name -> flat data."
    out = json.loads(body)
    assert isinstance(out, dict) and isinstance(out.get('outputs'), list), f'no outputs in {body[:300]!r}'
    return {o['name']: o['data'] for o in out['outputs']}


def close(a:list, b:list, tol:float) -> bool: return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


def comparison(ours:dict, theirs:dict) -> dict:
    "Our figures and theirs per concurrency, with the ratios of requests/s and latencies."
    return {f'c{c}': {'workbench': ours[c], 'other': theirs[c], 'rps_ratio': round(ours[c]['rps'] / theirs[c]['rps'], 2),
                      'p50_ratio': round(ours[c]['p50_ms'] / theirs[c]['p50_ms'], 3),
                      'p99_ratio': round(ours[c]['p99_ms'] / theirs[c]['p99_ms'], 3)} for c in CONCURRENCY}


def test_serving(workspace, row, tmp_path):
    assert WRK, 'wrk is not installed; install it with `apt-get install -y wrk`'
    from conftest import free_port
    ws = shutil.copytree(workspace, tmp_path/'ws')  # the servers write (prediction log): keep the cached workspace as made
    label, proba = row['label'], row['proba']
    def check_bare(body): assert json.loads(body) == json.loads(BARE_ANSWER), body[:300]
    results, load_before = {}, round(os.getloadavg()[0], 2)

    port = free_port()
    with serving('bare', [sys.executable, '-m', 'uvicorn', 'bench_serving:bare_app', '--app-dir', str(HERE), '--host', '127.0.0.1',
                          '--port', str(port), '--workers', '1', '--loop', 'uvloop', '--http', 'httptools', '--no-access-log',
                          '--log-level', 'warning', '--timeout-graceful-shutdown', '30'], port, tmp_path/'bare.log') as base:
        results['bare'] = load('bare', base, row['split'], check_bare, tmp_path)

    port = free_port()
    with serving('mlflow', [str(BIN/'mlflow'), 'models', 'serve', '-m', f'models:/{MODEL}/{VERSION}', '--env-manager', 'local',
                            '-h', '127.0.0.1', '-p', str(port), '--workers', '1'], port, tmp_path/'mlflow.log',
                 env={'MLFLOW_TRACKING_URI': f'sqlite:///{ws}/mlflow.db'}) as base:
        status, answer = _post(f'{base}/invocations', row['tensors'])  # documents why every server gets dataframe_split
        assert status != 200, f'MLflow scores the tensor form again ({answer[:300]!r})'
        results['mlflow'] = load('mlflow', base, row['split'], lambda b: check_answer(b, [label]), tmp_path)

    port = free_port()
    with serving('workbench', [str(BIN/'workbench'), '--workspace', str(ws), 'serve', f'{MODEL}/{VERSION}', '--port', str(port),
                               '--workers', '1'], port, tmp_path/'workbench.log') as base:
        proba_body = json.dumps({**json.loads(row['split']), 'params': {'predict_method': 'predict_proba'}})
        status, answer = _post(f'{base}/invocations', proba_body)
        assert status == 200, f'workbench answered {status}: {answer[:1000]!r}'
        check_answer(answer, proba)  # the probabilities are right too; the load asks for the default answer, the label
        results['workbench'] = load('workbench', base, row['split'], lambda b: check_answer(b, [label]), tmp_path)

    mls = mlserver_venv()  # first, so that a failed installation says so before the rest runs
    pipe = sklearn_twin(ws, row['columns'])
    import pandas as pd
    frame = pd.DataFrame({t['name']: t['data'] for t in json.loads(row['v2'])['inputs']})
    twin_label, twin_proba = int(pipe.predict(frame)[0]), [float(p) for p in pipe.predict_proba(frame)[0]]
    infer = f'/v2/models/{TWIN}/infer'
    port = free_port()
    with serving('workbench-v2', [str(BIN/'workbench'), '--workspace', str(ws), 'serve', f'{TWIN}/1', '--port', str(port),
                                  '--workers', '1'], port, tmp_path/'workbench-v2.log') as base:
        status, answer = _post(f'{base}{infer}', row['v2'])
        assert status == 200, f'workbench answered {status}: {answer[:1000]!r}'
        ours_v2 = v2_outputs(answer)
        assert ours_v2['label'] == [twin_label] and close(ours_v2['probabilities'], twin_proba, 1e-4), (ours_v2, twin_label, twin_proba)
        def check_ours(b): assert v2_outputs(b)['label'] == [twin_label], b[:300]
        results['workbench-v2'] = load('workbench-v2', base, row['v2'], check_ours, tmp_path, infer)

    port = free_port()
    folder = mlserver_model(pipe, tmp_path/'mlserver', port)
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')} | {'PATH': f"{mls/'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    with serving('mlserver', [str(mls/'bin'/'mlserver'), 'start', str(folder)], port, tmp_path/'mlserver.log', env=env,
                 health='/v2/health/ready', clean=True) as base:
        status, answer = _post(f'{base}{infer}', json.dumps({**json.loads(row['v2']), 'outputs': [{'name': 'predict_proba'}]}))
        assert status == 200, f'MLServer answered {status}: {answer[:1000]!r}'
        theirs_proba = v2_outputs(answer)['predict_proba']
        assert close(theirs_proba, ours_v2['probabilities'], 1e-4), f"MLServer's probabilities {theirs_proba} differ from ours {ours_v2['probabilities']}"
        def check_mlserver(b): assert v2_outputs(b)['predict'] == ours_v2['label'], b[:300]
        results['mlserver'] = load('mlserver', base, row['v2'], check_mlserver, tmp_path, infer)

    report = {'benchmark': 'serving', 'model': f'{MODEL}/{VERSION}', 'seconds': SECONDS, 'load': 'wrk -t1, one row per POST',
              'cpus': os.cpu_count(), 'loadavg_1m_before': load_before,  # other work on the machine skews the figures
              'payload': 'dataframe_split, one row, the same for all', 'payload_bytes': len(row['split'])}
    for c in CONCURRENCY:
        ours, theirs, bare = results['workbench'][c], results['mlflow'][c], results['bare'][c]
        report[f'c{c}'] = {'workbench': ours, 'mlflow': theirs, 'bare': bare,
                           'rps_vs_mlflow': round(ours['rps'] / theirs['rps'], 2), 'p50_vs_mlflow': round(ours['p50_ms'] / theirs['p50_ms'], 3),
                           'p99_vs_mlflow': round(ours['p99_ms'] / theirs['p99_ms'], 3), 'rps_vs_bare': round(ours['rps'] / bare['rps'], 3)}
    report['loadavg_1m_after'] = round(os.getloadavg()[0], 2)
    print(json.dumps(report))
    v2 = {'benchmark': 'serving-v2', 'model': f'{TWIN}/1 (scikit-learn; ONNX in workbench)', 'seconds': SECONDS, 'other': 'MLServer 1.7 (mlserver-sklearn)',
          'payload': 'v2 infer, one tensor of shape [1] per column, content_type pd', 'payload_bytes': len(row['v2']),
          **comparison(results['workbench-v2'], results['mlserver']), 'loadavg_1m_after': round(os.getloadavg()[0], 2)}
    print(json.dumps(v2))

    c1, c8 = report['c1'], report['c8']
    assert c8['rps_vs_mlflow'] >= 5, f"workbench serves {c8['rps_vs_mlflow']}x MLflow's requests/s at concurrency 8; the target is 5x"
    assert c8['p99_vs_mlflow'] <= 1/3, f"workbench's p99 is {c8['p99_vs_mlflow']} of MLflow's at concurrency 8; the target is 1/3"
    assert c8['rps_vs_bare'] >= 0.6, f"workbench serves {c8['rps_vs_bare']} of the bare app's requests/s at concurrency 8; the target is 0.6"
    assert v2['c8']['rps_ratio'] >= 10, f"workbench serves {v2['c8']['rps_ratio']}x MLServer's requests/s at concurrency 8; the target is 10x"
    assert c1['workbench']['p99_ms'] <= C1_P99_TARGET_MS, \
        f"workbench's p99 at concurrency 1 is {c1['workbench']['p99_ms']} ms; the target is {C1_P99_TARGET_MS} ms"
