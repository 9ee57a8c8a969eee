"""Monitoring windows by event time and by calendar month: months of applications backfilled through a live server
within seconds are windowed by the `month` each request carried (`--window 1mo --time-key month`), not by the second
they were scored in; rows without a readable event time are counted and said; bad windows and columns are refused."""
import re, shutil, subprocess, sys
from pathlib import Path
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from workbench import data, demo, deployed, drift, fairness, gates, onnx, performance, registry, suites, tracking, traffic
from workbench.config import load_settings
from workbench.demo import serve_in_thread
from workbench.workspace import open_workspace
from conftest import approve, clean_env

BIN = Path(sys.executable).parent
ROWS = 500  # applications a month
NUM = ['age', 'income', 'employment_years', 'loan_amount', 'term_months', 'interest_rate', 'credit_score', 'debt_to_income',
       'num_open_accounts', 'delinquencies_2y']
CAT = ['home_ownership', 'purpose', 'product', 'region']
MISSING, NOT_A_DATE = 12, 3  # requests sent without their month, and with one that is no date


def champion(ws, credit):
    "A gated logistic regression, registered with its sensitive attribute, approved and promoted."
    frame = data.load(ws, credit.ref)
    train, test = frame[:750], frame[750:]
    pre = ColumnTransformer([('num', make_pipeline(SimpleImputer(strategy='median'), StandardScaler()), NUM),
                             ('cat', OneHotEncoder(handle_unknown='ignore'), CAT)])
    with tracking.start_run(ws, 'credit-default', credit.ref, NUM + CAT, 'defaulted', {'model': 'logistic'}) as run:
        exported = onnx.export(make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(train[NUM + CAT], train.defaulted), test[NUM + CAT])
        report = gates.evaluate(deployed.OnnxModel(exported.onnx), test[NUM + CAT], test.defaulted, test.gender, None,
                                exported.parity.max_abs_diff, ws.settings)
        registry.log_candidate(ws, run.run_id, exported, report)
    mv = registry.register(ws, run.run_id, 'credit-default', actor='ci-pipeline')
    registry.client(ws).set_model_version_tag('credit-default', str(mv.version), 'workbench.sensitive', 'gender')
    approve(ws, mv.ref, 'bea')
    return registry.promote(ws, mv.ref, 'bea', 'first champion')


@pytest.fixture(scope='module')
def backfilled(tmp_path_factory):
    "A workspace whose champion (months 1-2) scored months 3-4 in seconds, each request carrying its month; some without one."
    root = tmp_path_factory.mktemp('event-time')/'ws'
    loose = {'gates.max_fairness_gap': '1', 'gates.max_equal_opportunity_gap': '1'}  # 250 held-out rows: the gates are not what is tested here
    ws = open_workspace(root, load_settings(env={}, overrides=loose))
    portfolio = demo.generate(months=4, rows_per_month=ROWS, drift_month=4)
    credit = data.commit(ws, 'credit', demo.training_frame(portfolio, 2), 'months 1-2', 'ana')
    suites.save_suite(ws, suites.infer_suite(ws, credit.ref, ['application_id'], 'defaulted', time='month', sensitive=['gender']))
    champion(ws, credit)
    later = portfolio['applications'].query("month >= '2025-03'").reset_index(drop=True)
    server, url, stop = serve_in_thread(ws, 'credit-default@champion', 'credit-default@challenger:50')
    try:
        carried = later[[*server.champion.names, 'gender', 'month']].astype({'month': object})
        carried.loc[:MISSING - 1, 'month'] = None  # a client that sent no month
        carried.loc[MISSING:MISSING + NOT_A_DATE - 1, 'month'] = 'soon'
        sent = traffic.send(url, carried, later.application_id, ids=later.application_id)
        server.log.flush()
    finally: stop()
    assert sent[200] == len(later)
    return root, portfolio, later


def copy(backfilled, tmp_path):
    "A copy of the backfilled workspace, opened, and a `workbench` runner on it."
    root = shutil.copytree(backfilled[0], tmp_path/'ws')
    env = clean_env(WORKBENCH_HOME=str(root), WORKBENCH_ACTOR='tester')
    wb = lambda *a: subprocess.run([str(BIN/'workbench'), *a], env=env, capture_output=True, text=True, timeout=300)
    return open_workspace(root, load_settings(env={})), wb


NOTE = (f"{MISSING + NOT_A_DATE} of the {2 * ROWS:,} logged rows of credit-default/1 have no event time in 'month' "
        f"({MISSING} missing, {NOT_A_DATE} not a date or time): they are in no window")


def test_drift_by_calendar_month_of_event_time_on_a_log_scored_in_seconds(backfilled, tmp_path):
    "Scored within seconds, windowed by the months the applications were made in; the rows without a month said, on stderr."
    ws, wb = copy(backfilled, tmp_path)
    first, last = ws.sql("select min(time), max(time) from predictions").fetchall()[0]
    assert (last - first).total_seconds() < 120 and first.year > 2025  # scored today, in moments
    r = wb('monitor', 'drift', 'credit-default@champion', '--window', '1mo', '--time-key', 'month')
    assert r.returncode == 0 and [l.split()[1] for l in r.stdout.splitlines()[1:]] == ['2025-03', '2025-04'], r.stdout + r.stderr
    per = ws.sql('''select "window", any_value(rows) as rows, any_value(window_start) as start, any_value(window_end) as "end"
                    from drift group by all order by 1''').df()
    assert per.window.tolist() == ['2025-03', '2025-04']
    assert per.rows.tolist() == [ROWS - MISSING - NOT_A_DATE, ROWS]  # the first month's rows that lost their month are in neither
    assert [s.isoformat() for s in per.start.dt.tz_convert('UTC')] == ['2025-03-01T00:00:00+00:00', '2025-04-01T00:00:00+00:00']
    assert per.end.dt.tz_convert('UTC').iloc[1].isoformat() == '2025-05-01T00:00:00+00:00'
    assert f'note: {NOTE}' in r.stderr.splitlines(), r.stderr  # said once, beside the alerts
    said = [l for l in r.stderr.splitlines() if l.startswith('ALERT [drift]')]
    assert said and all(' in window 2025-04 ' in m for m in said), said  # month 4 drifted, and its alert says so
    again = drift.drift(ws, 'credit-default@champion', window='1mo', time_key='month')  # each window is computed once
    assert again.empty and again.attrs['note'].startswith('no new complete window: all 2 complete 1mo windows of predictions'), again.attrs


def test_the_setting_fairness_and_realized_performance_follow_event_time(backfilled, tmp_path):
    "drift.time_key windows every monitor by the carried column; the scoring-time windows are as before."
    ws, wb = copy(backfilled, tmp_path)
    _, portfolio, later = backfilled
    labels = portfolio['labels'][portfolio['labels'].application_id.isin(later.application_id)]
    assert performance.ingest_labels(ws, labels[['application_id', 'defaulted']], key='application_id', label='defaulted',
                                     on='request_id') == 2 * ROWS
    by_month = open_workspace(ws.root, load_settings(env={}, overrides={'drift.time_key': 'month'}))
    perf = performance.performance(by_month, 'credit-default/1', window='1mo')
    auc = perf[perf.metric == 'auc']
    assert auc.window.tolist() == ['2025-03', '2025-04'] and auc.labelled.tolist() == [ROWS - MISSING - NOT_A_DATE, ROWS]
    assert perf.attrs['untimed'] == NOTE and auc.value.between(0.6, 0.95).all(), auc
    gaps = fairness.production_fairness(by_month, 'credit-default/1', window='1mo')
    assert sorted(set(gaps.window)) == ['2025-03', '2025-04'] and gaps.attrs['untimed'] == NOTE
    assert str(gaps.window_start.min())[:10] == '2025-03-01'
    r = wb('--set', 'drift.time_key=month', 'monitor', 'segments', 'credit-default/1', '--window', '1mo', '--by', 'product')
    assert r.returncode == 0 and '2025-04' in r.stdout and f'note: {NOTE}' in r.stderr.splitlines(), r.stdout + r.stderr
    scored = drift.drift(ws, 'credit-default/1', window=f'{ROWS}rows')  # by scoring time: as before, the same rows
    assert sorted(set(scored.window)) == ['rows 1-500', 'rows 501-1000'] and scored.attrs['untimed'] == ''


def test_bad_windows_and_time_keys_are_refused_in_one_sentence(backfilled, tmp_path):
    "A window that is no size, a column no request carried, one with no dates, a file source: one sentence each, nothing recorded."
    from workbench.config import WorkbenchError
    ws, wb = copy(backfilled, tmp_path)
    for args, said in [(['--window', '1month'], "window '1month' is not valid: write Nd, Nh, Nm, Nw (ISO weeks), Nmo (calendar months) or Nrows"),
                       (['--window', '1mo', '--time-key', 'applied_at'], "no logged request of credit-default/1 carries a column 'applied_at' to window by")]:
        r = wb('monitor', 'drift', 'credit-default/1', *args)
        assert r.returncode == 1 and said in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
    for monitor, kw, said in [
            (drift.drift, dict(window='1mo', time_key='gender'), f"none of the {2 * ROWS:,} values of 'gender' logged for credit-default/1 is a date or time"),
            (drift.drift, dict(source='credit', time_key='month'), '--time-key windows the prediction log by the event time its requests carried'),
            (drift.drift, dict(source='credit', window='1mo'), "time windows need the prediction log's times"),
            (fairness.production_fairness, dict(window='1w', time_key='applied_at'), "carries a column 'applied_at'"),
            (performance.estimated, dict(window='2 weeks'), "window '2 weeks' is not valid")]:
        with pytest.raises(WorkbenchError, match=re.escape(said)) as e: monitor(ws, 'credit-default/1', **kw)
        assert '\n' not in str(e.value)
    assert not {'drift', 'fairness', 'estimates'} & set(ws.tables())  # nothing half-written
