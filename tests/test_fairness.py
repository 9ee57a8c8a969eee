"Issue 23, fairness in production: the gates' approval and equal-opportunity gaps per window of the demo champion's traffic, realized from late labels and estimated before them."
import shutil
from datetime import datetime, timedelta, timezone
import numpy as np, pandas as pd, pytest
from workbench import alerts, demo, drift, estimate, performance, registry
from workbench.config import WorkbenchError, load_settings
from workbench.deployed import OnnxModel
from workbench.fairness import fairness_history, production_fairness
from workbench.performance import ingest_labels
from workbench.predictions import PredictionLog
from workbench.workspace import open_workspace

REF, N = 'credit-default/1', 4000  # the demo's first champion (trained with gender as its sensitive attribute); rows a window
UNFAIR = 'rows 4001-8000'


def workspace(demo_run, tmp_path):
    "A copy of the demo's workspace without its traffic and labels (this test logs its own), alerts kept in alerts.jsonl."
    root = shutil.copytree(demo_run.ws, tmp_path/'ws')
    for t in ('predictions', 'labels', 'fairness', 'estimates'):  # the demo's traffic and what it measured of it
        shutil.rmtree(root/'tables'/t, ignore_errors=True)
    ws = open_workspace(root, load_settings(env={}, overrides={'alerts.sinks': 'jsonl'}))
    return ws, OnnxModel(registry.load_onnx(ws, REF)[0])


def outputs(model, rows:pd.DataFrame) -> dict:
    return dict(zip(model.outputs, model.session.run(None, model.feeds(rows))))


def traffic(model, seed:int=0) -> list:
    "Four windows of applications with gender drawn at random, but in the second: 16% of women's are declined, 1% of men's."
    p = demo.generate(months=24, rows_per_month=2000, drift_month=25, seed=7)
    apps = p['applications'].drop(columns='gender').merge(p['labels'][['application_id', 'defaulted']], on='application_id')
    apps = apps.assign(score=outputs(model, apps)['probabilities'][:, 1]).sample(frac=1, random_state=seed)
    no, yes = apps[apps.score >= 0.5], apps[apps.score < 0.5]  # the model's decision: declined (defaults), approved
    unfair = pd.concat([no[:320].assign(gender='F'), yes[:1680].assign(gender='F'),
                        no[320:340].assign(gender='M'), yes[1680:3660].assign(gender='M')]).sample(frac=1, random_state=seed)
    rest, rng = pd.concat([no[340:], yes[3660:]]).sample(frac=1, random_state=seed), np.random.default_rng(seed)
    fair = [rest[i * N:(i + 1) * N].assign(gender=rng.choice(['F', 'M'], N)) for i in range(3)]
    return [f.drop(columns='score').reset_index(drop=True) for f in (fair[0], unfair, fair[1], fair[2])]


def log(ws, model, frames:list, version:int=1, carry=('application_id', 'gender')) -> list:
    "Batch-score `frames` in requests of 500 rows, logging the `carry` columns among the inputs; the frames with their logged score."
    plog, start = PredictionLog(ws, flush_seconds=60), datetime.now(timezone.utc) - timedelta(days=1)
    names, out, i = [s['name'] for s in model.signature], [], 0
    for f in frames:
        scored = []
        for b in (f.iloc[j:j + 500] for j in range(0, len(f), 500)):
            o, i = outputs(model, b), i + 1
            plog.add(dict(request_id=f'batch-{i:04d}', time=start + timedelta(seconds=i), model='credit-default',
                          version=version, variant='champion', source='test', latency_ms=1.0),
                     {c: b[c].to_numpy() for c in [*names, *carry]}, len(b), o)
            scored.append(o['probabilities'][:, 1].astype('float64'))
        out.append(f.assign(score=np.concatenate(scored)))
    plog.close()
    return out


def expected(f:pd.DataFrame, cal:dict) -> dict:
    "The window's gaps, computed with pandas on the rows as sent: approval, realized and estimated true positive rates by gender."
    f = f.assign(d=(f.score >= 0.5).astype(float), p=estimate.calibrate(cal, f.score))
    by = f.groupby('gender')
    rates = dict(approval=1 - by.d.mean(), realized=f[f.defaulted == 1].groupby('gender').d.mean(),
                 estimated=by.apply(lambda g: (g.d * g.p).sum() / g.p.sum(), include_groups=False))
    return {k: (r, r.max() - r.min()) for k, r in rates.items()}


def gaps(rows:pd.DataFrame) -> pd.DataFrame:
    "One line per window: each gap's value, sampling error and whether it is unfair."
    g = rows[rows.measure.str.endswith('_gap')]
    out = g.pivot(index='window', columns='measure', values=['value', 'sampling_error', 'unfair', 'baseline', 'labelled'])
    return out.astype({c: float for c in out.columns if c[0] != 'unfair'})


def test_gaps_per_window_alerted_only_where_unfair_estimated_before_the_labels(demo_run, tmp_path):
    ws, model = workspace(demo_run, tmp_path)
    frames = log(ws, model, traffic(model))
    label = lambda f: ingest_labels(ws, f[['application_id', 'defaulted']], key='application_id', on='application_id',
                                    model=REF, actor='ana')
    for f in frames[:2]: label(f)  # the first two windows' outcomes are known; the last two's not yet
    mv = registry.get(ws, REF)
    cal = estimate.calibrator(*performance.held_out(ws, mv, drift.version_roles(ws, mv)))
    want = [expected(f, cal) for f in frames]

    rows = production_fairness(ws, REF, window=f'{N}rows')
    windows = [f'rows {i * N + 1}-{(i + 1) * N}' for i in range(4)]
    assert rows.window.unique().tolist() == windows and set(rows.attribute) == {'gender'}
    g = gaps(rows).loc[windows]
    np.testing.assert_allclose(g.value.approval_gap, [w['approval'][1] for w in want], atol=1e-9)
    np.testing.assert_allclose(g.value.estimated_opportunity_gap, [w['estimated'][1] for w in want], atol=1e-9)
    np.testing.assert_allclose(g.value.opportunity_gap[:2], [w['realized'][1] for w in want[:2]], atol=1e-9)
    assert g.value.opportunity_gap[2:].isna().all() and g.labelled.approval_gap.tolist() == [N, N, 0, 0]
    assert g.value.approval_gap[UNFAIR] > 0.14 and g.value.approval_gap.drop(UNFAIR).max() < 0.02
    approval = rows[(rows.window == UNFAIR) & (rows.measure == 'approval_rate')].set_index('group').value
    np.testing.assert_allclose(approval[['F', 'M']], want[1]['approval'][0][['F', 'M']], atol=1e-12)
    held = registry.client(ws).get_run(mv.run_id).data.metrics
    assert (g.baseline.approval_gap == held['gate.fairness_gap']).all()  # the gates' held-out gap, beside each

    # the alerts: the unfair window's three gaps, and nothing else
    sent = [a for a in alerts.history(ws) if a['kind'] == 'fairness']
    assert sorted(a['details']['measure'] for a in sent) == ['approval_gap', 'estimated_opportunity_gap', 'opportunity_gap']
    assert {a['details']['window'] for a in sent} == {UNFAIR} and {a['subject'] for a in sent} == {REF}
    (a_f, a_m), gap = want[1]['approval'][0][['F', 'M']], want[1]['approval'][1]
    assert sent[0]['message'] == (f"approval rate of gender=F {a_f:.2f} vs gender=M {a_m:.2f} in window {UNFAIR}: "
                                  f"gap {gap:.2f} above fairness.max_approval_gap 0.10"), sent[0]
    assert g.unfair.approval_gap.tolist() == [False, True, False, False]

    # before the labels, the estimate tracks what they later show, within its band
    for f in frames[2:]: label(f)
    rows = production_fairness(ws, REF, window=f'{N}rows')
    g = gaps(rows).loc[windows]
    np.testing.assert_allclose(g.value.opportunity_gap, [w['realized'][1] for w in want], atol=1e-9)
    off = (g.value.opportunity_gap - g.value.estimated_opportunity_gap).abs()
    assert (off <= estimate.BAND * g.sampling_error.estimated_opportunity_gap).all(), pd.concat([off, g.sampling_error], axis=1)
    assert g.unfair.opportunity_gap.tolist() == [False, True, False, False]

    # each window recorded once per labelled count: the last two again with their labels, none a third time
    production_fairness(ws, REF, window=f'{N}rows')
    records = ws.sql('''select "window", count(distinct time) as n from fairness group by all order by all''').df()
    assert dict(zip(records.window, records.n)) == dict(zip(windows, [1, 1, 2, 2]))
    assert len([a for a in alerts.history(ws) if a['kind'] == 'fairness']) == 3  # nothing alerted twice
    assert fairness_history(ws, REF).groupby('window').labelled.max().tolist() == [N, N, N, N]


def test_requests_without_the_attribute_and_bad_input_are_refused_in_one_sentence(demo_run, tmp_path):
    ws, model = workspace(demo_run, tmp_path)
    with pytest.raises(WorkbenchError, match='the workspace has no predictions yet'): production_fairness(ws, REF)
    frames = traffic(model)[:1]
    log(ws, model, frames, carry=('application_id',))  # old traffic, or a client that does not send gender
    with pytest.raises(WorkbenchError) as e: production_fairness(ws, REF, window='2000rows')
    assert str(e.value) == ("the requests logged for credit-default/1 do not carry the sensitive attribute 'gender': send "
                            "gender with each request (it is logged, never fed to the model), or name a column they carry "
                            "with --sensitive")
    assert production_fairness(ws, REF, window='2000rows', sensitive='region').group.str.contains('Northern', na=False).any()
    with pytest.raises(WorkbenchError, match="favourable 'approved' is not a class of credit-default/1"):
        production_fairness(ws, REF, window='2000rows', favourable='approved')
    with pytest.raises(WorkbenchError, match="window '2 weeks' is not valid"): production_fairness(ws, REF, window='2 weeks')
    registry.client(ws).set_model_version_tag('credit-default', '1', 'workbench.sensitive', '')
    with pytest.raises(WorkbenchError, match='credit-default/1 records no sensitive attribute and fairness.sensitive is empty'):
        production_fairness(ws, REF, window='2000rows')
