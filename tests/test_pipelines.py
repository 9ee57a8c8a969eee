"""Issue 4: the pipeline notebooks, run by the runner (papermill, as CI does) and top to bottom as a person does (nbclient).

The runner's tests (`where`) run twice: in a folder, and on a team's services (the workspace on SeaweedFS, MLflow a
server on PostgreSQL, issue 20)."""
import json, re, subprocess, time
import nbformat, numpy as np, pandas as pd, pytest
from workbench import audit, data, demo, performance, pipelines, rebuild, registry
from workbench.config import WorkbenchError, load_settings
from workbench.workspace import open_workspace
from conftest import approver_key, clean_env


@pytest.fixture(autouse=True)
def no_developer_settings(monkeypatch):
    "Kernels inherit the environment: keep the developer's WORKBENCH_* variables out of them."
    import os
    for k in [k for k in os.environ if k.startswith('WORKBENCH_')]: monkeypatch.delenv(k)


@pytest.fixture(scope='module')
def portfolio(): return demo.generate(months=12, rows_per_month=1000)


@pytest.fixture(params=['folder', 'team'])
def where(request, tmp_path, monkeypatch) -> tuple:
    "Where a test's workspace is, and the settings' environment: a folder; or a prefix of the session's bucket, tracked by the module's mlflow server."
    if request.param == 'folder': return tmp_path/'ws', {}
    store, server = request.getfixturevalue('seaweedfs'), request.getfixturevalue('mlflow_server')
    for k, v in store.items(): monkeypatch.setenv(k, v) if k.startswith('AWS_') else None
    monkeypatch.setenv('XDG_STATE_HOME', str(tmp_path/'state'))  # this machine's own state
    return f"{store['WORKBENCH_HOME']}/pipelines/{tmp_path.name}", {'WORKBENCH_WORKSPACE_TRACKING_URI': server.url}


def workspace(tmp_path, where=None, **settings):
    "A workspace in tmp_path (or `where`): `gates__min_auc='0.9'` as a --set flag, promotion rules (governance) in its settings.ini."
    rules = [f"{k.split('__')[1]} = {v}\n" for k, v in settings.items() if k.startswith('promotion__')]
    (tmp_path/'settings.ini').write_text('[promotion]\n' + ''.join(rules))
    flags = {k.replace('__', '.'): v for k, v in settings.items() if not k.startswith('promotion__')}
    path, env = where or (tmp_path/'ws', {})
    return open_workspace(path, load_settings(tmp_path/'settings.ini', env=env, overrides=flags))


def outputs(ws, path) -> str:
    "Every text output of an executed notebook kept in `ws`, joined."
    nb = nbformat.reads(notebook_text(ws, path), as_version=4)
    return '\n'.join(''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/plain', '')) + o.get('ename', '') + ': ' + o.get('evalue', '')
                     for c in nb.cells if c.cell_type == 'code' for o in c.outputs)


def notebook_text(ws, path:str) -> str:
    "The text of an executed notebook `ws` keeps at `path` (a file, or a URL on object storage)."
    return ws.read_bytes(path.removeprefix(f'{ws.location}/')).decode()


def test_notebooks_are_clean_and_parameterized():
    for name in pipelines.CI:
        nb = nbformat.read(pipelines.PIPELINES/f'{name}.ipynb', as_version=4)
        code = [c for c in nb.cells if c.cell_type == 'code']
        assert all(c.outputs == [] and c.execution_count is None for c in code), f'{name}.ipynb is not clean'
        assert [c.metadata.get('tags') for c in code].count(['parameters']) == 1
        params = pipelines.parameters(name)
        assert {'workspace', 'settings', 'results_path'} <= set(params) and all(p['help'] for p in params.values()), name
        assert all(p['type'] != 'None' for p in params.values()), f'{name}: annotate every parameter with its type'
    assert {'dataset', 'target', 'keys'} <= set(pipelines.parameters('validate'))
    assert {'dataset', 'target', 'keys', 'sensitive', 'features', 'models', 'test_size', 'seed', 'experiment'} <= set(pipelines.parameters('train'))
    assert {'run_id', 'model_name', 'experiment'} <= set(pipelines.parameters('evaluate')) & set(pipelines.parameters('promote'))


def test_ci_on_demo_data(tmp_path, where, portfolio, monkeypatch):
    ws = workspace(tmp_path, where, promotion__allow_pipeline_approval='true')
    monkeypatch.setenv('WORKBENCH_SIGNING_KEY', str(approver_key(ws, 'ci-pipeline')))  # the pipeline signs its approval
    credit = data.commit(ws, 'credit', demo.training_frame(portfolio, 2), 'two months', 'demo')
    t0 = time.perf_counter()
    runs = pipelines.run_ci(ws, dict(demo.PIPELINE_PARAMS), actor='ana')  # the demo's columns and names: no suite records them here
    took = time.perf_counter() - t0
    print('\n'.join(map(str, runs)), f'\nci took {took:.1f} s')
    assert [(r.pipeline, r.status) for r in runs] == [(n, 'ok') for n in pipelines.CI], [r.error for r in runs]
    assert took < 150
    validate, train, evaluate, promote, deploy = runs
    assert validate.results['dataset'] == f'credit@{credit.id}' and train.params['dataset'] == f'credit@{credit.id}'
    assert len(train.results['run_ids']) == 2 and evaluate.params['run_id'] == promote.params['run_id'] == train.results['run_id']
    assert promote.results['message'] == 'credit-default/1 is now the champion'
    assert deploy.params['model_version'] == 'credit-default/1' and deploy.results['outcome'] == 'champion already'

    champion = registry.champion(ws, 'credit-default')  # registered by the person who ran it, approved by the pipeline
    assert (champion.version, champion.run_id, champion.registered_by, champion.approvals) == (1, train.results['run_id'], 'ana', ['ci-pipeline'])
    assert champion.dataset == credit.ref and champion.gates_passed

    best = train.results['run_id']  # the candidate's MLflow run holds the whole chain
    kept = {a.path.split('-')[-1] for a in registry.client(ws).list_artifacts(best, 'pipelines')}
    assert kept == {'validate.ipynb', 'train.ipynb', 'evaluate.ipynb', 'promote.ipynb'}
    assert 'auc = 0.' in outputs(ws, evaluate.notebook) and 'image/png' in notebook_text(ws, train.notebook)
    assert registry.client(ws).get_run(best).data.tags['workbench.source'].endswith('pipelines/train.ipynb')

    h = pipelines.history(ws)
    assert h.pipeline.tolist() == ['deploy', 'promote', 'evaluate', 'train', 'validate'] and set(h.status) == {'ok'} and h.chain.nunique() == 1
    assert f'runs:/{best}/pipelines/' in h.mlflow[1] and h.notebook[1] == promote.notebook and h.notebook[0] == deploy.notebook
    assert audit.log(ws, action='pipeline.run').subject.tolist() == [f'pipeline/{n}' for n in reversed(pipelines.CI)]
    assert audit.verify(ws).ok

    # issue 22: the champion trained again from its recorded recipe, in a fresh run: reproduced. Usually the same ONNX
    # bytes; on a loaded machine multithreaded BLAS can move lbfgs's coefficients in their last bits, so the held-out
    # metrics decide then (reproducibility.metric_tolerance)
    again = rebuild.rebuild(ws, 'credit-default@champion', actor='auditor')
    print('rebuild:', {k: again[k] for k in ('same_onnx', 'reproduced')}, {k: m['difference'] for k, m in again['metrics'].items()})
    assert again['reproduced'] and again['rebuilt_run'] != best, again
    assert audit.log(ws, action='model.rebuild').reason.tolist() == ['reproduced'] and audit.verify(ws).ok


def bad_versions(portfolio) -> dict:
    base = demo.training_frame(portfolio, 2)
    holes = np.random.default_rng(0).random(len(base)) < 0.4
    return {'credit_missing': (base.drop(columns='income'), ['income: column missing']),
            'credit_nulls': (base.assign(debt_to_income=base.debt_to_income.mask(holes)), ['debt_to_income: missing 0.4']),
            'credit_shift': (demo.training_frame(portfolio, [10, 11, 12]), ["product: unseen 'bnpl'", 'income: ks'])}


@pytest.mark.parametrize('name', ['credit_missing', 'credit_nulls', 'credit_shift'])
def test_ci_stops_at_bad_data(tmp_path, where, portfolio, name):
    ws = workspace(tmp_path, where)
    frame, expected = bad_versions(portfolio)[name]
    data.commit(ws, name, demo.training_frame(portfolio, 2), 'months 1-2: the suite is inferred from this first version')
    bad = data.commit(ws, name, frame, 'a bad version')
    runs = pipelines.run_ci(ws, {'dataset': name})
    print(runs[-1].error)
    assert [(r.pipeline, r.status) for r in runs] == [('validate', 'failed')]
    err = runs[0].error
    assert re.match(r'pipeline validate failed in cell \d+ \(".+"\): ' + re.escape(f'{bad.ref} fails '), err), err
    assert all(e in err for e in expected), err
    assert runs[0].results['status'] == 'failed' and runs[0].results['failures']
    assert 'PipelineFailed' in outputs(ws, runs[0].notebook)  # the executed notebook is kept, failure and all
    assert pipelines.history(ws).status.tolist() == ['failed'] and name not in set(registry.versions(ws).name)


def tumours():
    "A table that is not the demo's: scikit-learn's breast-cancer data, a text column with gaps, a text label, a key."
    from sklearn.datasets import load_breast_cancer
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.rename(columns=lambda c: c.replace(' ', '_')).assign(
        patient=[f'P{i:04d}' for i in range(len(X))], site=np.random.default_rng(0).choice(['north', 'south', None], len(X)),
        diagnosis=np.where(y == 0, 'malignant', 'benign'))


def test_any_dataset_and_a_failing_gate(tmp_path, where):
    ws = workspace(tmp_path, where, gates__min_auc='0.999')  # a --set flag reaches the notebooks
    data.commit(ws, 'tumours', tumours(), 'Wisconsin breast cancer')
    given = {'dataset': 'tumours', 'target': 'diagnosis', 'keys': 'patient', 'sensitive': 'None', 'experiment': 'tumours'}
    train = pipelines.run(ws, 'train', given | {'models': 'logistic'})
    assert train.ok, train.error
    assert 'site' in train.results['features'] and 'patient' not in train.results['features']
    ev = pipelines.run(ws, 'evaluate', {'experiment': 'tumours', 'model_name': 'tumours'})  # run_id: train's best
    print(ev.error)
    assert ev.status == 'failed' and ev.results['run_id'] == train.results['run_id']
    assert re.fullmatch(r'pipeline evaluate failed in cell \d+ \(".+"\): gate auc = 0\.99\d+ FAILS >= 0\.999 \(gates\.min_auc\)', ev.error), ev.error
    assert ev.mlflow_run_ids == [train.results['run_id']]  # the failed notebook is attached to the candidate's run
    pr = pipelines.run(ws, 'promote', {'experiment': 'tumours', 'model_name': 'tumours'})
    assert pr.status == 'failed' and 'fails gate auc' in pr.error and 'not registered' in pr.error and 'tumours' not in set(registry.versions(ws).name)


def test_bad_requests(tmp_path):
    ws = workspace(tmp_path)
    for call, message in [(lambda: pipelines.run(ws, 'trian'), "no pipeline notebook 'trian'"),
                          (lambda: pipelines.run(ws, 'train', {'test_sise': 0.3}), "pipeline train has no parameter 'test_sise'"),
                          (lambda: pipelines.run(ws, 'train', {'seed': 'abc'}), "parameter seed must be a whole number, got 'abc'"),
                          (lambda: pipelines.run(ws, 'train', {'workspace': '/tmp'}), 'set by the runner'),
                          (lambda: pipelines.run_ci(ws, {'colour': 'red'}), "no pipeline of ci has a parameter 'colour'"),
                          (lambda: pipelines.run(ws, 'ci'), 'run it with run_ci')]:
        with pytest.raises(WorkbenchError, match=re.escape(message)): call()
    r = pipelines.run(ws, 'validate', {'dataset': 'nothing'})
    assert r.status == 'failed' and "no dataset named 'nothing'" in r.error and 'failed in cell' in r.error


def test_notebooks_run_top_to_bottom_as_a_person_runs_them(tmp_path, wb, env, monkeypatch):
    "A fresh workspace with the demo data, then each notebook with its default parameters, in a plain kernel started in pipelines/."
    from nbclient import NotebookClient
    wb('demo', '--months', '6', '--rows-per-month', '1000', '--data-only')
    monkeypatch.setenv('WORKBENCH_HOME', env['WORKBENCH_HOME']); monkeypatch.setenv('WORKBENCH_ACTOR', 'tester')
    for name in pipelines.CI:
        nb = nbformat.read(pipelines.PIPELINES/f'{name}.ipynb', as_version=4)
        if name == 'deploy':  # no champion to canary against: the notebook ends early, saying so
            with pytest.raises(Exception, match='has no champion yet'): NotebookClient(nb, kernel_name='python3', timeout=300, resources={'metadata': {'path': str(pipelines.PIPELINES)}}).execute()
            continue
        NotebookClient(nb, kernel_name='python3', timeout=300, resources={'metadata': {'path': str(pipelines.PIPELINES)}}).execute()
        assert not [o for c in nb.cells for o in c.get('outputs', []) if o.output_type == 'error'], name
        last = nb.cells[-1].outputs[-1]['data']['text/plain']
        assert ('awaiting approval' if name == 'promote' else ' ok') in last, (name, last)
    ws = open_workspace(env['WORKBENCH_HOME'], load_settings(env={}))
    mv = registry.get(ws, 'credit@challenger')  # named after its dataset by default; the default policy waits for a person's approval
    assert mv.registered_by == 'tester' and mv.approvals == [] and mv.dataset == data.resolve(ws, 'credit').ref


def test_cli(tmp_path, wb, portfolio):
    "`workbench pipeline run ci` stops at bad data with exit 1 and the reason; `pipeline list` shows it."
    ws = open_workspace(tmp_path/'ws', load_settings(env={}))
    frame, expected = bad_versions(portfolio)['credit_shift']
    data.commit(ws, 'credit', demo.training_frame(portfolio, 2), 'months 1-2'); data.commit(ws, 'credit', frame, 'months 10-12')
    r = wb('pipeline', 'run', 'ci', '-p', 'dataset=credit', check=False)
    out = r.stdout + r.stderr
    assert r.returncode == 1 and 'pipeline validate failed in cell' in out and all(e in out for e in expected), out
    listed = wb('pipeline', 'list').stdout
    assert 'validate' in listed and 'failed' in listed


# ---------------------------------------------------------------------------------------------------------
# Issue 17: targets. A text binary target, a multiclass one and a regression one, each through
# `workbench pipeline run ci`, batch scoring, late labels and realized performance.

def _frames() -> dict:
    "Three small public tables with a key each: breast cancer (text labels), wine (3 classes), diabetes (a number)."
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    cancer = X.iloc[:, :8].rename(columns=lambda c: c.replace(' ', '_')).assign(patient=[f'P{i:04d}' for i in range(len(X))],
                                                                                diagnosis=np.where(y == 0, 'malignant', 'benign'))
    wine = load_wine(as_frame=True).frame.rename(columns=lambda c: c.replace('/', '_')).assign(bottle=lambda d: [f'B{i:03d}' for i in range(len(d))])
    diabetes = load_diabetes(as_frame=True).frame.assign(patient=lambda d: [f'D{i:03d}' for i in range(len(d))])
    return {'tumours': (cancer, 'diagnosis', 'patient'), 'wine': (wine, 'target', 'bottle'), 'diabetes': (diabetes, 'target', 'patient')}


@pytest.fixture(scope='module')
def tasks(tmp_path_factory):
    "One workspace; the three datasets committed, through `pipeline run ci` at once (three processes), and batch-scored whole (every row logged)."
    import sys
    from pathlib import Path
    from workbench import batch
    root = tmp_path_factory.mktemp('tasks')
    (root/'settings.ini').write_text('[promotion]\nallow_pipeline_approval = true\n')  # the team lets CI approve what passes
    ws = open_workspace(root/'ws', load_settings(root/'settings.ini', env={}), create=True)
    env = clean_env(WORKBENCH_HOME=str(root/'ws'), WORKBENCH_ACTOR='tester', WORKBENCH_SIGNING_KEY=str(approver_key(ws, 'ci-pipeline')))
    cmd = [str(Path(sys.executable).parent/'workbench'), '--set', 'gates.min_r2=0.3']
    def wb(*args, check=True):
        r = subprocess.run(cmd + list(map(str, args)), cwd=root, env=env, capture_output=True, text=True, timeout=600)
        if check: assert r.returncode == 0, f"workbench {' '.join(map(str, args))}:\n{r.stdout}\n{r.stderr}"
        return r
    frames, running = _frames(), {}
    for name, (frame, target, key) in frames.items():
        data.commit(ws, name, frame, 'as scikit-learn ships it')
        running[name] = subprocess.Popen(cmd + ['pipeline', 'run', 'ci', '-p', f'dataset={name}', '-p', f'target={target}', '-p', f'keys={key}', '-p', 'sensitive=None',
                                                '-p', f'experiment={name}', '-p', f'model_name={name}'], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = {}
    for name, (frame, target, key) in frames.items():
        ci = running[name].communicate(timeout=900)[0]
        assert running[name].returncode == 0, ci
        frame.to_parquet(root/f'{name}.parquet')
        scored = batch.score(ws, f'{name}@champion', str(root/f'{name}.parquet'), root/f'{name}-scores.parquet', keys=[key])
        out[name] = dict(frame=frame, target=target, key=key, ci=ci, scored=scored)
    return ws, wb, root, out


def test_each_task_goes_through_ci(tasks):
    ws, wb, root, out = tasks
    for name, task, metric in [('tumours', 'binary', 'AUC'), ('wine', 'multiclass', 'AUC'), ('diabetes', 'regression', 'R²')]:
        lines = out[name]['ci'].splitlines()
        assert [l.split()[:2] for l in lines if not l.startswith(' ')] == [[p, 'ok'] for p in pipelines.CI], out[name]['ci']
        assert f'held-out rows ({metric} ' in out[name]['ci'] and f'{name}/1 is now the champion' in out[name]['ci']
        mv = registry.champion(ws, name)
        tags = registry.client(ws).get_model_version(name, '1').tags
        assert tags['workbench.task'] == task and json.loads(tags['workbench.keys']) == [out[name]['key']]
        report = registry.gate_report(ws, mv.run_id)
        assert report.passed and report.gates[0].name == ('r2' if task == 'regression' else 'auc')
        assert report.gate('fairness_gap').passed is None  # no sensitive column: skipped, not passed
    # the text target: malignant (37% of rows, the clear minority) is the positive class, recorded, and what the score is the probability of
    tags = registry.client(ws).get_model_version('tumours', '1').tags
    assert tags['workbench.positive_class'] == 'malignant' and json.loads(tags['workbench.classes']) == ['benign', 'malignant']
    import pyarrow.parquet as pq
    s = pq.read_table(root/'tumours-scores.parquet').to_pandas().merge(out['tumours']['frame'][['patient', 'diagnosis']], on='patient')
    assert ((s.probability >= 0.5) == (s.prediction == 'malignant')).all() and ((s.prediction == s.diagnosis).mean() > 0.85)
    # multiclass candidates trained on three classes; regression candidates are regressors
    assert registry.client(ws).get_run(registry.champion(ws, 'diabetes').run_id).data.params['model'] in ('linear', 'gradient_boosting')


def test_a_binary_target_whose_positive_class_cannot_be_told(tasks):
    ws, wb, root, out = tasks
    frame = out['tumours']['frame'].assign(sex=np.resize(['male', 'female'], len(out['tumours']['frame'])))
    data.commit(ws, 'people', frame.drop(columns='diagnosis'), 'a balanced text target')
    r = wb('pipeline', 'run', 'train', '-p', 'dataset=people', '-p', 'target=sex', '-p', 'keys=patient', '-p', 'sensitive=None', '-p', 'experiment=people', check=False)
    assert r.returncode == 1 and "target 'sex' has two classes, 'female' and 'male', and neither is clearly the positive one" in r.stdout + r.stderr
    assert '-p positive_class=female or -p positive_class=male' in r.stdout + r.stderr


def _logged(ws, name) -> pd.DataFrame:
    return ws.sql("select request_id, score, prediction, outputs from predictions where model = ? order by request_id", [name]).df()


def test_labels_and_realized_performance_for_each_task(tasks, tmp_path):
    from sklearn import metrics as m
    ws, wb, root, out = tasks
    # item 5: no labels at all, then labels for another model only: a sentence each, no traceback
    r = wb('monitor', 'performance', 'tumours@champion', '--window', '1000rows', check=False)
    assert r.returncode == 1 and 'no labels yet' in r.stderr and 'monitor labels ingest' in r.stderr and 'Traceback' not in r.stderr
    for name in ['wine', 'diabetes', 'tumours']:
        frame, target = out[name]['frame'], out[name]['target']
        log = _logged(ws, name)
        assert len(log) == len(frame) and log.request_id.nunique() == len(frame)  # a request id per batch row
        row = log.request_id.str.rsplit('-', n=1).str[1].astype(int)
        labels = pd.DataFrame({'request_id': log.request_id, 'label': frame[target].to_numpy()[row]})
        labels.to_csv(tmp_path/f'{name}.csv', index=False)
        if name == 'tumours':  # item 5 again: the labels table exists, but none is for this model
            r = wb('monitor', 'performance', 'tumours@champion', '--window', '1000rows')
            assert "no window of tumours@champion's prediction log has labels yet" in r.stdout and '--model tumours@champion' in r.stdout
            r = wb('monitor', 'labels', 'ingest', tmp_path/f'{name}.csv', check=False)  # text labels need the model's positive class
            assert r.returncode == 1 and 'name the model with --model' in r.stderr
        assert f'{len(frame)} labels ingested' in wb('monitor', 'labels', 'ingest', tmp_path/f'{name}.csv', '--model', f'{name}@champion').stdout
        perf = performance.performance(ws, f'{name}@champion', window=f'{len(frame)}rows').set_index('metric').value
        y = frame[target].to_numpy()[row]
        if name == 'tumours':
            yb = (y == 'malignant').astype(int)
            assert np.isclose(perf['auc'], m.roc_auc_score(yb, log.score)) and perf['auc'] > 0.9
            assert np.isclose(perf['accuracy'], m.accuracy_score(yb, log.score >= 0.5)) and np.isclose(perf['brier'], m.brier_score_loss(yb, log.score))
        elif name == 'wine':
            p = np.array([json.loads(o)['probabilities'] for o in log.outputs])
            assert set(perf.index) == {'accuracy', 'log_loss'}
            assert np.isclose(perf['accuracy'], m.accuracy_score(y, log.prediction.astype(float))) and np.isclose(perf['log_loss'], m.log_loss(y, p, labels=[0, 1, 2]))
        else:
            assert set(perf.index) == {'rmse', 'mae', 'r2'}
            assert np.isclose(perf['rmse'], np.sqrt(m.mean_squared_error(y, log.score))) and np.isclose(perf['r2'], m.r2_score(y, log.score))
    # the CLI shows the task's metrics
    shown = wb('monitor', 'performance', 'diabetes@champion', '--window', '442rows', '--format', 'csv')
    assert 'no window with new labels' in shown.stdout  # recorded above; nothing new


def test_labels_join_only_on_what_the_model_has(tasks, tmp_path):
    ws, wb, root, out = tasks
    pd.DataFrame({'bottle': ['B001'], 'target': [1]}).to_csv(tmp_path/'l.csv', index=False)
    r = wb('monitor', 'labels', 'ingest', tmp_path/'l.csv', '--key', 'bottle', '--on', 'colour', '--model', 'wine@champion', check=False)
    assert r.returncode == 1 and "labels cannot join on 'colour': it is neither request_id nor a key (bottle) or an input (alcohol, " in r.stderr
    assert 'of wine/1; choose one of those with --on' in r.stderr and 'Traceback' not in r.stderr
    r = wb('monitor', 'labels', 'ingest', tmp_path/'l.csv', '--key', 'bottle', '--on', 'colour', check=False)  # without --model: the logged models'
    assert r.returncode == 1 and 'any model in the prediction log' in r.stderr
    pd.DataFrame({'patient': ['P0001'], 'diagnosis': ['maybe']}).to_csv(tmp_path/'t.csv', index=False)
    r = wb('monitor', 'labels', 'ingest', tmp_path/'t.csv', '--key', 'patient', '--model', 'tumours@champion', check=False)
    assert r.returncode == 1 and "holds 'maybe', which is not a class of tumours/1 (its classes are 'benign' and 'malignant')" in r.stderr
    before = ws.sql("select count(*) from labels").fetchall()[0][0]
    assert '1 labels ingested' in wb('monitor', 'labels', 'ingest', tmp_path/'l.csv', '--key', 'bottle', '--model', 'wine@champion').stdout
    assert ws.sql("select key_column from labels order by ingested_at desc limit 1").fetchall()[0][0] == 'bottle'  # a key of the model: joined on it
    assert ws.sql("select count(*) from labels").fetchall()[0][0] == before + 1


def test_batch_rows_logged_with_their_keys_join_labels_on_them(tasks, tmp_path):
    "A batch sample that carries the key column logs it with the row; labels keyed by it join on the model's key (tag workbench.keys)."
    import pyarrow as pa
    from datetime import datetime, timezone
    from sklearn.metrics import roc_auc_score
    from workbench import arrow_batches, batch
    ws, wb, root, out = tasks
    frame = out['tumours']['frame']
    onnx_bytes, mv = registry.load_onnx(ws, 'tumours@champion')
    d = arrow_batches.batch_model(mv.name, mv.version, onnx_bytes)
    rb = pa.RecordBatch.from_pandas(frame, preserve_index=False)
    raw, sample = {}, batch.Sample(10_000)
    arrow_batches.score_batch(d, rb, arrow_batches.output_schema(d, rb.schema, ['patient']), 0, raw)
    sample.add(rb, d.names + ['patient'], raw, 0)
    assert batch.log_sample(ws, d, sample.table(), 'batch-keys', datetime.now(timezone.utc)) == len(frame)
    logged = ws.sql("select request_id, score, json_extract_string(inputs, '$.patient') as patient from predictions where starts_with(request_id, 'batch-keys-') order by request_id").df()
    assert logged.patient.tolist() == frame.patient.tolist() and logged.request_id.iloc[12] == 'batch-keys-0000000012'
    frame[['patient', 'diagnosis']].to_parquet(tmp_path/'late.parquet')
    assert f'{len(frame)} labels ingested' in wb('monitor', 'labels', 'ingest', tmp_path/'late.parquet', '--key', 'patient', '--model', 'tumours@champion').stdout
    total = ws.sql("select count(*) from predictions where model = 'tumours'").fetchall()[0][0]
    perf = performance.performance(ws, 'tumours@champion', window=f'{total}rows')  # joined on patient, the model's key: only the rows that logged it
    auc = perf.set_index('metric')
    keyed = ws.sql("select score, json_extract_string(inputs, '$.patient') as patient from predictions "
                   "where model = 'tumours' and json_extract_string(inputs, '$.patient') is not null").df()  # this sample and the fixture's batch run
    assert auc.labelled.iloc[0] == len(keyed) >= len(frame)
    keyed = keyed.merge(frame, on='patient')
    expected = roc_auc_score(keyed.diagnosis.eq('malignant'), keyed.score)
    assert np.isclose(auc.value['auc'], expected) and expected > 0.9
