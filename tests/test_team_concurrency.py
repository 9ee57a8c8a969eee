"""A team at work at once (issue 20): processes that share nothing but the workspace's s3:// URL and the MLflow tracking
server (PostgreSQL, artifacts on the same SeaweedFS store), each with its own local state as on its own machine, commit
dataset versions, train and register models, approve and promote them, serve the champion under a client's load and
monitor drift. No row is lost, no process meets a lock error, the audit chain is one, and the registry agrees with it."""
import json, os, re, subprocess, sys
import pytest
from sklearn.linear_model import LogisticRegression
from conftest import BIN, approver_key, clean_env, free_port
from test_registry import NUM, candidate

SECONDS, TRAINED, ROWS = 15.0, 1, 5  # how long the writers run; versions the trainer registers; rows per request
MODEL = 'credit-default'

PRELUDE = '''
import json, os, sys, time
import pandas as pd
from workbench import audit, data, drift, registry
from workbench.errors import WorkbenchError
from workbench.workspace import open_workspace
ws = open_workspace(None, create=False)  # WORKBENCH_HOME=s3://..., workspace.tracking_uri=http://...
n, seconds = int(sys.argv[1]), float(sys.argv[2])
print('ready', flush=True); sys.stdin.readline()  # the barrier: everyone starts when the parent says go
stop = time.time() + seconds
'''

DATA_WRITER = PRELUDE + '''
i = 0
while time.time() < stop:
    data.commit(ws, 'stream', pd.DataFrame({'writer': [n], 'i': [i]}), f'batch {i} of writer {n}', f'writer{n}')
    i += 1
print(json.dumps(dict(commits=i)))
'''

TRAINER = PRELUDE + '''
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from workbench import deployed, gates, onnx, tracking
NUM = json.loads(os.environ['MIX_FEATURES'])
frame = data.load(ws, 'credit')
train, test = frame[:2400], frame[2400:]
runs, versions = [], []
for k in range(int(os.environ['MIX_TRAINED'])):
    with tracking.start_run(ws, 'credit-default', 'credit', NUM, 'defaulted', {'C': 0.5 + k}) as run:
        pipe = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(C=0.5 + k, max_iter=500)).fit(train[NUM], train.defaulted)
        exported = onnx.export(pipe, test[NUM])
        report = gates.evaluate(deployed.OnnxModel(exported.onnx), test[NUM], test.defaulted, test.gender, None,
                                exported.parity.max_abs_diff, ws.settings)
        registry.log_candidate(ws, run.run_id, exported, report)
    runs.append(run.run_id)
    versions.append(registry.register(ws, run.run_id, 'credit-default', actor='ci-pipeline').version)
print(json.dumps(dict(runs=runs, versions=versions)))
'''

APPROVER = PRELUDE + '''
want, approved, promoted = int(os.environ['MIX_TRAINED']), [], []
deadline = stop + 90  # the trainer may still be at work when the others stop
while len(promoted) < want and time.time() < deadline:
    for mv in sorted((registry.get(ws, f'credit-default/{v}') for v in registry.versions(ws, 'credit-default').version),
                     key=lambda mv: mv.version):
        if not mv.gates_passed or mv.version in promoted or mv.version == 1: continue
        if 'bea' not in mv.approvals:
            registry.approve(ws, mv.ref, 'bea', 'looks good', key=os.environ['MIX_KEY']); approved.append(mv.version)
        registry.promote(ws, mv.ref, 'bea', 'team mix'); promoted.append(mv.version)
    time.sleep(0.5)
print(json.dumps(dict(approved=approved, promoted=promoted)))
'''

MONITOR = PRELUDE + '''
windows, runs = 0, 0
while time.time() < stop:
    try: windows += drift.drift(ws, 'credit-default@champion', window='50rows', alert=False).window.nunique(); runs += 1
    except WorkbenchError as e:
        if 'no rows' not in str(e) and 'no predictions' not in str(e) and 'prediction log' not in str(e): raise
    time.sleep(0.3)
print(json.dumps(dict(windows=windows, runs=runs)))
'''

CLIENT = '''
import json, sys, time, urllib.request, urllib.error
url, seconds, rows = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
print('ready', flush=True); sys.stdin.readline()
stop, ok, failed, i = time.time() + seconds, 0, [], 0
while time.time() < stop:
    req = urllib.request.Request(url + '/invocations', json.dumps({'dataframe_records': rows}).encode(),
                                 {'Content-Type': 'application/json', 'X-Request-ID': f'mix-{i}'})
    try:
        with urllib.request.urlopen(req, timeout=30) as r: ok += r.status == 200
    except urllib.error.HTTPError as e: failed.append(e.code)
    i += 1
    time.sleep(0.01)
print(json.dumps(dict(ok=ok, failed=failed, sent=i)))
'''


def start(script:str, env:dict, *args) -> subprocess.Popen:
    "Run `script` with `args` in the team's repository (the current folder) as its own process."
    return subprocess.Popen([sys.executable, '-c', script, *map(str, args)], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=os.getcwd())


def locked(text:str) -> list:
    "The lines of `text` that speak of a lock (not of a block)."
    return [l for l in text.splitlines() if re.search(r'\block', l, re.I)]


@pytest.fixture
def team(seaweedfs, mlflow_server, tmp_path, monkeypatch):
    "The shared workspace's environment, and a factory for each machine's: its own local state, anchors and home."
    shared = {k: v for k, v in seaweedfs.items() if k.startswith('AWS_')} | dict(
        WORKBENCH_HOME=f"{seaweedfs['WORKBENCH_HOME']}/team-mix", WORKBENCH_WORKSPACE_TRACKING_URI=mlflow_server.url,
        WORKBENCH_SERVING_RELOAD_SECONDS='0.5', PYTHONPATH=os.environ.get('PYTHONPATH', ''))
    def machine(name:str) -> dict:
        (home := tmp_path/name).mkdir(exist_ok=True)  # its own locks, copies and audit anchors (~/.local/state)
        return clean_env(**shared, XDG_STATE_HOME=str(home/'state'), HOME=str(home), WORKBENCH_ACTOR=name)
    for k, v in machine('setup').items(): monkeypatch.setenv(k, v)
    (repo := tmp_path/'work').mkdir()  # the team's repository, checked out on every machine: its policy and approvers
    (repo/'settings.ini').write_text('[promotion]\nallowed_signers = allowed_signers\n')
    monkeypatch.chdir(repo)
    return machine


def test_a_team_at_work_at_once(team, tmp_path, mlflow_server):
    from workbench import audit, data, demo, registry, runs
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    ws = open_workspace(None, load_settings())
    assert ws.uri.startswith('s3://') and ws.tracking_uri == mlflow_server.url
    # the setup: a dataset, version 1 trained, approved by bea and champion, served by a real `workbench serve`
    credit = data.commit(ws, 'credit', demo.training_frame(demo.generate(months=4, rows_per_month=800), 4), 'four months', 'ana')
    first, _ = candidate(ws, credit, LogisticRegression(max_iter=500), NUM)
    key = approver_key(ws, 'bea')
    registry.approve(ws, first.ref, 'bea', key=key)
    registry.promote(ws, first.ref, 'bea', 'first champion')
    sample = json.loads(data.load(ws, 'credit')[NUM][:ROWS].to_json(orient='records'))
    port = free_port()
    srv_err = open(tmp_path/'serve.err', 'w+')
    server = subprocess.Popen([str(BIN/'workbench'), 'serve', f'{MODEL}@champion', '--port', str(port)],
                              env=team('server'), stdout=subprocess.DEVNULL, stderr=srv_err, cwd=tmp_path/'work')
    try:
        from conftest import wait_until_up
        wait_until_up(f'http://127.0.0.1:{port}/health', server, 120, lambda: (tmp_path/'serve.err').read_text()[-3000:])
        extra = dict(MIX_TRAINED=str(TRAINED), MIX_FEATURES=json.dumps(NUM), MIX_KEY=str(key))
        jobs = {'data1': DATA_WRITER, 'data2': DATA_WRITER, 'trainer': TRAINER, 'approver': APPROVER,
                'monitor1': MONITOR, 'monitor2': MONITOR}
        procs = {name: start(s, team(name) | extra, k, SECONDS) for k, (name, s) in enumerate(jobs.items())}
        procs['client'] = start(CLIENT, team('client'), f'http://127.0.0.1:{port}', SECONDS, json.dumps(sample))
        for name, p in procs.items(): assert p.stdout.readline() == 'ready\n', f'{name}: {p.communicate()[1][-3000:]}'
        for p in procs.values(): p.stdin.write('go\n'); p.stdin.flush()
        outs = {name: p.communicate(timeout=240) for name, p in procs.items()}
    finally:
        server.terminate()
        code = server.wait(60)
        srv_err.seek(0); served_err = srv_err.read(); srv_err.close()
    for name, p in procs.items():
        assert p.returncode == 0, f"{name} failed:\n{outs[name][1][-4000:]}"
        assert not locked(outs[name][1]), f"{name}: {locked(outs[name][1])}"
    assert code in (0, -15) and 'Traceback' not in served_err and not locked(served_err), served_err[-4000:]
    rep = {name: json.loads(out.splitlines()[-1]) for name, (out, _) in outs.items()}
    print('\n' + json.dumps(rep))

    # every dataset commit of both writers, once, in one linear history
    commits = rep['data1']['commits'] + rep['data2']['commits']
    vs = data.versions(ws, 'stream')
    assert commits >= 4 and [v.seq for v in vs] == list(range(1, commits + 1))
    assert [v.parent for v in vs] == [None] + [v.id for v in vs[:-1]]
    # every run on the tracking server; every version registered, approved, promoted in turn
    trained = rep['trainer']['versions']
    assert sorted(trained) == list(range(2, 2 + TRAINED)) and set(rep['trainer']['runs']) <= set(runs.runs(ws, MODEL).run_id)
    assert rep['approver']['promoted'] == trained == rep['approver']['approved']
    assert sorted(registry.versions(ws, MODEL).version) == list(range(1, 2 + TRAINED))
    assert registry.champion(ws, MODEL).version == trained[-1] and registry.alias_problems(ws, MODEL) == []
    assert [int(v) for v in registry.history(ws, MODEL).query("alias == 'champion'").to] == [1, *trained]
    # every request the client had answered is in the prediction log, once per row
    assert rep['client']['ok'] > 50 and not rep['client']['failed'], rep['client']
    got = ws.sql("select count(*), count(distinct (request_id, row)) from predictions where starts_with(request_id, 'mix-')").fetchall()
    assert got == [(rep['client']['ok'] * ROWS,) * 2]
    # each drift window once, whichever monitor computed it
    assert rep['monitor1']['runs'] + rep['monitor2']['runs'] > 0
    dup = ws.sql('select model, version, "window", feature, statistic, count(*) n from drift group by all having n > 1').fetchall()
    assert dup == [] and ws.sql('select count(distinct (model, version, "window")) from drift').fetchall()[0][0] == \
        rep['monitor1']['windows'] + rep['monitor2']['windows']
    # one audit chain holding every event, checked here and by the CLI on yet another machine
    count = lambda action: ws.sql('select count(*) from audit where action = ?', [action]).fetchall()[0][0]
    assert count('dataset.commit') == commits + 1 and count('model.register') == 1 + TRAINED
    assert count('model.approve') == 1 + len(rep['approver']['approved']) and count('model.promote') == 1 + TRAINED
    v = audit.verify(ws)
    assert v.ok, str(v)
    r = subprocess.run([str(BIN/'workbench'), 'audit', 'verify'], env=team('auditor'), capture_output=True, text=True,
                       timeout=120, cwd=tmp_path/'work')
    assert r.returncode == 0 and 'intact' in r.stdout and f'{v.events} events' in r.stdout, r.stdout + r.stderr
