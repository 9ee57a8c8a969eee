"""Issue 6: drift in DuckDB equal to scipy and NumPy, the demo's injected drift found exactly, late labels, reports, and the alert → retrain → canary loop.

The tests on a served workspace (`watched`) run twice: in a folder, and on a team's services (the workspace on SeaweedFS,
MLflow a server on PostgreSQL, issue 20)."""
import json, subprocess, sys, time
from pathlib import Path
import duckdb, numpy as np, pandas as pd, pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from workbench import audit, data, demo, deployed, drift, gates, onnx, performance, registry, suites, tracking, traffic
from workbench.alerts import history
from workbench.demo import serve_in_thread
from workbench.stats import STATISTICS, compare, profile_of
from workbench.config import WorkbenchError, load_settings
from workbench.workspace import open_workspace
from conftest import approve, clean_env

BIN = Path(sys.executable).parent
ROWS = 1000  # applications a month, and rows in a drift window: one window per month of traffic
THRESHOLDS = load_settings(env={}).values
# the features the train pipeline chooses for the demo data, so a retrained challenger takes the champion's requests
NUM = ['age', 'income', 'employment_years', 'loan_amount', 'term_months', 'interest_rate', 'credit_score', 'debt_to_income',
       'num_open_accounts', 'delinquencies_2y']
CAT = ['home_ownership', 'purpose', 'product', 'region']


def champion(ws, credit):
    "A gated logistic regression on every feature, registered, approved and promoted."
    frame = data.load(ws, credit.ref)
    train, test = frame[:4500], frame[4500:]
    pre = ColumnTransformer([('num', make_pipeline(SimpleImputer(strategy='median'), StandardScaler()), NUM), ('cat', OneHotEncoder(handle_unknown='ignore'), CAT)])
    with tracking.start_run(ws, 'credit-default', credit.ref, NUM + CAT, 'defaulted', {'model': 'logistic'}) as run:
        exported = onnx.export(make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(train[NUM + CAT], train.defaulted), test[NUM + CAT])
        report = gates.evaluate(deployed.OnnxModel(exported.onnx), test[NUM + CAT], test.defaulted, test.gender, None, exported.parity.max_abs_diff, ws.settings)
        registry.log_candidate(ws, run.run_id, exported, report)
    mv = registry.register(ws, run.run_id, 'credit-default', actor='ci-pipeline')
    approve(ws, mv.ref, 'bea')
    return registry.promote(ws, mv.ref, 'bea', 'first champion')


def served(root, overrides=None, tracking_uri=None):
    "A workspace whose champion (trained on months 1-6) has served months 7-12 in order, one request per application."
    ws = open_workspace(root, load_settings(env={'WORKBENCH_WORKSPACE_TRACKING_URI': tracking_uri} if tracking_uri else {}, overrides=overrides))
    portfolio = demo.generate(months=12, rows_per_month=ROWS)
    credit = data.commit(ws, 'credit', demo.training_frame(portfolio, 6), 'months 1-6', 'ana')
    champion(ws, credit)
    later = portfolio['applications'].query("month >= '2025-07'")
    server, url, stop = serve_in_thread(ws, 'credit-default@champion', 'credit-default@challenger:50')
    sent = traffic.send(url, later[server.champion.names], later.application_id, ids=later.application_id)
    server.log.flush()
    assert sent[200] == len(later)
    return ws, portfolio, server, url, stop


@pytest.fixture(scope='module', params=['folder', 'team'])
def watched(request, tmp_path_factory):
    "The served workspace, in a folder or on a team's services; on these, this process reaches them as a machine of the team."
    root = tmp_path_factory.mktemp(f'monitoring-{request.param}')
    if request.param == 'folder':
        ws, portfolio, server, url, stop = served(root/'ws')
        stop()
        yield ws, portfolio
        return
    store, server = request.getfixturevalue('seaweedfs'), request.getfixturevalue('mlflow_server')
    with pytest.MonkeyPatch.context() as mp:
        for k, v in store.items(): mp.setenv(k, v) if k.startswith('AWS_') else None
        mp.setenv('XDG_STATE_HOME', str(root/'state'))
        ws, portfolio, _, _, stop = served(f"{store['WORKBENCH_HOME']}/monitoring", tracking_uri=server.url)
        stop()
        yield ws, portfolio


def same(ws, **overrides):
    "`ws` opened again with `overrides` to its settings."
    tracking = {'WORKBENCH_WORKSPACE_TRACKING_URI': ws.tracking_uri} if ws.uri else {}
    return open_workspace(ws.location, load_settings(env=tracking, overrides=overrides))


def cli_env(ws) -> dict:
    "The environment of a `workbench` command on `ws`, wherever it is."
    return clean_env(WORKBENCH_ACTOR='tester', **({'WORKBENCH_WORKSPACE_TRACKING_URI': ws.tracking_uri} if ws.uri else {}))


def cli(ws, *args, check=True):
    r = subprocess.run([str(BIN/'workbench'), '--workspace', ws.location, *map(str, args)], env=cli_env(ws), capture_output=True, text=True, timeout=300)
    if check: assert r.returncode == 0, r.stdout + r.stderr
    return r


def frames(seed, n1, n2, shift=0.0, ties=False):
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame(dict(x=rng.lognormal(3, .8, n1), k=rng.choice(list('abcd'), n1, p=[.4, .3, .2, .1])))
    cur = pd.DataFrame(dict(x=rng.lognormal(3 + shift, .8, n2), k=rng.choice(list('abcde'), n2, p=[.35, .3, .2, .1, .05])))
    if ties: ref['x'], cur['x'] = ref.x.round(0), cur.x.round(0)
    ref.loc[ref.sample(frac=.03, random_state=seed).index, 'x'] = np.nan
    return ref, cur


def compared(ref, cur):
    con = duckdb.connect()
    con.register('ref', ref); con.register('cur', cur)
    prof = profile_of(con, 'ref', dict(x='numeric', k='categorical'))
    return prof, compare(con, 'cur', prof, 'ref', THRESHOLDS).set_index(['feature', 'statistic'])


@pytest.mark.parametrize('seed,n1,n2,shift,ties', [(0, 400, 300, 0.0, False), (1, 5000, 2000, 0.05, False), (2, 3000, 3000, 0.0, True),
                                                    (3, 30000, 12000, 0.02, False), (4, 200000, 50000, 0.0, True), (5, 50, 80, 0.5, False)])
def test_ks_equals_scipy_and_psi_js_equal_numpy(seed, n1, n2, shift, ties):
    ref, cur = frames(seed, n1, n2, shift, ties)
    prof, out = compared(ref, cur)
    ks = stats.ks_2samp(ref.x.dropna(), cur.x)
    assert abs(out.loc[('x', 'ks'), 'value'] - ks.statistic) <= 1e-9 and abs(out.loc[('x', 'ks'), 'p_value'] - ks.pvalue) <= 1e-9
    # the documented definitions, computed independently: PSI bins [edge_k, edge_k+1) at the profile's edges, shares floored at 1e-4
    edges = prof['features']['x']['edges']
    r = np.bincount(np.searchsorted(edges, ref.x.dropna(), side='right'), minlength=len(edges) + 1) / ref.x.notna().sum()
    c = np.bincount(np.searchsorted(edges, cur.x, side='right'), minlength=len(edges) + 1) / len(cur)
    psi = lambda e, a: float(np.sum((np.maximum(a, 1e-4) - np.maximum(e, 1e-4)) * np.log(np.maximum(a, 1e-4) / np.maximum(e, 1e-4))))
    assert abs(out.loc[('x', 'psi'), 'value'] - psi(r, c)) <= 1e-9 and abs(out.loc[('x', 'js'), 'value'] - jensenshannon(r, c)) <= 1e-9
    cats = sorted(ref.k.unique())  # categories: the reference's, then one bin for every unseen value
    rk = np.array([(ref.k == k).mean() for k in cats] + [0.0]); ck = np.array([(cur.k == k).mean() for k in cats] + [(~cur.k.isin(cats)).mean()])
    assert abs(out.loc[('k', 'psi'), 'value'] - psi(rk, ck)) <= 1e-9 and abs(out.loc[('k', 'js'), 'value'] - jensenshannon(rk, ck)) <= 1e-9
    assert abs(out.loc[('k', 'unseen'), 'value'] - (cur.k == 'e').mean()) <= 1e-12
    assert abs(out.loc[('x', 'missing'), 'value'] - (0 - ref.x.isna().mean())) <= 1e-12
    chi = stats.chi2_contingency([[(ref.k == k).sum() for k in 'abcde'], [(cur.k == k).sum() for k in 'abcde']], correction=False)
    assert abs(out.loc[('k', 'chi2'), 'value'] - chi.statistic) <= 1e-6 and abs(out.loc[('k', 'chi2'), 'p_value'] - chi.pvalue) <= 1e-9
    w = stats.wasserstein_distance(ref.x.dropna(), cur.x) / ref.x.std(ddof=0)
    assert abs(out.loc[('x', 'wasserstein'), 'value'] - w) <= 0.02 * w + 1e-3  # binned: within 2%, or 0.001 for tiny samples


def test_the_demo_drift_is_flagged_in_its_month_and_not_before(watched):
    ws, _ = watched
    rows = drift.drift(ws, 'credit-default@champion', window=f'{ROWS}rows', alert=False)
    s = drift.summary(rows, ws.settings)
    assert s.window.tolist() == [f'rows {i * ROWS + 1}-{(i + 1) * ROWS}' for i in range(6)]  # months 7..12
    flagged = [set(d.split(', ')) - {''} for d in s.drifted]
    assert flagged == [set(), set(), set()] + [{'income', 'credit_score', 'product', 'model_score'}] * 3, flagged  # credit_score: its missing share
    month10 = rows[rows.window == s.window[3]].set_index(['feature', 'statistic'])
    assert month10.loc[('income', 'psi'), 'value'] > 0.3 and month10.loc[('product', 'unseen'), 'value'] > 0.1
    shares = json.loads(month10.loc[('product', 'psi'), 'bins'])  # the two distributions, for a chart
    assert shares['categories'][-1] == '(unseen)' and abs(sum(shares['current']) - 1) < 1e-9 and shares['current'][-1] > 0.1
    income = json.loads(month10.loc[('income', 'psi'), 'bins'])
    assert len(income['reference']) == len(income['edges']) + 1 and abs(sum(income['reference']) - 1) < 1e-9
    assert set(rows.feature) == set(NUM + CAT) | {'model_score'} and set(rows.statistic) == set(STATISTICS)
    # recorded in the drift table, once: a second run finds nothing new
    assert ws.sql("select count(distinct \"window\"), count(*) from drift where statistic = 'psi'").fetchall() == [(6, 6 * len(NUM + CAT + ["model_score"]))]
    assert drift.drift(ws, 'credit-default@champion', window=f'{ROWS}rows').empty


def test_concurrent_runs_record_each_window_once(watched):
    ws, _ = watched
    env = cli_env(ws)
    cmd = [str(BIN/'workbench'), '--workspace', ws.location, 'monitor', 'drift', 'credit-default/1', '--window', '500rows', '--no-alert']
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    assert all(p.wait(300) == 0 for p in procs), [p.stderr.read() for p in procs]
    counts = ws.sql("select \"window\", count(*) as n from drift where \"window\" like 'rows %' and statistic = 'psi' and rows = 500 group by 1").df()
    assert len(counts) == 12 and (counts.n == len(NUM + CAT) + 1).all()


def test_the_cli_and_its_errors(watched):
    ws, portfolio = watched
    out = cli(ws, 'monitor', 'drift', 'credit-default/1', '--window', '2000rows', '--no-alert').stdout
    assert 'rows 1-2000' in out and 'rows 4001-6000' in out and 'income, credit_score, product' in out
    assert 'no new complete window' in cli(ws, 'monitor', 'drift', 'credit-default/1', '--window', '2000rows').stdout
    before = ws.sql('select count(*) from drift').fetchall()[0][0]
    for args, message in [(['--window', 'weekly'], "window 'weekly' is not valid"), (['--since', 'soon'], "--since 'soon' is not a date"),
                          (['--source', 'no_such_data'], 'no_such_data'), (['--source', 'applications', '--window', '1d'], 'time windows need'),
                          (['--source', str(ws.root/'nothing.parquet')], 'cannot read')]:
        r = cli(ws, 'monitor', 'drift', 'credit-default/1', *args, check=False)
        assert r.returncode == 1 and message in r.stderr and 'Traceback' not in r.stderr, (args, r.stderr)
    r = cli(ws, 'monitor', 'drift', 'no-such-model@champion', check=False)
    assert r.returncode == 1 and "no registered model named 'no-such-model'" in r.stderr
    assert ws.sql('select count(*) from drift').fetchall()[0][0] == before  # nothing half-written


def test_a_dataset_version_or_parquet_files_as_the_window(watched, tmp_path):
    ws, portfolio = watched
    month = portfolio['applications'].query("month == '2025-11'")
    v = data.commit(ws, 'november', month, 'scoring batch', 'ana')
    one = drift.drift(ws, 'credit-default/1', source=v.ref, alert=False)
    assert one.window.unique().tolist() == [v.ref] and drift.drifted_features(one, ws.settings) == ['income', 'credit_score', 'product', 'model_score']
    month.to_parquet(tmp_path/'nov.parquet')
    two = drift.drift(ws, 'credit-default/1', source=str(tmp_path/'nov.parquet'), window='250rows', alert=False)
    assert two.window.nunique() == 4 and (two.rows == 250).all()
    # the model's score is monitored too: logged scores and scores computed here agree for the same rows
    score = one.set_index(['feature', 'statistic']).loc[('model_score', 'psi'), 'value']
    logged = drift.drift(ws, 'credit-default/1', window=f'{ROWS}rows', alert=False)  # nothing new: computed before
    assert score >= 0 and logged.empty


def test_late_labels_give_realized_performance(watched, tmp_path):
    ws, portfolio = watched
    labels = portfolio['labels'].merge(portfolio['applications'][['application_id', 'month']]).query("month >= '2025-07'")
    labels[['application_id', 'defaulted']].to_csv(tmp_path/'labels.csv', index=False)
    for bad, message in [(labels.rename(columns={'application_id': 'id'}), "no column 'application_id'"),
                         (labels.assign(defaulted='yes'), "must hold numbers"), (labels.assign(defaulted=np.nan), 'lack a application_id or a defaulted')]:
        bad[['id' if 'id' in bad else 'application_id', 'defaulted']].to_csv(tmp_path/'bad.csv', index=False)
        r = cli(ws, 'monitor', 'labels', 'ingest', tmp_path/'bad.csv', '--key', 'application_id', check=False)
        assert r.returncode == 1 and message in r.stderr, r.stderr
    assert 'labels' not in ws.tables()  # nothing half-written
    assert f'{len(labels)} labels ingested' in cli(ws, 'monitor', 'labels', 'ingest', tmp_path/'labels.csv', '--key', 'application_id').stdout
    perf = performance.performance(ws, 'credit-default/1', window=f'{ROWS}rows')
    auc = perf[perf.metric == 'auc'].reset_index(drop=True)
    log = ws.sql("select request_id, score from predictions where version = 1 order by time, request_id, row").df()
    log['w'] = np.arange(len(log)) // ROWS
    joined = log.merge(labels, left_on='request_id', right_on='application_id')
    expected = [roc_auc_score(g.defaulted, g.score) for _, g in joined.groupby('w')]
    assert len(auc) == 6 and np.allclose(auc.value, expected, atol=1e-9) and (auc.labelled == ROWS).all()
    assert auc.baseline.notna().all() and performance.performance(ws, 'credit-default/1', window=f'{ROWS}rows').empty  # no new labels
    # a team whose policy is stricter than the model: every window alerts, and the business figure comes from its own function
    strict = same(ws, **{'performance.max_auc_drop': '-1', 'alerts.sinks': 'jsonl', 'performance.business_metric': 'test_monitoring:missed_defaults'})
    perf = performance.performance(strict, 'credit-default/1', window=f'{2 * ROWS}rows')
    alerts = history(ws)
    assert [a['kind'] for a in alerts] == ['performance'] * 3 and 'below the held-out' in alerts[0]['message']
    business = perf[perf.metric == 'business'].value.tolist()
    expected = [missed_defaults(g.rename(columns={'defaulted': 'label'})) for _, g in joined.assign(w=joined.w // 2).groupby('w')]
    assert len(business) == 3 and np.allclose(business, expected)


def missed_defaults(rows):
    "A business figure: the share of defaults the model approved (scored below 0.5)."
    return float(((rows.label == 1) & (rows.score < 0.5)).sum() / max(1, (rows.label == 1).sum()))


def test_the_evidently_report(watched):
    ws, _ = watched
    page = performance.report(ws, 'credit-default/1', f'rows {3 * ROWS + 1}-{4 * ROWS}', window_size=f'{ROWS}rows')
    assert page.exists() and page.stat().st_size > 100_000 and 'income' in page.read_text()
    row = ws.sql("select value, report from drift where statistic = 'evidently'").fetchall()
    assert len(row) == 1 and row[0][1] == str(page.relative_to(ws.root)) and row[0][0] > 0
    with pytest.raises(WorkbenchError, match="no window 'rows 9-10'"): performance.report(ws, 'credit-default/1', 'rows 9-10')


def test_the_monitor_pipeline(watched, tmp_path):
    "pipelines/monitor.ipynb as cron runs it: new windows, labels, realized performance and the report, in one executed notebook."
    ws, portfolio = watched
    labels = portfolio['labels'][['application_id', 'defaulted']]
    labels.to_parquet(tmp_path/'labels.parquet')
    r = cli(ws, 'pipeline', 'run', 'monitor', '-p', 'model=credit-default@champion', '-p', 'window=1500rows',
            '-p', f'labels={tmp_path/"labels.parquet"}', '-p', 'label_key=application_id')
    assert 'monitor   ok' in r.stdout and 'drift in 2 of 4 new window(s)' in r.stdout, r.stdout  # rows 3001-6000: months 10-12
    run = json.loads(cli(ws, 'pipeline', 'list', '--format', 'json').stdout)[0]
    results = json.loads(ws.read_bytes(str(Path(run['notebook'].removeprefix(f'{ws.location}/')).with_suffix('.json'))))
    assert results['drifted_features'] == ['credit_score', 'income', 'model_score', 'product'] and results['labels_ingested'] == len(labels)
    assert Path(results['report']).exists() and len(results['realized']) == 4 * 7  # seven metrics for each window (AUC, accuracy, precision, recall, F1, Brier, label rate)
    bad = cli(ws, 'pipeline', 'run', 'monitor', '-p', 'window=weekly', check=False)
    assert bad.returncode == 1 and "window 'weekly' is not valid" in bad.stdout + bad.stderr


def test_alert_retrain_challenger_canary(tmp_path):
    "The whole loop: drift alert → retraining pipelines → new challenger → canary on the running server → a decision, all audited."
    # retraining fixes the score's calibration, not its ranking: this team accepts a new version within 0.01 AUC of the champion
    loop = {'drift.retrain': 'true', 'gates.min_gain_over_champion': '-0.01', 'alerts.sinks': 'jsonl,audit', 'canary.promote_after': '300', 'canary.min_requests': '100',
            'serving.reload_seconds': '0.5'}
    ws, portfolio, server, url, stop = served(tmp_path/'ws', loop)
    try:
        # late labels have arrived and the team has reviewed the drift: the labelled months become the training data and reference
        v = data.commit(ws, 'credit', demo.training_frame(portfolio, 12), 'months 1-12', 'ana')
        suites.save_suite(ws, suites.infer_suite(ws, v.ref, ['application_id'], 'defaulted'))
        rows = drift.drift(ws, 'credit-default@champion', window=f'{ROWS}rows')
        alerts = [json.loads(l) for l in (ws.root/'alerts.jsonl').read_text().splitlines()]
        assert [a['kind'] for a in alerts] == ['drift'] * 3 + ['retrain'], alerts
        assert [a['details']['features'] for a in alerts[:3]] == [['income', 'credit_score', 'product', 'model_score']] * 3 and alerts[3]['details']['status'] != 'failed', alerts[3]
        retrained = audit.log(ws, action='monitoring.retrain')
        assert len(retrained) == 1 and json.loads(retrained.after[0]) == {'dataset': v.ref}
        new = registry.get(ws, 'credit-default@challenger')
        assert new.version == 2 and new.dataset_id == v.id
        approve(ws, new.ref, 'bea', 'retrained on the drifted months')
        for _ in range(100):
            if server.challenger is not None and server.challenger.version == 2: break
            time.sleep(0.1)
        recent = portfolio['applications'].query("month >= '2025-10'")
        sent = traffic.send(url, recent[server.champion.names], recent.application_id, until=lambda t: server.challenger is None)
        assert sent['canary'] >= 100 and server.challenger is None
    finally: stop()
    decided = audit.log(ws, subject=new.ref).action.tolist()
    assert 'canary.promote' in decided or 'canary.rollback' in decided
    assert len(rows) and set(audit.log(ws).action) >= {'alert.drift', 'monitoring.retrain', 'model.register'}


# ---------------------------------------------------------------------------------------------------------------------
# Issue 17 (drift): any column name, key columns never profiled, memory bounded by drift.memory_limit, and the CLI's hints.

ODD = ['Age', 'age', 'mean radius', 'a.b', 'x"y', "it's", 'ünï', '1st', 'select', 'a/b~c', '[0]']  # numeric inputs
ODD_CAT = ['Région', 'from']
KEY = 'id'  # a key the model (wrongly) takes as an input: tagged workbench.keys, drift must never look at it


def _renamed(model_bytes:bytes, names:list) -> bytes:
    "The ONNX model with its inputs renamed, in order, to `names` (skl2onnx makes names such as `mean radius` safe; ONNX itself takes any)."
    import onnx as onnx_lib
    m = onnx_lib.load_from_string(model_bytes)
    to = {i.name: n for i, n in zip(m.graph.input, names)}
    for i in m.graph.input: i.name = to[i.name]
    for node in m.graph.node: node.input[:] = [to.get(x, x) for x in node.input]
    return m.SerializeToString()


def odd_frame(n, seed, shift=0.0, unseen=0.0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({c: rng.normal(i % 3, 1, n) for i, c in enumerate(ODD)})
    df['Age'] += shift
    for c in ODD_CAT: df[c] = rng.choice(['nord', 'sud', 'est'], n)
    df.loc[rng.random(n) < unseen, 'Région'] = 'ouest'
    df[KEY] = rng.permutation(3000)[:n]  # unique ids from the same range, so that the model's score (which they feed) does not move with them
    df['y'] = (df['age'] + df['Age'] + rng.normal(0, 1, n) > 1).astype(int)
    return df


@pytest.fixture(scope='module')
def odd(tmp_path_factory):
    "A model whose inputs have odd names (and a key), trained on 3,000 rows; its log holds 2,000 rows: 1,000 like the training data, then 1,000 with `Age` moved and a new `Région`."
    from sklearn.compose import ColumnTransformer
    from workbench.predictions import PredictionLog
    from datetime import datetime, timedelta, timezone
    ws = open_workspace(tmp_path_factory.mktemp('odd')/'ws', load_settings(env={}))
    ref = odd_frame(3000, 0)
    v = data.commit(ws, 'odd', ref, 'odd names', 'ana')
    inputs = ODD + ODD_CAT + [KEY]
    safe = {c: f'c{i}' for i, c in enumerate(inputs)}
    pre = ColumnTransformer([('num', StandardScaler(), [safe[c] for c in ODD + [KEY]]), ('cat', OneHotEncoder(handle_unknown='ignore'), [safe[c] for c in ODD_CAT])])
    X = ref[inputs].rename(columns=safe)
    with tracking.start_run(ws, 'odd', v.ref, inputs, 'y') as run:
        ex = onnx.export(make_pipeline(pre, LogisticRegression(max_iter=500)).fit(X, ref.y), X[:500])
        model = deployed.OnnxModel(_renamed(ex.onnx, inputs))
        registry.log_candidate(ws, run.run_id, onnx.Exported(model.model_bytes, model.signature, ex.parity))
    mv = registry.register(ws, run.run_id, 'odd', actor='ci')
    registry.client(ws).set_model_version_tag(mv.name, str(mv.version), 'workbench.keys', json.dumps([KEY]))
    assert [s['name'] for s in model.signature] == inputs
    log, start = PredictionLog(ws, flush_seconds=60), datetime.now(timezone.utc) - timedelta(minutes=5)
    served = pd.concat([odd_frame(1000, 1), odd_frame(1000, 2, shift=1.5, unseen=0.2)], ignore_index=True)
    for i in range(0, len(served), 100):  # requests of 100 rows, 1 ms apart, as the server logs them
        part = served[i:i + 100]
        meta = dict(request_id=f'r{i:05d}', time=start + timedelta(milliseconds=i), model=mv.name, version=mv.version, variant='champion', source='test', latency_ms=1.0)
        log.add(meta, {c: part[c].to_numpy() for c in inputs}, len(part), dict(zip(model.outputs, model.session.run(None, model.feeds(part)))))
    log.close()
    return ws, mv, ref, served


def test_any_column_name_and_never_a_key(odd):
    ws, mv, ref, served = odd
    prof, _ = drift.reference(ws, mv.ref)
    assert list(prof['features']) == ODD + ODD_CAT + ['model_score']  # the key is not profiled
    rows = drift.drift(ws, mv.ref, window='1000rows', alert=False)
    assert set(rows.feature) == set(ODD + ODD_CAT + ['model_score']) and rows.window.unique().tolist() == ['rows 1-1000', 'rows 1001-2000']
    first, second = (drift.drifted_features(g, ws.settings) for _, g in rows.groupby('window', sort=True))
    assert first == [] and {'Age', 'Région'} <= set(second) <= {'Age', 'Région', 'model_score'}, (first, second)
    # each name reads its own values, `Age` and `age` apart: KS equals scipy's on the very columns
    ks = rows[rows.statistic == 'ks'].set_index(['window', 'feature']).value
    for f in ['Age', 'age', 'x"y', 'a/b~c', 'select']:
        for w, part in [('rows 1-1000', served[:1000]), ('rows 1001-2000', served[1000:])]:
            assert abs(ks[(w, f)] - stats.ks_2samp(ref[f], part[f]).statistic) < 1e-12, (w, f)
    unseen = rows[(rows.statistic == 'unseen') & (rows.feature == 'Région')].set_index('window').value
    assert unseen['rows 1-1000'] == 0 and abs(unseen['rows 1001-2000'] - (served[1000:]['Région'] == 'ouest').mean()) < 1e-12
    # the report, without --window-size: the label gives it
    page = performance.report(ws, mv.ref, 'rows 1001-2000')
    html = page.read_text()
    assert all(f'"column_name": {json.dumps(f)}' in html for f in ODD + ODD_CAT) and f'"column_name": "{KEY}"' not in html  # as Evidently's JSON writes them


def test_the_cli_hints_and_all_windows(odd):
    ws, mv, ref, served = odd
    r = cli(ws, 'monitor', 'drift', mv.ref, '--no-alert')  # the default 1d window: the log spans five minutes of today
    assert r.stdout.startswith('no new complete window') and 'holds 2,000 rows' in r.stdout and '--window 1000rows' in r.stdout, r.stdout
    drift.drift(ws, mv.ref, window='1000rows', alert=False)  # computes both windows, unless the test above did
    assert 'all 2 complete 1000-row windows' in drift.drift(ws, mv.ref, window='1000rows', alert=False).attrs['note']
    every = cli(ws, 'monitor', 'drift', mv.ref, '--window', '1000rows', '--all', '--format', 'json').stdout
    got = pd.DataFrame(json.loads(every))
    assert set(got.window) == {'rows 1-1000', 'rows 1001-2000'} and set(got.feature) == set(ODD + ODD_CAT + ['model_score'])
    r = cli(ws, 'monitor', 'report', mv.ref, '--window', 'rows 1-1000', '--window-size', '500rows', check=False)
    assert r.returncode == 1 and '--window-size' in r.stderr and 'Traceback' not in r.stderr, r.stderr


def test_memory_is_bounded_by_the_setting(odd):
    ws, mv, ref, served = odd
    tight = open_workspace(ws.root, load_settings(env={}, overrides={'drift.memory_limit': '1MB'}))
    with pytest.raises(WorkbenchError, match=r'drift\.memory_limit \(1MB\)'):
        drift.drift(tight, mv.ref, window='500rows', alert=False)
    r = cli(ws, '--set', 'drift.memory_limit=1MB', 'monitor', 'drift', mv.ref, '--window', '500rows', check=False)
    assert r.returncode == 1 and 'drift.memory_limit' in r.stderr and 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    with pytest.raises(WorkbenchError, match='drift.memory_limit must be a size such as 4GB'): load_settings(env={}, overrides={'drift.memory_limit': 'lots'})
    assert not list((ws.root/'monitoring').glob('.tmp-*'))  # no spill folder left behind
    # within a limit far below the log's size, drift spills and completes: 4 windows of 500 rows
    small = open_workspace(ws.root, load_settings(env={}, overrides={'drift.memory_limit': '40MB'}))
    assert drift.drift(small, mv.ref, window='500rows', alert=False).window.nunique() == 4


# ---------------------------------------------------------------------------------------------------------
# Issue 17, labels (the targets engineer's section): what labels ingest refuses before writing anything.
# The end-to-end cases (text, multiclass and regression labels; batch rows joined by request id and by key;
# `monitor performance` with no labelled window) are in tests/test_pipelines.py, on the models `pipeline run ci` makes.

def test_labels_refuse_a_join_column_and_text_without_a_model(ws, tmp_path):
    pd.DataFrame({'id': ['a'], 'y': [1]}).to_csv(tmp_path/'l.csv', index=False)
    with pytest.raises(WorkbenchError, match=r"labels cannot join on 'colour': it is neither request_id nor a key \(none\) or an input \(none\) of any model in the prediction log"):
        performance.ingest_labels(ws, tmp_path/'l.csv', key='id', on='colour')
    with pytest.raises(WorkbenchError, match="must hold numbers, got 'yes'; for text labels of a binary model name the model with --model REF"):
        performance.ingest_labels(ws, pd.DataFrame({'id': ['a'], 'y': ['yes']}), key='id')
    assert 'labels' not in ws.tables()  # nothing written
    assert performance.ingest_labels(ws, tmp_path/'l.csv', key='id') == 1  # joined on request_id, which every logged row has
    assert ws.sql("select key, key_column, label from labels").fetchall() == [('a', 'request_id', 1.0)]
