"Issue 4: the pipeline notebooks, run by the runner (papermill, as CI does) and top to bottom as a person does (nbclient)."
import json, re, subprocess, time
import nbformat, numpy as np, pytest
from workbench import audit, data, demo, pipelines, registry
from workbench.config import WorkbenchError, load_settings
from workbench.workspace import open_workspace


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    "Kernels inherit the environment: keep the developer's WORKBENCH_* variables out of them."
    import os
    for k in [k for k in os.environ if k.startswith('WORKBENCH_')]: monkeypatch.delenv(k)


@pytest.fixture(scope='module')
def portfolio(): return demo.generate(months=12, rows_per_month=1000)


def workspace(tmp_path, **flags):
    "A workspace in tmp_path with `--set`-style overrides."
    return open_workspace(tmp_path/'ws', load_settings(env={}, overrides={k.replace('__', '.'): v for k, v in flags.items()}))


def outputs(path) -> str:
    "Every text output of an executed notebook, joined."
    nb = nbformat.read(path, as_version=4)
    return '\n'.join(''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/plain', '')) + o.get('ename', '') + ': ' + o.get('evalue', '')
                     for c in nb.cells if c.cell_type == 'code' for o in c.outputs)


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


def test_ci_on_demo_data(tmp_path, portfolio):
    ws = workspace(tmp_path, promotion__allow_pipeline_approval='true')
    credit = data.commit(ws, 'credit', demo.training_frame(portfolio, 2), 'two months', 'demo')
    t0 = time.perf_counter()
    runs = pipelines.run_ci(ws, {'dataset': 'credit'}, actor='ana')
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
    assert 'auc = 0.' in outputs(evaluate.notebook) and 'image/png' in open(train.notebook).read()
    assert registry.client(ws).get_run(best).data.tags['workbench.source'].endswith('pipelines/train.ipynb')

    h = pipelines.history(ws)
    assert h.pipeline.tolist() == ['deploy', 'promote', 'evaluate', 'train', 'validate'] and set(h.status) == {'ok'} and h.chain.nunique() == 1
    assert f'runs:/{best}/pipelines/' in h.mlflow[1] and h.notebook[1] == promote.notebook and h.notebook[0] == deploy.notebook
    assert audit.log(ws, action='pipeline.run').subject.tolist() == [f'pipeline/{n}' for n in reversed(pipelines.CI)]
    assert audit.verify(ws).ok


def bad_versions(portfolio) -> dict:
    base = demo.training_frame(portfolio, 2)
    holes = np.random.default_rng(0).random(len(base)) < 0.4
    return {'credit_missing': (base.drop(columns='income'), ['income: column missing']),
            'credit_nulls': (base.assign(debt_to_income=base.debt_to_income.mask(holes)), ['debt_to_income: missing 0.4']),
            'credit_shift': (demo.training_frame(portfolio, [10, 11, 12]), ["product: unseen 'bnpl'", 'income: ks'])}


@pytest.mark.parametrize('name', ['credit_missing', 'credit_nulls', 'credit_shift'])
def test_ci_stops_at_bad_data(tmp_path, portfolio, name):
    ws = workspace(tmp_path)
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
    assert 'PipelineFailed' in outputs(runs[0].notebook)  # the executed notebook is kept, failure and all
    assert pipelines.history(ws).status.tolist() == ['failed'] and registry.versions(ws).empty


def tumours():
    "A table that is not the demo's: scikit-learn's breast-cancer data, a text column with gaps, a text label, a key."
    from sklearn.datasets import load_breast_cancer
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.rename(columns=lambda c: c.replace(' ', '_')).assign(
        patient=[f'P{i:04d}' for i in range(len(X))], site=np.random.default_rng(0).choice(['north', 'south', None], len(X)),
        diagnosis=np.where(y == 0, 'malignant', 'benign'))


def test_any_dataset_and_a_failing_gate(tmp_path):
    ws = workspace(tmp_path, gates__min_auc='0.999')  # a --set flag reaches the notebooks
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
    assert pr.status == 'failed' and 'fails gate auc' in pr.error and 'not registered' in pr.error and registry.versions(ws).empty


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
    mv = registry.get(ws, 'credit-default@challenger')  # the default policy waits for a person's approval
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
