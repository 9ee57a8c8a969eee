"Issue 3's lifecycle through the CLI: register, refuse a failing gate, approve, promote, roll back, audit; in a folder and on a team's services."
import json
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from conftest import approve, approver_key
from workbench import audit, data, demo, deployed, gates, onnx, registry, tracking

NUM, CAT = ['income', 'credit_score', 'debt_to_income', 'delinquencies_2y', 'employment_years', 'age'], ['product', 'region']


def candidate(ws, credit, model, features, champion=None):
    "Train in a tracked run, export to ONNX, gate on held-out rows, log and register; returns (version, run_id)."
    frame = data.load(ws, credit.ref)
    train, test = frame[:2400], frame[2400:]
    nums, cats = [f for f in features if f in NUM], [f for f in features if f in CAT]
    pre = ColumnTransformer([('num', make_pipeline(SimpleImputer(strategy='median'), StandardScaler()), nums),
                             ('cat', OneHotEncoder(handle_unknown='ignore'), cats)])
    with tracking.start_run(ws, 'credit-default', credit.ref, features, 'defaulted', {'model': type(model).__name__}) as run:
        pipe = make_pipeline(pre, model).fit(train[features], train.defaulted)
        exported = onnx.export(pipe, test[features])
        report = gates.evaluate(deployed.OnnxModel(exported.onnx), test[features], test.defaulted, test.gender, champion,
                                exported.parity.max_abs_diff, ws.settings)
        registry.log_candidate(ws, run.run_id, exported, report)
    return registry.register(ws, run.run_id, 'credit-default', actor='ci-pipeline'), run.run_id


def train_two(ws):
    "A good candidate (version 1) and a weak one (version 2) of credit-default, trained on a committed dataset."
    credit = data.commit(ws, 'credit', demo.training_frame(demo.generate(months=4, rows_per_month=800), 4), 'four months', 'ana')
    good, good_run = candidate(ws, credit, LogisticRegression(max_iter=500), ['credit_score', 'income'])
    weak, _ = candidate(ws, credit, LogisticRegression(), ['region'])
    return ws, credit, good, weak, good_run


@pytest.fixture
def trained(ws): return train_two(ws)


@pytest.fixture(params=['folder', 'team'])
def where(request, ws, env, tmp_path, monkeypatch):
    "The workspace the lifecycle runs in: a folder with MLflow in it, or a team's (on SeaweedFS, MLflow a server on PostgreSQL)."
    if request.param == 'folder': return ws
    store, server = request.getfixturevalue('seaweedfs'), request.getfixturevalue('mlflow_server')
    team = store | dict(WORKBENCH_HOME=f"{store['WORKBENCH_HOME']}/registry", XDG_STATE_HOME=str(tmp_path/'state'),
                        WORKBENCH_WORKSPACE_TRACKING_URI=server.url)
    for k, v in team.items(): monkeypatch.setenv(k, v)
    env.update(team)  # and the `workbench` command
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    ws = open_workspace(None, load_settings(env={'WORKBENCH_WORKSPACE_TRACKING_URI': server.url}))
    assert ws.uri.startswith('s3://') and ws.tracking_uri == server.url
    return ws


def test_lifecycle_through_the_cli(where, wb, tmp_path):
    ws, credit, good, weak, _ = train_two(where)
    assert (good.version, good.gates_passed, weak.version, weak.gates_passed) == (1, True, 2, False)
    listed = json.loads(wb('registry', 'list', 'credit-default', '--format', 'json').stdout)
    assert [v['version'] for v in listed] == [2, 1] and {v['dataset'] for v in listed} == {credit.ref}

    r = wb('registry', 'promote', 'credit-default/1', check=False)  # not approved yet
    assert r.returncode == 1 and 'has 0 of the 1 approvals required (promotion.min_approvals)' in r.stderr
    r = wb('registry', 'approve', 'credit-default/1', '--key', approver_key(ws, 'ci-pipeline'), check=False)  # the registrant
    assert r.returncode == 1 and 'cannot approve' in r.stderr
    assert 'approvals: bea' in wb('registry', 'approve', 'credit-default/1', '--key', approver_key(ws, 'bea'), '-m', 'looks right').stdout
    r = wb('registry', 'approve', 'credit-default/1', '--key', approver_key(ws, 'bea'), check=False)
    assert r.returncode == 1 and 'already approved' in r.stderr

    wb('registry', 'approve', 'credit-default/2', '--key', approver_key(ws, 'bea'))
    r = wb('registry', 'promote', 'credit-default/2', check=False)  # approved, but fails a gate
    assert r.returncode == 1 and 'fails gate auc' in r.stderr and 'gates.min_auc' in r.stderr and 'rule: every gate must pass' in r.stderr

    assert 'credit-default/1 is now the champion' in wb('registry', 'promote', 'credit-default/1', '-m', 'first champion').stdout

    champ = deployed.OnnxModel(registry.load_onnx(ws, 'credit-default@champion')[0])
    better, _ = candidate(ws, credit, LogisticRegression(max_iter=500), NUM + CAT, champion=champ)
    wb('registry', 'challenger', better.ref)
    wb('registry', 'approve', better.ref, '--key', approver_key(ws, 'carla'))
    assert f'{better.ref} is now the champion' in wb('registry', 'promote', 'credit-default@challenger').stdout
    assert 'credit-default/1 is the champion again' in wb('registry', 'rollback', 'credit-default', '-m', 'incident 42').stdout

    hist = json.loads(wb('registry', 'history', 'credit-default', '--format', 'json').stdout)
    assert [(h['alias'], h['from'], h['to']) for h in hist] == [
        ('champion', None, 1), ('challenger', None, 3), ('champion', 1, 3), ('challenger', 3, None), ('champion', 3, 1)]
    assert hist[-1]['action'] == 'model.rollback' and hist[-1]['reason'] == 'incident 42'
    assert 'audit chain intact' in wb('audit', 'verify').stdout
    actions = json.loads(wb('audit', 'log', '-n', '0', '--format', 'json').stdout)
    assert {'dataset.commit', 'model.register', 'model.approve', 'model.promote', 'model.challenger', 'model.rollback'} <= {a['action'] for a in actions}

    lineage = wb('registry', 'lineage', 'credit-default/3').stdout
    assert credit.ref in lineage and 'model.promote' in lineage and 'carla' in lineage

    # issue 22: the technical file, written, proved, and an edited copy refused
    out = wb('registry', 'card', 'credit-default/3', '--out', tmp_path/'cards', '--pdf').stdout
    card = tmp_path/'cards'/'credit-default-3-card.md'
    assert f'md   {card}' in out and (tmp_path/'cards'/'credit-default-3-card.html').exists()
    assert (tmp_path/'cards'/'credit-default-3-card.pdf').read_bytes().startswith(b'%PDF-') and 'pdf  ' in out
    text = card.read_text()
    assert credit.id in text and '| carla |' in text and 'model.rollback' in text and 'incident 42' in text and '## 8. Post-market monitoring plan' in text
    wb('registry', 'approve', 'credit-default/2', '--key', approver_key(ws, 'dan'))  # the workspace moves on
    assert 'is the technical file of credit-default/3' in wb('registry', 'card', 'credit-default/3', '--check', card).stdout
    card.write_text(text.replace('| carla |', '| mallory |'))
    r = wb('registry', 'card', 'credit-default/3', '--check', card, check=False)
    assert r.returncode == 1 and "it says '| mallory |" in r.stderr and 'Traceback' not in r.stderr, r.stderr
    out = wb('registry', 'verify', 'credit-default/3').stdout  # what the approvers signed, on data that has not changed
    assert 'as signed by carla' in out and 'holds what it was committed with' in out and 'credit-default/3 verifies' in out
    r = wb('registry', 'verify', 'credit-default/3', '--rebuild', check=False)  # trained in a notebook by hand: no recipe to run again
    assert r.returncode == 1 and 'was not trained by the train pipeline' in r.stderr and 'Traceback' not in r.stderr, r.stderr


def test_stock_mlflow_client_sees_it(trained):
    from mlflow import MlflowClient
    ws, credit, good, weak, run_id = trained
    approve(ws, good.ref, 'bea'); registry.promote(ws, good.ref, 'bea')
    c = MlflowClient(ws.tracking_uri, registry_uri=ws.tracking_uri)
    mv = c.get_model_version_by_alias('credit-default', 'champion')
    assert (int(mv.version), mv.run_id) == (1, run_id)
    assert mv.tags['workbench.dataset_id'] == credit.id and mv.tags['workbench.gates_passed'] == 'true'
    assert json.loads(mv.tags['workbench.approvals']) == ['bea']
    assert c.get_model_version('credit-default', '2').tags['workbench.gates_passed'] == 'false'
    run = c.get_run(run_id)
    assert run.data.tags['workbench.dataset_id'] == credit.id and 'gate.auc' in run.data.metrics
    assert {a.path for a in c.list_artifacts(run_id)} >= {'gate_report.json', 'parity.json', 'signature.json'}



def test_mlflow_pyfunc_scores_a_dataframe_like_the_workbench(trained):
    "Issue 17, item 14: stock `mlflow.pyfunc` scores a plain DataFrame with the original columns, as the workbench's ONNX path does, under a signature."
    import mlflow, numpy as np
    ws, credit, *_ = trained
    full, _ = candidate(ws, credit, LogisticRegression(max_iter=500), NUM + CAT)
    uri, rows = f'models:/credit-default/{full.version}', data.load(ws, credit.ref)[NUM + CAT].tail(400)
    assert rows.isna().any().any()  # gaps, which the model imputes
    with tracking.using(ws): model, info = mlflow.pyfunc.load_model(uri), mlflow.models.get_model_info(uri)
    mine = deployed.OnnxModel(registry.load_onnx(ws, full.ref)[0])
    assert (model.predict(rows) == mine.predict(rows)).all()
    probabilities = model.predict(rows, params={'predict_method': 'predict_proba'})
    assert list(probabilities.columns) == ['0', '1'] and np.allclose(probabilities.to_numpy(), mine.predict_proba(rows))
    schema = {c.name: (repr(c.type), c.required) for c in info.signature.inputs.inputs}
    gaps = set(rows.columns[data.load(ws, credit.ref)[NUM + CAT].isna().any()])
    assert list(schema) == NUM + CAT and {n for n, (_, required) in schema.items() if not required} == gaps == {'income', 'credit_score', 'employment_years'}
    assert schema['age'] == schema['delinquencies_2y'] == ('long', True) and schema['product'] == ('string', True) and schema['income'][0] == 'double'
    assert info.flavors['python_function']['loader_module'] == 'onnx_pyfunc' and 'onnx' in info.flavors  # our loader, shipped as code: no pickle
    with pytest.raises(Exception, match='age'): model.predict(rows.drop(columns='age'))  # MLflow's schema check names the column

def test_bad_input_leaves_the_registry_unchanged(trained, wb):
    ws, credit, good, weak, run_id = trained
    before = (json.loads(wb('registry', 'list', '--format', 'json').stdout), len(audit.log(ws)))
    for args, message in [(['registry', 'show', 'nope/1'], "no registered model named 'nope'"),
                          (['registry', 'show', 'credit-default/9'], 'has no version 9'),
                          (['registry', 'show', 'credit-default@champion'], 'has no champion alias yet'),
                          (['registry', 'promote', 'Credit Default'], 'is not a model reference'),
                          (['registry', 'rollback', 'credit-default'], 'no earlier champion'),
                          (['registry', 'history', 'nope'], "no registered model named 'nope'")]:
        r = wb(*args, check=False)
        assert r.returncode == 1 and message in r.stderr and 'Traceback' not in r.stderr, (args, r.stderr)
    with pytest.raises(Exception, match='no ONNX model'):
        with tracking.start_run(ws, 'credit-default', credit.ref, ['income'], 'defaulted') as run: pass
        registry.register(ws, run.run_id, 'credit-default')
    with pytest.raises(Exception, match='no MLflow run'):
        registry.register(ws, '0' * 32, 'credit-default')
    assert (json.loads(wb('registry', 'list', '--format', 'json').stdout), len(audit.log(ws))) == before
