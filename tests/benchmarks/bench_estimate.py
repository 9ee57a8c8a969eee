"""Label-free performance estimation (issue 23): `workbench.estimate` against NannyML 0.13's CBPE on the same data.

Data (made per run with a fixed seed in a temporary folder under --tmp, removed afterwards): a labelled reference of
--ref-rows rows and a prediction log of --rows rows in --windows windows of equal size, written as Parquet with one row
group per window (a window is what DuckDB would hand over from the prediction log). The scores are an overconfident
model's (sig(1.6 z + 0.4) where the true probability is sig(z)), so both tools calibrate them; window i's log-odds are
normal around -0.8 + 1.2 i / windows, so the later windows alert. NannyML reads a log of --nannyml-rows rows of the same
shape (its chunks are the windows, `chunk_size` = rows / windows), and the same reference.

Each tool runs in a process of its own (this file run as a worker: `ours` with our interpreter, `nannyml` with the
Python of NannyML's venv, --nannyml-python, made as tests/test_estimate.py makes it), timed from the Parquet files on
disk to every window's estimates in memory, in two parts: fitting on the reference (calibration, sampling errors,
thresholds; once per model version) and estimating the windows. Peak RSS is the worker's VmHWM; each also reports its
RSS after its imports. ours reads the reference's two columns and then one window's scores at a time (the next one read
by a thread while this one is estimated, as a DuckDB scan would overlap them); NannyML reads both files into pandas (it
needs the frames; pyarrow decodes them on both cores).

Consistency (asserted): our estimates on NannyML's log, with the same reference chunks, agree with NannyML's within
0.01 for every window and metric (they agree to ~1e-9), and both alert in the same windows; every one of our windows
on the big log has all five figures.

Printed: ONE line of JSON with both tools' figures and the ratios (NannyML's seconds per row / ours, when the row counts
differ): `speed_ratio_windows` for estimating the windows, the cost of every monitoring run once the calibrator is
stored (as JSON for ours; NannyML would pickle its fitted estimator); `speed_ratio_with_fit` for the whole run, fit
included; `speed_ratio_fit` for the fit alone (the same reference: a plain ratio); `memory_ratio` = our peak RSS /
NannyML's, and `memory_ratio_net` the same net of each one's RSS after its imports. The issue's targets: 20x the speed
(taken as speed_ratio_windows) at a quarter of the memory (memory_ratio), in `targets_met`; reported, not asserted.
NannyML 0.13 fits 10M rows here (under 1 GB), so by default both read the same 10M-row log.

Figures (2 cores shared with other work, 1-minute load 1.3-3.5), four runs at the defaults: estimating the windows
ours 0.10-0.21 s, NannyML 4.2-5.0 s: 22-44x (target 20x: met; ours varies most, the machine's load with it); with
the fit, ours 0.75-0.9 s, NannyML 7.7-8.5 s: 9-10.5x; the fit alone (calibration test, sampling errors, thresholds
on 500,000 rows) ours 0.65-0.7 s, NannyML 3.4-3.5 s: 5x. Peak RSS ours 239-242 MB (145 MB of it the imports: numpy,
pandas, pyarrow, scipy.optimize), NannyML 956-986 MB: 0.24-0.25 (target 0.25: met, at the limit), 0.14 net of
imports. With NannyML on 1M rows (--nannyml-rows 1000000) its peak is 450 MB, and the memory ratio 0.53.

Run: python tests/benchmarks/bench_estimate.py [--rows 10000000] [--nannyml-rows N] [--ref-rows 500000]
(or `pytest tests/benchmarks/bench_estimate.py -m benchmark -s -p no:cacheprovider`, with the defaults).
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path

SEED = 23
ROOT = Path(__file__).resolve().parents[2]
NANNYML_PYTHON = os.environ.get('WORKBENCH_BENCH_NANNYML_PYTHON', '/tmp/nannyml-venv/bin/python')
NAMES = {'roc_auc': 'auc'}  # NannyML's metric names that differ from ours


def _vmhwm_mb() -> float:
    "This process's peak resident set size, in MB (VmHWM: unlike ru_maxrss, it does not carry a parent's peak across exec)."
    with open('/proc/self/status') as f:
        return next(int(l.split()[1]) for l in f if l.startswith('VmHWM:')) / 1024

def _rss_mb() -> float:
    with open('/proc/self/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def write_data(folder:Path, rows:int, nannyml_rows:int, ref_rows:int, windows:int) -> dict:
    "The reference and the two logs as Parquet in `folder`, one row group per window."
    import numpy as np, pyarrow as pa, pyarrow.parquet as pq
    sig = lambda z: 1 / (1 + np.exp(-z))
    def sample(rng, n, mu):
        z = rng.normal(mu, 1.3, n)
        return sig(1.6 * z + 0.4), (rng.random(n) < sig(z)).astype(np.int8)
    s, y = sample(np.random.default_rng([SEED, 0]), ref_rows, -0.8)
    paths = dict(ref=folder/'ref.parquet', ours=folder/'log.parquet', nannyml=folder/'log_nannyml.parquet')
    pq.write_table(pa.table(dict(score=s, pred=(s >= 0.5).astype(np.int8), label=y)), paths['ref'], row_group_size=ref_rows)
    for which, n in (('ours', rows), ('nannyml', nannyml_rows)):
        with pq.ParquetWriter(paths[which], pa.schema([('score', pa.float64()), ('pred', pa.int8())])) as w:
            for i in range(windows):
                s = sample(np.random.default_rng([SEED, 1 if which == 'ours' else 2, i]), n // windows, -0.8 + 1.2 * i / windows)[0]
                w.write_table(pa.table(dict(score=s, pred=(s >= 0.5).astype(np.int8))), row_group_size=n // windows)
    return {k: str(v) for k, v in paths.items()}


# The workers: each runs one tool in this process and prints one line of JSON. They import only that tool.
def worker_ours(ref:str, log:str, chunk_size:int) -> dict:
    from concurrent.futures import ThreadPoolExecutor
    import numpy as np, pyarrow.parquet as pq
    from workbench.estimate import calibrator, estimate
    import scipy.optimize  # noqa: F401  imported by `calibrator` (isotonic regression): counted as an import, not as work
    baseline = _rss_mb()
    t0 = time.perf_counter()
    ref = pq.read_table(ref, columns=['score', 'label'])
    cal = calibrator(ref['score'].to_numpy(), ref['label'].to_numpy(), chunk_size=chunk_size)
    t1, peak_fit = time.perf_counter(), _vmhwm_mb()
    f, out, rows = pq.ParquetFile(log), [], 0
    read = lambda i: f.read_row_group(i, columns=['score']).column(0).to_numpy()
    with ThreadPoolExecutor(1) as reader:  # the next window is read (Arrow, without the GIL) while this one is estimated
        coming = reader.submit(read, 0)
        for i in range(n := f.metadata.num_row_groups):
            scores = coming.result()
            if i + 1 < n: coming = reader.submit(read, i + 1)
            out.append({m: dict(estimate=e['estimate'], alert=e['alert']) for m, e in estimate(cal, scores).items()})
            rows += len(scores)
    t2 = time.perf_counter()
    return dict(fit_s=t1 - t0, windows_s=t2 - t1, seconds=t2 - t0, rows=rows, ref_rows=cal['rows'], calibrated=cal['calibrated'],
                rss_after_imports_mb=baseline, peak_rss_after_fit_mb=peak_fit, peak_rss_mb=_vmhwm_mb(), numpy=np.__version__,
                windows=out)

def worker_nannyml(ref:str, log:str, chunk_size:int) -> dict:
    import warnings
    import pandas as pd, nannyml as nml
    warnings.simplefilter('ignore')
    baseline = _rss_mb()
    metrics = ['roc_auc', 'accuracy', 'precision', 'recall', 'f1']
    t0 = time.perf_counter()
    reference = pd.read_parquet(ref)
    cbpe = nml.CBPE(y_pred_proba='score', y_pred='pred', y_true='label', problem_type='classification_binary',
                    metrics=metrics, chunk_size=chunk_size)
    cbpe.fit(reference)
    t1, peak_fit = time.perf_counter(), _vmhwm_mb()
    analysis = pd.read_parquet(log)
    res = cbpe.estimate(analysis).filter(period='analysis').to_df()
    t2 = time.perf_counter()
    out = [{NAMES.get(m, m): dict(estimate=float(res[(m, 'value')].iloc[i]), alert=bool(res[(m, 'alert')].iloc[i]))
            for m in metrics} for i in range(len(res))]
    return dict(fit_s=t1 - t0, windows_s=t2 - t1, seconds=t2 - t0, rows=len(analysis), ref_rows=len(reference),
                calibrated=bool(cbpe.needs_calibration), rss_after_imports_mb=baseline, peak_rss_after_fit_mb=peak_fit,
                peak_rss_mb=_vmhwm_mb(),
                nannyml=nml.__version__, pandas=pd.__version__, windows=out)

if __name__ == '__main__' and len(sys.argv) > 1 and sys.argv[1] in ('ours', 'nannyml'):  # a worker: TOOL REF LOG CHUNK_SIZE
    tool, ref, log, chunk = sys.argv[1:5]
    out = (worker_ours if tool == 'ours' else worker_nannyml)(ref, log, int(chunk))
    print('BENCH_JSON ' + json.dumps(out, default=float))
    sys.exit(0)


def run_worker(python:str, tool:str, *args) -> dict:
    "Run this file as a worker for `tool` with `python`, in a new process; its JSON."
    env = {**os.environ, 'PYTHONPATH': str(ROOT)} if tool == 'ours' else {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    r = subprocess.run([python, __file__, tool, *map(str, args)], capture_output=True, text=True, env=env)
    line = next((l for l in r.stdout.splitlines() if l.startswith('BENCH_JSON ')), None)
    assert r.returncode == 0 and line, f'the {tool} worker failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    return json.loads(line.removeprefix('BENCH_JSON '))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--rows', type=int, default=10_000_000, help='rows of the log our estimator reads')
    p.add_argument('--nannyml-rows', type=int, default=None, help="rows of NannyML's log (the same shape); default: --rows")
    p.add_argument('--ref-rows', type=int, default=500_000, help='rows of the labelled reference, for both')
    p.add_argument('--windows', type=int, default=20)
    p.add_argument('--nannyml-python', default=NANNYML_PYTHON, help="the Python of a venv with nannyml==0.13.*")
    p.add_argument('--tmp', default=os.environ.get('WORKBENCH_BENCH_TMP'), help='where the data goes (removed afterwards)')
    a = p.parse_args(argv)
    a.nannyml_rows = a.nannyml_rows or a.rows
    folder = Path(tempfile.mkdtemp(prefix='workbench-bench-estimate-', dir=a.tmp))
    try:
        t = time.perf_counter()
        paths = write_data(folder, a.rows, a.nannyml_rows, a.ref_rows, a.windows)
        made_s = time.perf_counter() - t
        ours_chunk, nml_chunk = min(a.rows // a.windows, a.ref_rows // 10), a.nannyml_rows // a.windows
        load = round(os.getloadavg()[0], 2)
        ours = run_worker(sys.executable, 'ours', paths['ref'], paths['ours'], ours_chunk)
        theirs = run_worker(a.nannyml_python, 'nannyml', paths['ref'], paths['nannyml'], nml_chunk)
        same = run_worker(sys.executable, 'ours', paths['ref'], paths['nannyml'], nml_chunk)  # ours on NannyML's log
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    # Consistency: the same estimates and alerts on the common log, and every figure on the big one.
    assert len(same['windows']) == len(theirs['windows']) == len(ours['windows']) == a.windows
    assert ours['rows'] == a.rows // a.windows * a.windows and theirs['rows'] == same['rows']
    assert ours['calibrated'] and theirs['calibrated'] and same['calibrated']
    gap = max(abs(w[m]['estimate'] - v['estimate']) for w, t in zip(same['windows'], theirs['windows']) for m, v in t.items())
    assert gap < 0.01, f'the estimates differ from NannyML\'s by up to {gap}'
    assert all(w[m]['alert'] == v['alert'] for w, t in zip(same['windows'], theirs['windows']) for m, v in t.items())
    assert all(all(0 <= e['estimate'] <= 1 for e in w.values()) and len(w) == 5 for w in ours['windows'])
    alerts = sum(e['alert'] for w in ours['windows'] for e in w.values())

    per_row = lambda r, k: r[k] / r['rows']
    keep = lambda r: {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k != 'windows'}
    out = dict(bench='estimate', windows=a.windows, ref_rows=a.ref_rows, data_written_s=round(made_s, 1), loadavg_1m_before=load,
               ours=keep(ours) | dict(alerts=alerts), nannyml=keep(theirs),
               speed_ratio_windows=round(per_row(theirs, 'windows_s') / per_row(ours, 'windows_s'), 1),
               speed_ratio_with_fit=round(per_row(theirs, 'seconds') / per_row(ours, 'seconds'), 1),
               speed_ratio_fit=round(theirs['fit_s'] / ours['fit_s'], 1),
               memory_ratio=round(ours['peak_rss_mb'] / theirs['peak_rss_mb'], 3),
               memory_ratio_net=round((ours['peak_rss_mb'] - ours['rss_after_imports_mb'])
                                      / (theirs['peak_rss_mb'] - theirs['rss_after_imports_mb']), 3),
               max_gap_to_nannyml=gap, ours_on_nannyml_log_s=round(same['seconds'], 3))
    out['targets_met'] = dict(speed_ratio_windows=out['speed_ratio_windows'] >= 20, memory_ratio=out['memory_ratio'] <= 0.25)
    print(json.dumps(out))
    return out


try:
    import pytest  # the pytest entry point, in the benchmark mark's run only; below the workers, which never load it
    pytestmark = pytest.mark.benchmark

    def test_estimate_vs_nannyml():
        out = main([])
        assert out['speed_ratio_windows'] > 1  # the targets (20x, 1/4) are reported, not asserted: they depend on the machine's load
except ImportError:
    pass


if __name__ == '__main__':
    main()
