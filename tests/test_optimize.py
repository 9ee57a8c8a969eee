"Issue 24: `workbench optimize` makes a cheaper version of a registered one, gates it against its parent, registers it with its lineage; each method on real models."
import json, subprocess
import numpy as np
import onnx
import pytest
from conftest import BIN, clean_env
from workbench import audit, data, demo, deployed, optimize, pipelines, registry, training
from workbench.config import WorkbenchError
from workbench.deployed import OnnxModel


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "A workspace where the train pipeline trained a forest, a boosted model, a logistic regression and an MLP on the demo data, each registered."
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    root = tmp_path_factory.mktemp('optimize')
    ws = open_workspace(root/'ws', load_settings(env={}))
    credit = data.commit(ws, 'credit', demo.training_frame(demo.generate(months=2, rows_per_month=900), 2), 'two months', 'ana')
    params = {k: v for k, v in demo.PIPELINE_PARAMS.items() if k in pipelines.parameters('train')}
    r = pipelines.run(ws, 'train', params | {'dataset': credit.ref, 'models': 'random_forest,gradient_boosting,logistic,mlp'})
    assert r.ok, r.error
    refs = {c['model']: registry.register(ws, c['run_id'], 'credit-default', actor='ci-pipeline').ref for c in r.results['candidates']}
    return ws, refs


def held_out(ws, ref):
    "The parent's held-out rows, as its training run split them."
    return training.candidate(ws, registry.get(ws, ref).run_id).rows(ws)[1]


def auc(model_bytes, rows):
    from sklearn.metrics import roc_auc_score
    return roc_auc_score(rows.defaulted == 1, OnnxModel(model_bytes).predict_proba(rows)[:, -1])


def test_graph_keeps_the_scores_in_float32_and_registers_with_lineage(trained):
    ws, refs = trained
    parent = refs['random_forest']
    o = optimize.optimize(ws, parent, 'graph', actor='ana', latency_rows=100)
    new, old = registry.load_onnx(ws, o.version.ref)[0], registry.load_onnx(ws, parent)[0]
    rows = held_out(ws, parent)
    assert np.abs(OnnxModel(new).predict_proba(rows) - OnnxModel(old).predict_proba(rows)).max() < 1e-4
    trees = [n for n in onnx.load_from_string(new).graph.node if n.op_type in optimize.TREES]
    assert trees and 'float32' in o.note and all(a.t.data_type == onnx.TensorProto.FLOAT for a in trees[0].attribute if a.name.endswith('_as_tensor'))
    assert o.report.passed and o.version.gates_passed and abs(o.report.gate('metric_loss').value) < 1e-6
    assert o.comparison.loc['size_bytes', 'optimized'] == len(new) < 0.85 * len(old) == 0.85 * o.comparison.loc['size_bytes', 'parent']
    # lineage: the registry's tags, the run, the audit log
    tags = registry.client(ws).get_model_version('credit-default', str(o.version.version)).tags
    lineage = json.loads(tags['workbench.optimization'])
    assert (tags['workbench.parent'], lineage['method'], lineage['settings']) == (parent, 'graph', {'float32': True})
    assert lineage['dataset'] == training.candidate(ws, registry.get(ws, parent).run_id).dataset and lineage['test_size'] == 0.25
    e = audit.log(ws, action='model.optimize', subject=o.version.ref).iloc[0]
    assert (e.actor, json.loads(e.before), json.loads(e.after)['parent'], json.loads(e.after)['gates_passed']) == ('ana', {'parent': parent}, parent, True)
    assert 'model.optimize' in [x['action'] for x in registry.lineage(ws, o.version.ref)['events']]
    # like any candidate: the evaluate pipeline's reading of it, and the challenger alias a canary needs
    assert training.candidate(ws, o.version.run_id).rows(ws)[1].index.equals(rows.index)
    assert 'challenger' in registry.set_challenger(ws, o.version.ref, actor='ana').aliases


def test_prune_keeps_the_fewest_trees_within_the_tolerance(trained):
    ws, refs = trained
    parent = refs['random_forest']
    rows = held_out(ws, parent)
    o = optimize.optimize(ws, parent, 'prune', latency_rows=100)
    new = registry.load_onnx(ws, o.version.ref)[0]
    k = o.settings['trees']
    assert optimize.tree_count(new) == k < 100 and o.settings['of'] == 100
    loss = auc(registry.load_onnx(ws, parent)[0], rows) - auc(new, rows)
    assert loss <= ws.settings['optimization.max_metric_loss'] and o.report.gate('metric_loss').value == pytest.approx(loss, abs=1e-9)
    if k > 1:  # the smallest such prefix: one tree fewer loses more than the tolerance (among the counts tried)
        fewer = max(n for n in optimize._grid(100) if n < k)
        assert auc(registry.load_onnx(ws, parent)[0], rows) - auc(optimize.first_trees(registry.load_onnx(ws, parent)[0], fewer), rows) > 0.005
    assert o.comparison.loc['size_bytes', 'ratio'] < 1


def test_prune_drops_the_columns_a_linear_model_does_not_need_and_still_takes_every_request(trained):
    ws, refs = trained
    parent = refs['logistic']
    o = optimize.optimize(ws, parent, 'prune', latency_rows=100)
    dropped = o.settings['dropped']
    assert dropped and o.report.gate('metric_loss').passed and o.report.gate('parity').value < 1e-4
    new, old = registry.load_onnx(ws, o.version.ref)[0], registry.load_onnx(ws, parent)[0]
    assert [i.name for i in OnnxModel(new).inputs] == [i.name for i in OnnxModel(old).inputs]  # the parent's requests
    rows = held_out(ws, parent).head(5)
    served = deployed.Deployed.from_bytes('credit-default', o.version.version, new)
    columns = {c: rows[c].astype(object).where(rows[c].notna(), None).tolist() for c in served.names}
    out = served.run(served.feeds(columns, len(rows)))
    changed = rows.assign(**{c: rows[c].iloc[::-1].to_numpy() for c in dropped})  # what it no longer reads does not move its scores
    np.testing.assert_allclose(OnnxModel(new).predict_proba(changed), out['probabilities'], atol=1e-12)


def test_distill_trains_a_small_student_that_scores_faster(trained):
    ws, refs = trained
    parent = refs['random_forest']
    o = optimize.optimize(ws, parent, 'distill', latency_rows=100, trees=20, depth=3)
    assert o.settings == {'student': 'boosted', 'trees': 20, 'depth': 3} and o.report.gate('parity').value < 1e-4
    c = o.comparison
    assert c.loc['size_bytes', 'ratio'] < 0.2 and c.loc['batch_rows_per_s', 'ratio'] > 1.5
    new = registry.load_onnx(ws, o.version.ref)[0]
    assert OnnxModel(new).metadata['estimator'] == 'GradientBoostingClassifier'
    rows = held_out(ws, parent)
    teacher, student = OnnxModel(registry.load_onnx(ws, parent)[0]).predict_proba(rows)[:, 1], OnnxModel(new).predict_proba(rows)[:, 1]
    assert np.corrcoef(teacher, student)[0, 1] > 0.8
    assert c.loc['auc', 'optimized'] == pytest.approx(auc(new, rows), abs=1e-9)


def test_quantize_an_mlp_to_int8(trained):
    ws, refs = trained
    parent = refs['mlp']
    o = optimize.optimize(ws, parent, 'quantize', latency_rows=100)
    new = registry.load_onnx(ws, o.version.ref)[0]
    ops = {n.op_type for n in onnx.load_from_string(new).graph.node}
    assert {'MatMulInteger', 'DynamicQuantizeLinear'} <= ops and 'int8 weights (dynamic)' in o.note
    rows = held_out(ws, parent)
    moved = np.abs(OnnxModel(new).predict_proba(rows) - OnnxModel(registry.load_onnx(ws, parent)[0]).predict_proba(rows)).max()
    assert 0 < moved < 0.1 and o.report.gate('metric_loss').value == pytest.approx(auc(registry.load_onnx(ws, parent)[0], rows) - auc(new, rows), abs=1e-9)
    static = optimize.optimize(ws, parent, 'quantize', latency_rows=50, mode='static', calibration_rows=100)
    assert static.settings == {'mode': 'static', 'calibration_rows': 100}
    assert 'QuantizeLinear' in {n.op_type for n in onnx.load_from_string(registry.load_onnx(ws, static.version.ref)[0]).graph.node}



def test_what_is_registered_is_what_was_measured(trained):
    "ONNX Runtime writes weights as raw bytes, which MLflow's ONNX flavour would move out of model.onnx: the registered model is whole."
    ws, refs = trained
    o = optimize.optimize(ws, refs['mlp'], 'graph', latency_rows=50)
    new, rows = registry.load_onnx(ws, o.version.ref)[0], held_out(ws, refs['mlp'])
    assert len(new) == o.comparison.loc['size_bytes', 'optimized']
    parent = OnnxModel(registry.load_onnx(ws, refs['mlp'])[0])
    assert np.abs(OnnxModel(new).predict_proba(rows) - parent.predict_proba(rows)).max() < 1e-4
    assert o.report.gate('parity').passed and o.report.gate('metric_loss').passed

@pytest.mark.parametrize('model, method, settings, message', [
    ('random_forest', 'quantize', {}, 'a RandomForestClassifier is trees, so use --method graph, prune or distill'),
    ('mlp', 'prune', {}, 'pruning applies to tree ensembles and linear models, and a MLPClassifier is neither'),
    ('random_forest', 'prune', {'tolerance': -1}, 'there is nothing to prune'),
    ('random_forest', 'shrink', {}, 'method must be one of graph, prune, distill, quantize'),
    ('random_forest', 'distill', {'layers': 3}, 'distill takes no setting'),
    ('random_forest', 'distill', {'student': 'forest'}, 'student must be one of boosted, linear'),
])
def test_refusals_say_why_and_register_nothing(trained, model, method, settings, message):
    ws, refs = trained
    before = len(registry.versions(ws, 'credit-default'))
    with pytest.raises(WorkbenchError, match=message.replace('(', r'\(')):
        optimize.optimize(ws, refs[model], method, **settings)
    assert len(registry.versions(ws, 'credit-default')) == before


def test_the_command_line(trained):
    ws, refs = trained
    env = clean_env(WORKBENCH_HOME=str(ws.root), WORKBENCH_ACTOR='bea')
    run = lambda *a: subprocess.run([str(BIN/'workbench'), *a], env=env, capture_output=True, text=True, timeout=300)
    r = run('optimize', refs['gradient_boosting'], '--method', 'distill', '-s', 'student=linear')
    assert r.returncode == 0, r.stderr
    assert 'parent' in r.stdout and 'optimized' in r.stdout and 'batch_rows_per_s' in r.stdout and 'metric_loss' in r.stdout
    ref = r.stdout.strip().splitlines()[-1].split(':')[0]
    assert json.loads(registry.client(ws).get_model_version(*ref.split('/')).tags['workbench.optimization'])['settings'] == {'student': 'linear'}
    assert audit.log(ws, action='model.optimize', subject=ref).iloc[0].actor == 'bea'
    r = run('optimize', refs['random_forest'], '--method', 'quantize')
    assert r.returncode == 1 and r.stderr.startswith('Error: quantisation applies to linear models and MLPs')
    r = run('--set', 'optimization.max_metric_loss=-0.5', 'optimize', refs['random_forest'])  # graph, asked to gain half an AUC: it fails the gate
    assert r.returncode == 1 and 'fails gate metric_loss' in r.stderr and 'it is registered' in r.stderr, r.stderr


def test_the_pipeline_step(trained):
    "pipelines/optimize.ipynb, as CI runs it: the version, its lineage and the side-by-side figures in its results."
    ws, refs = trained
    r = pipelines.run(ws, 'optimize', dict(model=refs['random_forest'], method='prune', method_settings={'tolerance': 0.004}))
    assert r.ok, r.error
    assert r.results['parent'] == refs['random_forest'] and r.results['method'] == 'prune' and r.results['passed']
    mv = registry.get(ws, r.results['model_version'])
    assert registry.client(ws).get_model_version(mv.name, str(mv.version)).tags['workbench.parent'] == refs['random_forest']
    assert r.results['comparison']['optimized']['size_bytes'] < r.results['comparison']['parent']['size_bytes']
    bad = pipelines.run(ws, 'optimize', dict(model=refs['random_forest'], method='quantize'))
    assert not bad.ok and 'quantisation applies to linear models and MLPs' in bad.error


def test_the_canary_puts_an_optimised_version_against_its_parent(trained):
    "The deploy pipeline on a live server: the parent serves as champion, its pruned version is canaried against it and promoted."
    from conftest import approver_key
    ws, refs = trained
    parent = refs['logistic']
    assert pipelines.run(ws, 'evaluate', dict(run_id=registry.get(ws, parent).run_id)).ok  # its gates, as any champion's
    registry.approve(ws, parent, 'bea', 'the parent', key=approver_key(ws, 'bea'))
    registry.promote(ws, parent, 'bea', 'the parent serves')
    o = optimize.optimize(ws, parent, 'prune', actor='ana')
    registry.approve(ws, o.version.ref, 'bea', 'pruned within optimization.max_metric_loss', key=approver_key(ws, 'bea'))
    r = pipelines.run(ws, 'deploy', {'model_version': o.version.ref, 'share': 0.5}, actor='ci-pipeline')
    assert r.status == 'ok' and r.results['outcome'] == 'promoted', r.message
    assert r.results['decision'] == 'promote' and r.results['errors'] == 0
    assert registry.champion(ws, 'credit-default').version == o.version.version
