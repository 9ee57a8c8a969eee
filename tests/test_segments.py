"""Issue 23, segments: drift, estimated and realized AUC per segment of the demo champion's traffic. The alert names the
one segment where the shift is, Benjamini–Hochberg keeps the others quiet, and each window and segment is kept once.

The traffic is the demo's portfolio drawn again (another seed, no drift of its own), logged as the champion's for twelve
days of 2,000 rows; from day 9 on, the car-loan applicants alone earn and borrow 60% more."""
import shutil, threading
import numpy as np, pandas as pd, pytest
from scipy.stats import false_discovery_control
from sklearn.metrics import roc_auc_score
from workbench import demo, estimate, performance, predictions, registry, segments
from workbench.alerts import history
from workbench.config import WorkbenchError, load_settings
from workbench.deployed import OnnxModel
from workbench.drift import version_roles
from workbench.workspace import open_workspace

REF, DAYS, PER_DAY, CALM = 'credit-default/1', 12, 2000, 8  # days 9 to 12: car loans shift
SINCE, UNTIL = '2024-03-01', '2024-03-13'
day = lambda d: f'2024-03-{d:02d}T00:00Z/1d'  # the label of a day's window


def log(ws, frame:pd.DataFrame, start:str, per_day:int):
    "Score `frame` with the champion and log it as the server would, one request a row (its application id), `per_day` rows a day from `start`."
    model_bytes, mv = registry.load_onnx(ws, REF)
    model = OnnxModel(model_bytes)
    names = [s['name'] for s in model.signature]
    out = dict(zip(model.outputs, model.session.run(None, model.feeds(frame[names]))))
    t0, columns = pd.Timestamp(start, tz='UTC'), {c: frame[c].to_numpy() for c in [*names, 'gender']}
    batch = [(dict(request_id=frame.application_id[i], time=(t0 + pd.Timedelta(microseconds=86_400_000_000 * i // per_day)).to_pydatetime(),
                   model=mv.name, version=mv.version, variant='champion', source='online', latency_ms=1.0),
              {c: v[i:i + 1] for c, v in columns.items()}, 1, {k: v[i:i + 1] for k, v in out.items()}) for i in range(len(frame))]
    ws.append('predictions', predictions.to_table(batch))


@pytest.fixture(scope='module')
def traffic(demo_run, tmp_path_factory):
    "A copy of the demo's workspace, with twelve days of the champion's traffic whose shift is confined to car loans."
    root = shutil.copytree(demo_run.ws, tmp_path_factory.mktemp('segments')/'ws')
    ws = open_workspace(root, load_settings(env={}, overrides={'alerts.sinks': 'jsonl'}))
    portfolio = demo.generate(months=DAYS, rows_per_month=PER_DAY, drift_month=DAYS + 1, seed=7)
    frame, labels = portfolio['applications'], portfolio['labels']
    frame['application_id'] = 'S' + frame.application_id  # not the demo's own ids
    labels['application_id'] = 'S' + labels.application_id
    frame['credit_score'] = frame.credit_score.astype('float64')  # JSON has no Int64 NA: a missing score is null
    late = (frame.index >= CALM * PER_DAY) & (frame['product'] == 'auto_loan')
    frame.loc[late, ['income', 'loan_amount']] *= 1.6
    log(ws, frame, SINCE, PER_DAY)
    return ws, frame, labels


def same(ws, **overrides):
    return open_workspace(ws.root, load_settings(env={}, overrides={'alerts.sinks': 'jsonl'} | overrides))


def kept(ws, by:str) -> pd.DataFrame:
    "The rows `segments` holds of the champion for segment column `by`."
    h = segments.history(ws, REF)
    return h[h.segmented_by == by].reset_index(drop=True)


def test_the_alert_names_the_one_segment_that_shifted_and_the_others_stay_quiet(traffic):
    ws, frame, _ = traffic
    segments.segment_drift(ws, REF, window='1d', by='product', since=SINCE, until=UNTIL)
    s = segments.summary(kept(ws, 'product'))
    assert s.window.tolist() == [day(d) for d in range(1, DAYS + 1) for _ in range(3)]
    assert set(s.segment) == {'product=personal_loan', 'product=credit_card', 'product=auto_loan'} and (s.judged == 'yes').all()
    hit = s[s.drifted != '']
    assert hit.segment.unique().tolist() == ['product=auto_loan'], hit
    assert hit.window.tolist() == [day(d) for d in range(CALM + 1, DAYS + 1)]
    assert all({'income', 'loan_amount'} <= set(d.split(', ')) for d in hit.drifted), hit.drifted
    quiet = s[(s.segment != 'product=auto_loan') | s.window.isin([day(d) for d in range(1, CALM + 1)])]
    assert len(quiet) == 3 * DAYS - (DAYS - CALM) == 32 and (quiet.drifted == '').all()  # 32 calm segment-windows: no alarm
    sent = [a for a in history(ws) if a['kind'] == 'segment_drift']
    assert [a['details']['window'] for a in sent] == [day(d) for d in range(CALM + 1, DAYS + 1)]
    assert all(a['subject'] == REF and a['source'] == 'monitoring' for a in sent)
    assert sent[0]['message'].startswith('product=auto_loan: ') and f'drifted in window {day(CALM + 1)} (PSI ' in sent[0]['message']
    assert sent[0]['message'].endswith('; the other 2 segments unchanged'), sent[0]['message']
    # the rows of a segment are its rows of the log; a second run finds nothing new
    n = frame[:PER_DAY].groupby('product').size()
    assert s[s.window == day(1)].set_index('segment').rows.to_dict() == {f'product={k}': v for k, v in n.items()}
    again = segments.segment_drift(ws, REF, window='1d', by='product', since=SINCE, until=UNTIL)
    assert again.empty and 'in the segments table already' in again.attrs['note']


def test_benjamini_hochberg_as_scipy_and_the_estimated_auc_of_a_segment(traffic):
    ws, frame, _ = traffic
    segments.segment_drift(ws, REF, window='1d', by='product', since=SINCE, until=UNTIL, alert=False)
    rows = kept(ws, 'product')
    w = rows[(rows.window == day(CALM + 2)) & (rows.statistic == 'psi')]
    assert len(w) == 3 * 15 and w.judged.all()  # 3 segments x 14 inputs and the score, adjusted together
    assert np.allclose(w.adjusted_p_value, false_discovery_control(w.p_value, method='bh'), rtol=1e-12, atol=0)
    assert (w.drifted == ((w.adjusted_p_value < 0.05) & (w.value >= 0.2))).all() and w.drifted.any()
    # the segment's AUC estimated from its scores alone, as `estimate` does it from the held-out rows' calibration
    mv = registry.get(ws, REF)
    cal = estimate.calibrator(*performance.held_out(ws, mv, version_roles(ws, mv)))
    scores = ws.sql("""select score from predictions where time >= '2024-03-01' and time < '2024-03-02'
                       and json_extract_string(inputs, '/product') = 'credit_card'""").fetchnumpy()['score']
    e = rows[(rows.window == day(1)) & (rows.segment == 'product=credit_card') & (rows.statistic == 'auc_estimated')].iloc[0]
    want = estimate.estimate(cal, scores, ['auc'])['auc']
    assert len(scores) == e.rows and np.isclose(e.value, want['estimate']) and np.isclose(e.lower, want['lower'])


def test_segments_past_max_segments_are_pooled_and_small_ones_reported_not_judged(traffic):
    ws, frame, _ = traffic
    rows = segments.segment_drift(same(ws, **{'segments.max_segments': 2}), REF, window='1d', by='region',
                                  since='2024-03-02', until='2024-03-04', alert=False)
    first = rows[(rows.window == day(2)) & (rows.statistic == 'psi')].groupby('segment').rows.first()
    counts = frame[PER_DAY:2 * PER_DAY].region.value_counts()
    top = counts.sort_values(ascending=False, kind='stable').index[:2]
    assert first.to_dict() == {f'region={r}': counts[r] for r in top} | {'region=(other)': counts.drop(top).sum()}
    assert not rows.drifted.any()  # the pool is compared with the reference's rows of the same regions
    small = segments.segment_drift(ws, REF, window='1d', by='purpose', since='2024-03-04', until='2024-03-05', alert=False)
    n = frame[3 * PER_DAY:4 * PER_DAY].purpose.value_counts()
    psi = small[small.statistic == 'psi'].groupby('segment').first()
    assert psi.rows.to_dict() == {f'purpose={k}': v for k, v in n.items()} and (n < 200).any() and (n >= 200).any()
    few = psi[psi.rows < 200]
    assert (~few.judged).all() and few.adjusted_p_value.isna().all() and few.value.notna().all()  # reported, not judged
    assert (few.note == few.rows.astype(str) + ' rows, under segments.min_rows').all()
    assert psi[psi.rows >= 200].judged.all()


def test_an_expression_and_the_sensitive_attribute_as_segments(traffic):
    ws, frame, _ = traffic
    rows = segments.segment_drift(ws, REF, window='1d', by='gender, big=loan_amount > 20000', since='2024-03-05',
                                  until='2024-03-06', alert=False)
    got = rows[rows.statistic == 'psi'].groupby(['segmented_by', 'segment']).rows.first().to_dict()
    d = frame[4 * PER_DAY:5 * PER_DAY]
    assert got == {('gender', f'gender={g}'): n for g, n in d.gender.value_counts().items()} | {
        ('big=loan_amount > 20000', f'big={str(b).lower()}'): n for b, n in (d.loan_amount > 20000).value_counts().items()}
    assert not rows.drifted.any()


def test_bad_segments_are_refused_in_one_sentence_before_anything_is_read(traffic):
    ws, _, _ = traffic
    before = len(segments.history(ws, REF))
    for by, said in [('colour', "segment colour reads 'colour', which the requests of credit-default/1 do not log; they log age"),
                     ('big=loan_amount > 20000; drop table predictions', "segment 'big' is not one SQL expression: "),
                     ('big=loan_amount) from predictions where (1', 'segment big=loan_amount) from predictions where (1 is not one SQL'),
                     ('big=income > (select avg(income) from predictions)', 'holds a subquery'),
                     ('big=product > 20000', 'segment big=product > 20000 cannot be computed: Binder Error'),
                     ('mean=avg(income)', 'segment mean=avg(income) is an aggregate'), ('', 'no segments to watch'),
                     ('application_id', 'segment application_id is a key of credit-default/1: each of its values is one row')]:
        with pytest.raises(WorkbenchError) as e: segments.segment_drift(ws, REF, window='1d', by=by, since=SINCE, until=UNTIL)
        assert said in str(e.value) and '\n' not in str(e.value), (by, str(e.value))
    assert len(segments.history(ws, REF)) == before


def test_concurrent_runs_record_each_window_and_segment_once(traffic):
    ws, _, _ = traffic
    out, errors = [], []
    def run():
        try: out.append(segments.segment_drift(ws, REF, window='12h', by='region', since=SINCE, until='2024-03-04'))
        except Exception as e: errors.append(e)
    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert not errors, errors
    rows = kept(ws, 'region')
    rows = rows[rows.window.str.endswith('/12h') & (rows.statistic == 'psi')]
    assert rows.window.nunique() == 6 and not rows.duplicated(['window', 'segment', 'feature']).any()
    everything = kept(ws, 'region')
    assert sum(len(o) for o in out) == everything.window.str.endswith('/12h').sum()  # each row appended by one run


def test_realized_auc_per_segment_as_labels_come(traffic):
    ws, frame, labels = traffic
    first = labels[:3 * PER_DAY]  # days 1 to 3 labelled
    performance.ingest_labels(ws, first, key='application_id', label='defaulted', on='request_id', model=REF)
    rows = segments.segment_drift(ws, REF, window='1d', by='gender', since=SINCE, until='2024-03-06', alert=False)
    real = rows[rows.statistic == 'auc_realized'].set_index(['window', 'segment'])
    log = ws.sql("""select request_id, score, json_extract_string(inputs, '/gender') as gender, time from predictions
                    where request_id like 'S%'""").df()
    log['window'] = pd.to_datetime(log.time, utc=True).dt.strftime('%Y-%m-%dT00:00Z/1d')
    j = log.merge(first, left_on='request_id', right_on='application_id')
    want = {(w, f'gender={g}'): (roc_auc_score(x.defaulted, x.score), len(x)) for (w, g), x in j.groupby(['window', 'gender'])}
    assert len(want) == 6 and set(real.index) == set(want)
    assert all(np.isclose(real.loc[k, 'value'], a) and real.loc[k, 'labelled'] == n for k, (a, n) in want.items())
    assert segments.segment_drift(ws, REF, window='1d', by='gender', since=SINCE, until='2024-03-06').empty  # no new labels
    performance.ingest_labels(ws, labels[3 * PER_DAY:3 * PER_DAY + 500], key='application_id', label='defaulted',
                              on='request_id', model=REF)
    more = segments.segment_drift(ws, REF, window='1d', by='gender', since=SINCE, until='2024-03-06')
    assert set(more.window) == {day(4)} and set(more.statistic) == {'auc_realized'} and more.labelled.sum() == 500
