"Training runs in MLflow: what the stock client sees, comparison as data, several processes sharing one SQLite store, and an MLflow server as the store."
import json, os, subprocess, sys
from pathlib import Path
import numpy as np, pytest
from workbench import data, demo, runs, tracking
from workbench.config import WorkbenchError, load_settings
from workbench.workspace import open_workspace

FEATURES = ['age', 'income', 'employment_years', 'loan_amount', 'interest_rate', 'credit_score', 'debt_to_income']
from conftest import BIN, free_port, started


@pytest.fixture
def credit(ws):
    "The workspace with the demo's first two months committed as dataset `credit`."
    return data.commit(ws, 'credit', demo.training_frame(demo.generate(months=3, rows_per_month=300), 2), 'two months')


def train(ws, C=1.0, experiment='credit default', dataset='credit'):
    "A logistic regression trained inside `start_run`; returns (TrainingRun, ModelInfo, fitted pipeline)."
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    with tracking.start_run(ws, experiment, dataset, FEATURES, 'defaulted', params={'C': C, 'penalty': 'l2'}) as run:
        X_tr, X_te, y_tr, y_te = train_test_split(run.X, run.y, test_size=0.3, random_state=0)
        model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(C=C)).fit(X_tr, y_tr)
        for epoch, auc in enumerate([0.5, 0.6, roc_auc_score(y_te, model.predict_proba(X_te)[:, 1])]):
            tracking.log_metrics({'auc': auc}, step=epoch)
        tracking.log_metrics({'rows': len(run.data)})
        info = tracking.log_sklearn(model, X=X_tr)
    return run, info, model


def test_stock_client_reads_the_run(ws, credit, monkeypatch):
    import mlflow
    run, info, model = train(ws)
    c = mlflow.MlflowClient(ws.tracking_uri)  # the stock client, nothing of ours
    r = c.get_run(run.run_id)
    t = r.data.tags
    assert {k for k in t if k.startswith('workbench.')} == {'workbench.dataset', 'workbench.dataset_id', 'workbench.features',
                                                           'workbench.target', 'workbench.code_version', 'workbench.source'}
    assert (t['workbench.dataset'], t['workbench.dataset_id'], t['workbench.target']) == (credit.ref, credit.id, 'defaulted')
    assert json.loads(t['workbench.features']) == FEATURES and len(credit.id) == 64
    assert r.data.params == {'C': '1.0', 'penalty': 'l2'} and r.data.metrics['rows'] == 600 and r.info.status == 'FINISHED'
    assert [m.step for m in c.get_metric_history(run.run_id, 'auc')] == [0, 1, 2]
    ds = r.inputs.dataset_inputs[0]
    assert (ds.dataset.name, ds.dataset.digest) == ('credit', credit.id[:12])
    assert {x.key: x.value for x in ds.tags} == {'mlflow.data.context': 'training', 'workbench.dataset': credit.ref, 'workbench.dataset_id': credit.id}
    # the reference model: sklearn flavor, skops, artifacts inside the workspace, loadable by the stock API
    m = c.get_logged_model(info.model_id)
    assert m.source_run_id == run.run_id and m.artifact_location.startswith((ws.root/'artifacts').as_uri())
    assert 'model.skops' in os.listdir(Path(m.artifact_location.removeprefix('file://')))
    monkeypatch.setenv('MLFLOW_ALLOW_PICKLE_DESERIALIZATION', 'true')  # MLflow 3.17 asks for it even for skops
    loaded = mlflow.sklearn.load_model(m.artifact_location)
    assert np.array_equal(loaded.predict_proba(run.X), model.predict_proba(run.X))
    assert not (Path.cwd()/'mlruns').exists()


def test_tree_models_log_with_their_trusted_types(ws, credit):
    import mlflow, yaml
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    with tracking.start_run(ws, 'trees', 'credit', FEATURES, 'defaulted') as run:
        info = tracking.log_sklearn(make_pipeline(SimpleImputer(), RandomForestClassifier(5, random_state=0)).fit(run.X, run.y))
    loc = mlflow.MlflowClient(ws.tracking_uri).get_logged_model(info.model_id).artifact_location.removeprefix('file://')
    flavor = yaml.safe_load((Path(loc)/'MLmodel').read_text())['flavors']['sklearn']
    assert flavor['serialization_format'] == 'skops' and 'sklearn.tree._tree.Tree' in flavor['skops_trusted_types']


def test_code_version_and_source(ws, credit, tmp_path, monkeypatch):
    import mlflow
    repo = tmp_path/'repo'; repo.mkdir()
    git = lambda *a: subprocess.run(['git', '-C', str(repo), '-c', 'user.name=t', '-c', 'user.email=t@t', *a], check=True, capture_output=True, text=True)
    git('init', '-q'); (repo/'train.py').write_text('1\n'); git('add', '.'); git('commit', '-qm', 'first')
    head = git('rev-parse', 'HEAD').stdout.strip()
    monkeypatch.chdir(repo)
    monkeypatch.setenv('WORKBENCH_SOURCE', 'pipelines/train.ipynb')
    clean, _, _ = train(ws)
    (repo/'train.py').write_text('2\n')
    dirty, _, _ = train(ws)
    c = mlflow.MlflowClient(ws.tracking_uri)
    t1, t2 = c.get_run(clean.run_id).data.tags, c.get_run(dirty.run_id).data.tags
    assert (t1['workbench.code_version'], t2['workbench.code_version']) == (head, head + '+dirty')
    assert t1['mlflow.source.git.commit'] == t2['mlflow.source.git.commit'] == head
    assert t1['workbench.source'] == t1['mlflow.source.name'] == 'pipelines/train.ipynb' and t1['mlflow.source.type'] == 'NOTEBOOK'
    monkeypatch.chdir(tmp_path)  # not a repository
    assert tracking.code_version() == ''


def test_nothing_is_created_for_a_bad_reference_and_the_uri_is_restored(ws, credit, monkeypatch):
    import mlflow
    monkeypatch.setenv('MLFLOW_TRACKING_URI', 'sqlite:////nonexistent/other.db')
    before = mlflow.get_tracking_uri()
    for ref, features, target, msg in [('credit@0000', FEATURES, 'defaulted', "no version whose id starts with '0000'"),
                                       ('nope', FEATURES, 'defaulted', "no dataset named 'nope'"),
                                       ('credit', FEATURES + ['salary'], 'defaulted', "no column(s) 'salary'"),
                                       ('credit', FEATURES, 'age', "target 'age' is also listed as a feature")]:
        with pytest.raises(WorkbenchError, match=msg.replace('(', r'\(').replace(')', r'\)')):
            with tracking.start_run(ws, 'credit default', ref, features, target): pass
    assert not (ws.root/'mlflow.db').exists()  # not even a store
    train(ws)
    assert mlflow.get_tracking_uri() == before and os.environ['MLFLOW_TRACKING_URI'] == 'sqlite:////nonexistent/other.db'
    assert mlflow.active_run() is None
    with pytest.raises(WorkbenchError, match='no MLflow run is active'): tracking.log_metrics({'auc': 0.5})


def test_runs_and_compare(ws, credit):
    import mlflow
    a, _, _ = train(ws, C=1.0)
    b, _, _ = train(ws, C=0.1)
    other, _, _ = train(ws, C=1.0, experiment='other')
    df = runs.runs(ws, 'credit default')
    assert df.run_id.tolist() == [b.run_id, a.run_id] and df['params.C'].tolist() == ['0.1', '1.0']
    assert df.dataset.tolist() == [credit.ref] * 2 and df.dataset_id.tolist() == [credit.id] * 2
    assert list(df.features.iloc[0]) == FEATURES and df['metrics.rows'].tolist() == [600.0, 600.0]
    assert len(runs.runs(ws)) == 3
    with pytest.raises(WorkbenchError, match="no runs in experiment 'credit-default'"): runs.runs(ws, 'credit-default')

    cmp = runs.compare(ws, [a.run_id, b.run_id, other.run_id]).set_index('key')
    assert cmp.loc['C', 'differs'] and not cmp.loc['penalty', 'differs'] and not cmp.loc['workbench.dataset_id', 'differs']
    assert cmp.loc['C', [a.run_id, b.run_id, other.run_id]].tolist() == ['1.0', '0.1', '1.0']
    assert cmp.loc['auc', 'kind'] == 'metric' and cmp.loc['auc', 'differs']
    with pytest.raises(WorkbenchError, match="no run 'f{32}'"): runs.compare(ws, [a.run_id, 'f' * 32])

    mlflow.MlflowClient(ws.tracking_uri).delete_run(b.run_id)
    assert b.run_id not in runs.runs(ws).run_id.tolist() and b.run_id in runs.runs(ws, deleted=True).run_id.tolist()
    assert runs.compare(ws, [b.run_id])[b.run_id].notna().all()  # a deleted run can still be compared by id

    con = runs.connect_runs(ws, ws.connect(['datasets']))
    assert con.sql("select count(*) from metric_history where key = 'auc'").fetchall() == [(6,)]
    assert con.sql("select distinct d.rows from runs r join datasets d on d.id = r.dataset_id").fetchall() == [(600,)]
    assert con.sql("select value from run_params where run_id = ? and key = 'C'", params=[a.run_id]).fetchall() == [('1.0',)]


def test_a_workspace_without_runs_has_empty_views(ws):
    con = runs.connect_runs(ws)
    assert [con.sql(f'select count(*) from {v}').fetchall()[0][0] for v in ('runs', 'run_params', 'run_tags', 'run_metrics', 'metric_history')] == [0] * 5
    assert runs.runs(ws).empty and not (ws.root/'mlflow.db').exists()


WRITERS, SECONDS = 4, 6.0
PRELUDE = '''
import json, sys, time
from workbench import runs, tracking
from workbench.config import load_settings
from workbench.workspace import open_workspace
ws = open_workspace(sys.argv[1], load_settings(env={}), create=False)
n, seconds = int(sys.argv[2]), float(sys.argv[3])
import mlflow, duckdb
print('ready', flush=True); sys.stdin.readline()  # the barrier: everyone starts when the parent says go
stop = time.time() + seconds
'''
WRITER = PRELUDE + '''
done, i = [], 0
while time.time() < stop or i < 3:
    with tracking.start_run(ws, 'shared', 'credit', ['age', 'income'], 'defaulted', params={'writer': n, 'i': i}, run_name=f'w{n}-{i}') as run:
        for step in range(5): tracking.log_metrics({'loss': 1 / (step + 1)}, step=step)
    done.append(run.run_id); i += 1
print(json.dumps(dict(runs=done)))
'''
READER = PRELUDE + '''
last, checks = 0, 0
while time.time() < stop:
    con = runs.connect_runs(ws)
    now = con.sql('select count(*) from runs').fetchall()[0][0]
    assert now >= last, f"runs went back from {last} to {now}"
    assert con.sql("select count(*) from runs where status = 'FINISHED' and run_id not in (select run_id from run_params)").fetchall() == [(0,)]
    last, checks = now, checks + 1
    time.sleep(0.2)
print(json.dumps(dict(checks=checks, last=last)))
'''


def test_processes_share_the_sqlite_store(ws, credit, env):
    "4 writers and a reader start at once on a workspace whose MLflow store does not exist yet: no lock error, no lost run or metric."
    assert not (ws.root/'mlflow.db').exists()
    procs = [subprocess.Popen([sys.executable, '-c', s, str(ws.root), str(k), str(SECONDS)], env=env, cwd=ws.root.parent,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k, s in enumerate([WRITER] * WRITERS + [READER])]
    for p in procs: assert p.stdout.readline() == 'ready\n', p.communicate()[1]
    for p in procs: p.stdin.write('go\n'); p.stdin.flush()
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, f"a worker failed:\n{err}"
        assert 'database is locked' not in err and 'OperationalError' not in err
    reports = [json.loads(out.splitlines()[-1]) for out, _ in outs]
    written = {r: (k, i) for k, rep in enumerate(reports[:WRITERS]) for i, r in enumerate(rep['runs'])}
    assert len(written) >= WRITERS * 3 and reports[-1]['checks'] > 0
    print(f"{len(written)} runs by {WRITERS} writers, {reports[-1]['checks']} reads")

    df = runs.runs(ws, 'shared').set_index('run_id')
    assert set(df.index) == set(written) and (df.status == 'FINISHED').all()
    assert all((df.loc[r, 'params.writer'], df.loc[r, 'params.i']) == (str(k), str(i)) for r, (k, i) in written.items())
    assert (df['metrics.loss'] == 0.2).all() and (df.dataset_id == credit.id).all()
    con = runs.connect_runs(ws)
    assert con.sql('select count(*) from metric_history').fetchall() == [(5 * len(written),)]
    import mlflow, sqlite3
    c = mlflow.MlflowClient(ws.tracking_uri)
    assert len(c.search_runs([c.get_experiment_by_name('shared').experiment_id], max_results=10_000)) == len(written)
    assert sqlite3.connect(ws.root/'mlflow.db').execute('pragma journal_mode').fetchone() == ('wal',)


def test_nan_and_infinite_metrics(ws, credit):
    import mlflow
    with tracking.start_run(ws, 'edge', 'credit', FEATURES, 'defaulted') as run:
        tracking.log_metrics({'nan': float('nan'), 'inf': float('inf'), 'tiny': 5e-324, 'third': 1 / 3})
    theirs = mlflow.MlflowClient(ws.tracking_uri).get_run(run.run_id).data.metrics
    ours = runs.runs(ws, 'edge').iloc[0]
    assert np.isnan(theirs['nan']) and np.isnan(ours['metrics.nan'])
    assert all(ours[f'metrics.{k}'] == theirs[k] for k in ('inf', 'tiny', 'third'))
    hist = dict(runs.connect_runs(ws).sql('select key, value from metric_history').fetchall())
    assert np.isnan(hist['nan']) and hist['third'] == 1 / 3 and hist['tiny'] == 5e-324


def test_an_mlflow_server_as_the_store(tmp_path, credit, ws):
    "Any tracking URI: the same training code and the same comparison against `mlflow server`."
    import mlflow
    port = free_port()
    uri = f'http://127.0.0.1:{port}'
    with started([BIN/'mlflow', 'server', '--backend-store-uri', f'sqlite:///{tmp_path/"server.db"}', '--artifacts-destination', tmp_path/'server-artifacts',
                  '--host', '127.0.0.1', '--port', port, '--workers', '1'], f'{uri}/health', timeout=120, log=tmp_path/'mlflow.log',
                 cwd=tmp_path, start_new_session=True):
        remote = open_workspace(ws.root, load_settings(env={}, overrides={'workspace.tracking_uri': uri}))
        a, info, model = train(remote, C=1.0)
        b, _, _ = train(remote, C=0.5)
        r = mlflow.MlflowClient(uri).get_run(a.run_id)
        assert r.data.tags['workbench.dataset_id'] == credit.id and r.data.params['C'] == '1.0'
        assert (tmp_path/'server-artifacts').is_dir() and not (ws.root/'mlflow.db').exists()
        df = runs.runs(remote).set_index('run_id')
        assert df.loc[a.run_id, 'dataset_id'] == credit.id and df.loc[b.run_id, 'params.C'] == '0.5' and df.loc[a.run_id, 'metrics.rows'] == 600
        assert runs.connect_runs(remote).sql("select count(*) from metric_history where key = 'auc'").fetchall() == [(6,)]
        assert runs.compare(remote, [a.run_id, b.run_id]).set_index('key').loc['C', 'differs']
