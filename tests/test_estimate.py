"""`workbench.estimate` (issue 23): label-free performance estimates of a binary classifier, checked against NannyML 0.13's
CBPE as the oracle on the same reference and analysis data, and against the realized figures on synthetic data with a
known covariate shift.

NannyML runs in a venv of its own (its pins conflict with ours), made once by the `nannyml` fixture under
$WORKBENCH_TEST_NANNYML_VENV (default /tmp/nannyml-venv) and reused while it works (a marker file names what it holds):
making it takes 1.5 to 2 minutes from PyPI (76 s by hand: 66 s for `nannyml==0.13.*`, 10 s for the two packages
below; 105 s through the fixture on a busy machine), running NannyML 4 s a case after that. Under CI a venv that cannot
be made fails the tests; elsewhere it skips them."""
import json, os, shutil, subprocess, sys, venv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.errors import WorkbenchError
from workbench.estimate import METRICS, calibrate, calibrator, estimate, estimate_windows, realized, reconcile

NANNYML_VENV = Path(os.environ.get('WORKBENCH_TEST_NANNYML_VENV', '/tmp/nannyml-venv'))
# NannyML 0.13.1 imports statsmodels without requiring it, and predates pandas 3
NANNYML_SPEC = ['nannyml==0.13.*', 'statsmodels', 'pandas<3']
NANNYML_NAME = {'auc': 'roc_auc'}  # NannyML's names of our metrics, where they differ

RUN_NANNYML = r'''
"Run NannyML's CBPE on each case folder given (ref.parquet, ana.parquet, case.json); print one JSON line of results."
import json, sys, warnings
import pandas as pd, nannyml as nml
warnings.simplefilter('ignore')
out = {}
for d in sys.argv[1:]:
    case = json.load(open(f'{d}/case.json'))
    ref, ana = pd.read_parquet(f'{d}/ref.parquet'), pd.read_parquet(f'{d}/ana.parquet')
    metrics = ['roc_auc', 'accuracy', 'precision', 'recall', 'f1']
    cbpe = nml.CBPE(y_pred_proba='score', y_pred='pred', y_true='label', problem_type='classification_binary',
                    metrics=metrics, chunk_size=case['chunk_size'])
    cbpe.fit(ref)
    res = cbpe.estimate(ana).filter(period='analysis').to_df()
    rows = []
    for m in metrics:
        for i in range(len(res)):
            g = lambda k: float(res[(m, k)].iloc[i])
            rows.append(dict(chunk=i, metric=m, value=g('value'), sampling_error=g('sampling_error'),
                             lower=g('lower_confidence_boundary'), upper=g('upper_confidence_boundary'),
                             lower_threshold=g('lower_threshold'), upper_threshold=g('upper_threshold'),
                             alert=bool(res[(m, 'alert')].iloc[i])))
    out[d] = dict(calibrated=bool(cbpe.needs_calibration), version=nml.__version__, rows=rows)
print('NANNYML_JSON ' + json.dumps(out))
'''


def _nannyml_works(python:Path) -> bool:
    r = subprocess.run([str(python), '-c', 'import nannyml, pyarrow; assert nannyml.__version__.startswith("0.13.")'],
                       capture_output=True, text=True)
    return r.returncode == 0


@pytest.fixture(scope='session')
def nannyml() -> Path:
    "The Python of a venv with NannyML 0.13, made once (see the module's docstring) and reused while it works."
    python, mark = NANNYML_VENV/'bin'/'python', NANNYML_VENV/'.workbench-ready'
    if python.exists() and (mark.exists() and mark.read_text() == ' '.join(NANNYML_SPEC) or _nannyml_works(python)):
        mark.write_text(' '.join(NANNYML_SPEC))
        return python
    try:
        shutil.rmtree(NANNYML_VENV, ignore_errors=True)
        venv.create(NANNYML_VENV, with_pip=True)
        r = subprocess.run([str(python), '-m', 'pip', 'install', '--disable-pip-version-check', '-q', *NANNYML_SPEC],
                           capture_output=True, text=True, timeout=1800)
        assert r.returncode == 0, f'pip install {" ".join(NANNYML_SPEC)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
        assert _nannyml_works(python), 'NannyML 0.13 was installed but does not import'
        mark.write_text(' '.join(NANNYML_SPEC))
    except (AssertionError, OSError, subprocess.SubprocessError) as e:
        if os.environ.get('CI'): pytest.fail(f'no NannyML 0.13 venv at {NANNYML_VENV}: {e}')
        pytest.skip(f'no NannyML 0.13 venv at {NANNYML_VENV}: {e}')
    return python


def sig(z): return 1 / (1 + np.exp(-z))


def overconfident(rng, n:int, mu:float, slope:float=1.6, bias:float=0.4, spread:float=1.3) -> tuple:
    "Scores and labels of `n` rows whose true log-odds are normal around `mu`: scores sig(slope z + bias), labels drawn from sig(z)."
    z = rng.normal(mu, spread, n)
    return sig(slope * z + bias), (rng.random(n) < sig(z)).astype(int)


def write_case(folder:Path, ref:tuple, windows:list, threshold:float, chunk_size:int) -> Path:
    "The reference and the windows (one after the other) as NannyML reads them, predicted labels at `threshold`."
    folder.mkdir(parents=True)
    s, y = ref
    pd.DataFrame(dict(score=s, pred=(s >= threshold).astype(int), label=y)).to_parquet(folder/'ref.parquet')
    a = np.concatenate(windows)
    pd.DataFrame(dict(score=a, pred=(a >= threshold).astype(int))).to_parquet(folder/'ana.parquet')
    (folder/'case.json').write_text(json.dumps(dict(chunk_size=chunk_size, threshold=threshold)))
    return folder


def run_nannyml(python:Path, *folders:Path) -> dict:
    script = folders[0].parent/'run_nannyml.py'
    script.write_text(RUN_NANNYML)
    r = subprocess.run([str(python), str(script), *map(str, folders)], capture_output=True, text=True, timeout=600)
    line = next((l for l in r.stdout.splitlines() if l.startswith('NANNYML_JSON ')), None)
    assert r.returncode == 0 and line, f'NannyML failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    return json.loads(line.removeprefix('NANNYML_JSON '))


def test_estimates_agree_with_nannyml(nannyml, tmp_path):
    """Three fixed cases, each a reference of 20,000 rows and 10 windows of 2,000 whose inputs move: overconfident scores at
    threshold 0.5 (calibration needed), scores that are the true probabilities at threshold 0.3, and a majority of positives
    at threshold 0.6 (the AUC's sampling error from the negatives' placements). Every estimate, sampling error, band,
    threshold and alert of ours equals NannyML's."""
    rng = np.random.default_rng(7)
    cases = {}
    for name, mu, step, slope, bias, threshold in (('overconfident', -0.8, 0.12, 1.6, 0.4, 0.5),
                                                   ('calibrated', -0.8, 0.12, 1.0, 0.0, 0.3),
                                                   ('mostly_positive', 1.0, -0.12, 1.3, -0.2, 0.6)):
        ref = overconfident(rng, 20_000, mu, slope, bias)
        windows = [overconfident(rng, 2_000, mu + step * i, slope, bias)[0] for i in range(10)]
        ours = estimate_windows(*ref, {i: w for i, w in enumerate(windows)}, threshold=threshold, chunk_size=2_000)
        cal = calibrator(*ref, threshold=threshold, chunk_size=2_000)
        cases[name] = (write_case(tmp_path/name, ref, windows, threshold, 2_000), ours, cal)
    theirs = run_nannyml(nannyml, *(folder for folder, _, _ in cases.values()))

    gaps = {}
    for name, (folder, ours, cal) in cases.items():
        t = theirs[str(folder)]
        assert t['version'].startswith('0.13.') and len(t['rows']) == len(ours) == 50 and name in cases
        assert cal['calibrated'] == t['calibrated'], name
        nml = pd.DataFrame(t['rows']).rename(columns={'chunk': 'window', 'value': 'estimate'})
        nml['metric'] = nml.metric.replace({v: k for k, v in NANNYML_NAME.items()})
        both = ours.merge(nml, on=['window', 'metric'], suffixes=('', '_nml'))
        assert len(both) == 50
        for col in ('estimate', 'sampling_error', 'lower', 'upper', 'lower_threshold', 'upper_threshold'):
            gaps[(name, col)] = float((both[col] - both[f'{col}_nml']).abs().max())
        assert (both.alert == both.alert_nml).all(), both[both.alert != both.alert_nml]
        assert both.alert.any() and not both.alert.all(), 'the case should alert in some windows only'
    print('\nlargest gap to NannyML 0.13:', json.dumps({f'{n}.{c}': f'{g:.1e}' for (n, c), g in gaps.items()}))
    assert max(g for (_, c), g in gaps.items() if c == 'estimate') < 1e-6  # the issue asks for 0.01
    assert max(g for (_, c), g in gaps.items() if c != 'estimate') < 1e-6
    assert cases['overconfident'][2]['calibrated']


def shifted(rng, n:int, mu:float, spread:float) -> tuple:
    "Calibrated scores and labels drawn from them: log-odds normal around `mu` with standard deviation `spread`."
    p = sig(rng.normal(mu, spread, n))
    return p, (rng.random(n) < p).astype(int)


def test_realized_within_the_band_under_covariate_shift():
    """Calibrated scores, labels drawn from them, 20 windows of 5,000 rows whose score distribution moves (mean and spread
    of the log-odds): the realized figure lies inside the estimated band in nearly every window, for every metric."""
    rng = np.random.default_rng(2023)
    ref = shifted(rng, 20_000, -1.0, 1.5)
    shifts = [(-1.0 + 1.6 * i / 19, 1.5 - 0.8 * ((i * 7) % 20) / 19) for i in range(20)]  # means -1 to 0.6, spreads 0.7 to 1.5
    labelled = {f'w{i:02d}': shifted(rng, 5_000, mu, sd) for i, (mu, sd) in enumerate(shifts)}
    est = estimate_windows(*ref, {k: s for k, (s, _) in labelled.items()})
    real = pd.DataFrame([dict(window=k, metric=m, value=v) for k, (s, y) in labelled.items() for m, v in realized(s, y).items()])
    rec = reconcile(est, real)
    rate = rec.groupby('metric').inside.mean()
    print('\nrealized inside the band, per metric:', rate.round(3).to_dict(), 'overall', round(float(rec.inside.mean()), 3),
          '; largest |realized - estimate|:', rec.groupby('metric').error.apply(lambda e: round(float(e.abs().max()), 4)).to_dict())
    assert len(rec) == 100 and rec.inside.notna().all()
    assert rec.inside.mean() >= 0.95 and rate.min() >= 0.9, rate
    assert rec.error.abs().max() < 0.05


def test_estimate_drops_as_scores_move_toward_half():
    """Windows whose calibrated scores crowd toward 0.5 (the log-odds' spread shrinking from 2 to 0.3): the estimated AUC and
    accuracy fall window after window, as the realized ones do, and the last windows alert."""
    rng = np.random.default_rng(5)
    ref = shifted(rng, 20_000, 0.0, 2.0)
    labelled = {f'sd={sd:.1f}': shifted(rng, 5_000, 0.0, sd) for sd in (2.0, 1.6, 1.2, 0.9, 0.6, 0.3)}
    est = estimate_windows(*ref, {k: s for k, (s, _) in labelled.items()}, metrics=['auc', 'accuracy'])
    for m in ('auc', 'accuracy'):
        e = est[est.metric == m].set_index('window')
        r = pd.Series({k: realized(s, y)[m] for k, (s, y) in labelled.items()})
        assert e.estimate.is_monotonic_decreasing, e.estimate
        assert e.estimate.iloc[0] - e.estimate.iloc[-1] > 0.15 and r.iloc[0] - r.iloc[-1] > 0.15
        assert (e.estimate - r).abs().max() < 0.03
        assert not e.alert.iloc[0] and e.alert.iloc[-2:].all()


def test_splits_are_scikit_learns():
    "The calibration test's splits are StratifiedShuffleSplit's (the ones NannyML draws): the same rows in the same order."
    from sklearn.model_selection import StratifiedShuffleSplit
    from workbench.estimate import _splits
    rng = np.random.default_rng(3)
    for y in ((rng.random(100_003) < 0.37).astype(int), np.r_[np.zeros(50), np.ones(50)], (rng.random(999) < 0.8).astype(int)):
        theirs = StratifiedShuffleSplit(n_splits=10, test_size=0.1, random_state=42).split(y, y)
        for (a, b), (c, d) in zip(_splits(y), theirs, strict=True):
            np.testing.assert_array_equal(a, c); np.testing.assert_array_equal(b, d)


def test_calibrator_is_plain_data():
    "The calibrator survives JSON and gives the same estimates after; `calibrate` applies its isotonic breakpoints as scikit-learn does."
    from sklearn.isotonic import IsotonicRegression
    rng = np.random.default_rng(1)
    s, y = overconfident(rng, 10_000, -0.5)
    cal = calibrator(s, y)
    again = json.loads(json.dumps(cal))
    w = overconfident(rng, 3_000, 0.3)[0]
    assert estimate(again, w) == estimate(cal, w)
    assert cal['calibrated'] and set(cal['metrics']) == set(METRICS)
    iso = IsotonicRegression(out_of_bounds='clip').fit(s, y)
    np.testing.assert_allclose(calibrate(again, w), iso.predict(w), atol=1e-12)


@pytest.mark.parametrize('call, message', [
    (lambda cal: estimate(cal, [0.2, np.nan]), 'the scores hold 1 missing values (NaN): drop or impute them before estimating'),
    (lambda cal: estimate(cal, [0.2, 1.3]), "the scores must be probabilities in [0, 1], got 1.3: pass the model's probability"),
    (lambda cal: estimate(cal, []), 'the scores hold no rows: estimate a window only once it holds predictions'),
    (lambda cal: calibrator([0.1, 0.8, 0.6], [0, 1, 2]), 'labels must be 0 or 1, got 2: map the positive class to 1 and the other to 0'),
    (lambda cal: calibrator([0.1, 0.8, 0.6], [0, 0, 0]), "the reference's labels are all 0: calibration needs both classes"),
    (lambda cal: estimate_windows([0.1, 0.8], [0, 1], {'2026-01': [0.5, -0.1]}), "window '2026-01': the scores must be probabilities"),
    (lambda cal: estimate(cal | {'task': 'regression'}, [0.5]), 'label-free performance estimation is not provided for a regression model'),
    (lambda cal: estimate_windows([0.1, 0.8], [0, 1], {}, task='regression'), 'wait for its labels and run `workbench monitor performance`'),
    (lambda cal: reconcile(pd.DataFrame(), pd.DataFrame(dict(window=[], metric=[]))), 'the realized figures need the columns window, metric and value'),
])
def test_bad_input_says_what_to_do(call, message):
    cal = calibrator(*overconfident(np.random.default_rng(0), 2_000, -0.5))
    with pytest.raises(WorkbenchError) as e: call(cal)
    assert message in str(e.value) and str(e.value).count('. ') == 0, str(e.value)  # one sentence


if __name__ == '__main__': sys.exit(pytest.main([__file__, '-q', '-s']))


def test_the_served_demo_is_estimated_before_its_labels_and_reconciled_after(demo_run, tmp_path):
    "On the demo's workspace: every complete window estimated once and kept, the realized figures of its labelled windows beside them, the CLI."
    from workbench import performance
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    from conftest import clean_env
    root = shutil.copytree(demo_run.ws, tmp_path/'ws')
    ws = open_workspace(root, load_settings(env={}))
    served = ws.sql("select count(*) from predictions where model = 'credit-default' and version = 1").fetchall()[0][0]
    e = performance.history_of_estimates(ws, 'credit-default/1')  # the demo estimated its months of traffic, by the month each request carried
    assert list(dict.fromkeys(e.window)) == ['2025-04', '2025-05', '2025-06'] and set(e.metric) == set(METRICS) and (e.rows == 1000).all()
    months = performance.estimated(ws, 'credit-default/1', window='1mo', time_key='month')
    assert len(months) == len(e) and len(ws.sql("select * from estimates").df()) == len(e)  # the months: estimated once, by the demo
    again = performance.estimated(ws, 'credit-default/1', window='1000rows')  # in scoring order: the canary's replays too, once each
    assert again.window.nunique() == served // 1000 and len(ws.sql("select * from estimates").df()) == len(e) + len(again)
    assert len(performance.estimated(ws, 'credit-default/1', window='1000rows')) == len(again)  # nothing estimated twice
    real = ws.sql("""select "window", metric, arg_max(value, labelled) as value from performance
                     where model = 'credit-default' and version = 1 group by all""").df()
    both = months.merge(real, on=['window', 'metric'])
    assert set(both.metric) == set(METRICS) and both.window.nunique() >= 2, both  # labelled windows: realized beside the estimate
    assert np.allclose(both.realized, both.value, equal_nan=True) and np.allclose(both.error, both.value - both.estimate, equal_nan=True)
    auc = again[again.metric == 'auc']
    assert ((auc.lower < auc.estimate) & (auc.estimate < auc.upper)).all() and auc.estimate.between(0.7, 0.9).all(), auc
    env = clean_env(WORKBENCH_HOME=str(root))
    wb = lambda *a: subprocess.run([str(Path(sys.executable).parent/'workbench'), *a], env=env, capture_output=True, text=True, timeout=300)
    r = wb('monitor', 'estimate', 'credit-default/1', '--window', '1000rows')
    assert r.returncode == 0 and 'rows 1-1000' in r.stdout and 'auc' in r.stdout, r.stderr
    r = wb('monitor', 'estimate', 'credit-default/1', '--window', 'weekly')
    assert r.returncode == 1 and "window 'weekly' is not valid" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_the_drift_that_costs_accuracy_is_ranked_first(demo_run, tmp_path):
    "`monitor impact` on the demo's drifted month: features that did not drift cost nothing; the ranking is by impact."
    from workbench import performance
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    from conftest import clean_env
    root = shutil.copytree(demo_run.ws, tmp_path/'ws')
    ws = open_workspace(root, load_settings(env={}))
    r = performance.drift_impact(ws, 'credit-default/1', '2025-06')  # month 6 (by the month its requests carried): income, credit_score and product drifted
    assert set(r[r.drifted].feature) == {'income', 'credit_score', 'product'} and r.impact.is_monotonic_decreasing, r
    assert r.feature[0] == 'credit_score' and r.impact[0] > 0.01, r  # half the scores missing costs the most, though its PSI is the least
    assert (r[~r.drifted].impact.abs() < 0.01).all(), r  # moving an undrifted feature onto its own distribution: nothing
    assert r.estimated_auc.nunique() == 1 and 0.6 < r.estimated_auc[0] < 0.95
    env = clean_env(WORKBENCH_HOME=str(root))
    wb = lambda *a: subprocess.run([str(Path(sys.executable).parent/'workbench'), *a], env=env, capture_output=True, text=True, timeout=300)
    out = wb('monitor', 'impact', 'credit-default/1', '--window', '2025-06', '--time-key', 'month')
    assert out.returncode == 0 and 'income' in out.stdout and 'impact' in out.stdout, out.stderr
    bad = wb('monitor', 'impact', 'credit-default/1', '--window', 'rows 9-10')
    assert bad.returncode == 1 and "no window 'rows 9-10' in the drift table" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
