"""Drift over a prediction log of 1,000,000 and 10,000,000 rows: `drift.drift` within `drift.memory_limit`, against Evidently's `DataDriftPreset`.

Issue 17, item 4: `monitor drift` ran out of memory (DuckDB's OutOfMemory at a fixed 1 GB) on a log of 234k rows. This
runs the whole command's path, `drift.drift(ws, 'bench-drift/1', window=WINDOW)`, on a log of ROWS rows and checks
that it completes within the limit, reporting its time and peak RSS at both sizes.

Data: the columns of bench_drift.py (20 numeric, 3 categorical; its generators, seeded). The model, `bench-drift/1`, is
a StandardScaler + one-hot + LogisticRegression pipeline trained on REF_ROWS reference rows (committed as dataset
`bench_ref`), exported with `onnx.export` and registered. The log is written through the workbench's own prediction-log
code (`predictions.to_table` of requests of CHUNK rows, scored by the ONNX model, appended to the `predictions` table),
with bench_drift.py's current frame: every third numeric column moved by 0.3 standard deviations, `cat_0` with an unseen
category at 15%. Making it takes ~25 s a million rows (JSON inputs: ~1 GB of Parquet per 10M rows).
A process of its own (`python bench_drift_log.py make ...`) makes the workspace, so the workers' peak RSS is their own.

Each tool runs in a process of its own; its peak RSS is VmHWM (see bench_batch.py for why not ru_maxrss):
- ours: `drift.drift(ws, 'bench-drift/1', window=WINDOW, alert=False)` with `drift.memory_limit` = LIMIT
  ($WORKBENCH_BENCH_DRIFT_LIMIT, default 512MB, well below the log's size), timed from the call to its return: the
  reference profile (once per model version) and every window, recorded in the drift table.
- Evidently: the same rows read from the `predictions` table (DuckDB) and their JSON inputs parsed into a DataFrame
  (it needs the frame in memory, so reading counts), the reference dataset loaded, then `Report([DataDriftPreset()])`
  run on each window of WINDOW rows in log order. At 10M rows (100 windows, a frame of ~2 GB) it would take ~25
  minutes, so it runs at 10M only with WORKBENCH_BENCH_DRIFT_EVIDENTLY_10M=1.
Both must flag exactly the shifted columns and cat_0 in every window (Evidently by its per-column verdicts, ours by the
normed Wasserstein distance and Jensen-Shannon distance, the statistics Evidently uses at these sizes).

Run: pytest tests/benchmarks/bench_drift_log.py -m benchmark -s -p no:cacheprovider ($WORKBENCH_BENCH_DRIFT_ROWS, e.g.
1000000, runs one size only; $WORKBENCH_BENCH_TMP is where the workspace goes, removed afterwards).

Figures on the 2-core machine while six other engineers' work ran on it (1-minute load ~5-6, so times are inflated):
- 1M log rows (10 windows): ours 51.5 s at 1,116 MB peak RSS (170 MB after imports; the workbench's MLflow client
  adds ~290 MB), Evidently 205.1 s (28.9 s of it reading and parsing the log) at 3,645 MB: 4.0x faster at 0.31 of
  its memory.
- 10M log rows (100 windows): ours 201.6 s at 1,215 MB peak RSS: 10x the log, x1.09 the memory (memory follows
  drift.memory_limit and one window, not the log). Evidently not run (see above).
Before the fix, on a log like the issue's (234,000 rows of 85 numeric inputs, two batch runs' samples), `drift`
with `--window 100000rows` failed with DuckDB's OutOfMemory at its fixed 1 GB (peak RSS 2,012 MB); now it completes
at drift.memory_limit=1GB (1,378 MB peak) and at 256MB with 50000rows windows (1,129 MB).
"""
import json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = [int(s) for s in os.environ.get('WORKBENCH_BENCH_DRIFT_ROWS', '1000000,10000000').split(',')]
REF_ROWS, WINDOW, CHUNK = 100_000, 100_000, 250_000
LIMIT = os.environ.get('WORKBENCH_BENCH_DRIFT_LIMIT', '512MB')
MODEL = 'bench-drift'


def _vmhwm_mb() -> float:
    "This process's peak resident set size (VmHWM), in MB."
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith('VmHWM:'): return int(line.split()[1]) / 1024
    return float('nan')

def _frame(rows:int, current:bool, seed:int):
    "bench_drift.py's reference or current frame, as pandas."
    import numpy as np, pandas as pd
    sys.path.insert(0, str(HERE))
    import bench_drift as bd
    rng = np.random.default_rng([seed, int(current)])
    cols = {c: bd._numeric(rng, j, rows, current) for j, c in enumerate(bd.NUMERIC)}
    cols |= {c: bd._categorical(rng, j, rows, current).to_numpy(zero_copy_only=False) for j, c in enumerate(bd.CATEGORICAL)}
    return pd.DataFrame(cols), bd


def make(root:str, rows:int):
    "A workspace with the registered model and a prediction log of `rows` rows."
    from datetime import datetime, timedelta, timezone
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from workbench import data, deployed, onnx, predictions, registry, tracking
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    ws = open_workspace(root, load_settings(env={}))
    ref, bd = _frame(REF_ROWS, False, 0)
    ref['label'] = (ref.num_01 + ref.num_02 > 2).astype(int)
    v = data.commit(ws, 'bench_ref', ref, 'reference', 'bench')
    feats = bd.NUMERIC + bd.CATEGORICAL
    pre = ColumnTransformer([('num', make_pipeline(SimpleImputer(), StandardScaler()), bd.NUMERIC), ('cat', OneHotEncoder(handle_unknown='ignore'), bd.CATEGORICAL)])
    with tracking.start_run(ws, MODEL, v.ref, feats, 'label') as run:
        ex = onnx.export(make_pipeline(pre, LogisticRegression(max_iter=300)).fit(ref[feats], ref.label), ref[feats][-5000:])
        registry.log_candidate(ws, run.run_id, ex)
    mv = registry.register(ws, run.run_id, MODEL, actor='bench')
    model, start = deployed.OnnxModel(ex.onnx), datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i, at in enumerate(range(0, rows, CHUNK)):
        cur, _ = _frame(min(CHUNK, rows - at), True, 1 + i)
        meta = dict(request_id=f'bench-{i:05d}', time=start + timedelta(seconds=i), model=mv.name, version=mv.version, variant='batch', source='bench', latency_ms=0.0)
        out = dict(zip(model.outputs, model.session.run(None, model.feeds(cur))))
        ws.append('predictions', predictions.to_table([(meta, {c: cur[c].to_numpy() for c in feats}, len(cur), out)]))
    return dict(rows=rows, model=mv.ref)


def worker_ours(root:str, limit:str) -> dict:
    from workbench import drift
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    baseline = _vmhwm_mb()
    ws = open_workspace(root, load_settings(env={}, overrides={'drift.memory_limit': limit}))
    t0 = time.perf_counter()
    rows = drift.drift(ws, f'{MODEL}/1', window=f'{WINDOW}rows', alert=False)
    seconds = time.perf_counter() - t0
    flags = {w: sorted(set(g[(g.statistic.isin(['wasserstein', 'js'])) & g.drifted].feature) - {'model_score'}) for w, g in rows.groupby('window')}
    return dict(seconds=seconds, peak_rss_mb=_vmhwm_mb(), rss_after_imports_mb=baseline, windows=len(flags), flags=flags)


def worker_evidently(root:str) -> dict:
    import warnings, orjson, pandas as pd, evidently
    from evidently import Report, Dataset, DataDefinition
    from evidently.presets import DataDriftPreset
    from workbench import data
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    sys.path.insert(0, str(HERE))
    import bench_drift as bd
    baseline = _vmhwm_mb()
    ws = open_workspace(root, load_settings(env={}))
    t0 = time.perf_counter()
    ref = data.load(ws, 'bench_ref')[bd.NUMERIC + bd.CATEGORICAL]
    log = ws.sql("select inputs from predictions order by time, request_id, row").fetchnumpy()['inputs']
    cur = pd.DataFrame([orjson.loads(j) for j in log])[bd.NUMERIC + bd.CATEGORICAL]
    del log
    t1 = time.perf_counter()
    dd = DataDefinition(numerical_columns=bd.NUMERIC, categorical_columns=bd.CATEGORICAL)
    reference, flags = Dataset.from_pandas(ref, data_definition=dd), {}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for w in range(len(cur) // WINDOW):
            snap = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur[w * WINDOW:(w + 1) * WINDOW].reset_index(drop=True), data_definition=dd), reference)
            flags[w] = sorted(m['config']['column'] for m in snap.dict()['metrics'] if m['config']['type'].endswith(':ValueDrift') and m['value'] >= m['config']['threshold'])
    return dict(seconds=time.perf_counter() - t0, read_s=t1 - t0, peak_rss_mb=_vmhwm_mb(), rss_after_imports_mb=baseline, windows=len(flags), flags=flags,
                evidently=evidently.__version__)


if __name__ == '__main__':  # python bench_drift_log.py make ROOT ROWS | ours ROOT LIMIT | evidently ROOT
    tool, *args = sys.argv[1:]
    out = make(args[0], int(args[1])) if tool == 'make' else worker_ours(*args) if tool == 'ours' else worker_evidently(*args)
    print('BENCH_JSON ' + json.dumps(out, default=float))
    sys.exit(0)


import pytest  # below the workers, so that a worker process does not load it

pytestmark = pytest.mark.benchmark


def run(tool:str, *args, cwd:Path) -> dict:
    r = subprocess.run([sys.executable, __file__, tool, *map(str, args)], cwd=cwd, capture_output=True, text=True)
    line = next((l for l in r.stdout.splitlines() if l.startswith('BENCH_JSON ')), None)
    assert r.returncode == 0 and line, f'the {tool} worker failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    return json.loads(line.removeprefix('BENCH_JSON '))


@pytest.mark.parametrize('rows', SIZES)
def test_drift_over_the_prediction_log(rows):
    sys.path.insert(0, str(HERE))
    import bench_drift as bd
    folder = Path(tempfile.mkdtemp(prefix='workbench-bench-drift-log-', dir=os.environ.get('WORKBENCH_BENCH_TMP')))
    try:
        t = time.perf_counter()
        run('make', folder/'ws', rows, cwd=folder)
        made = time.perf_counter() - t
        load = round(os.getloadavg()[0], 2)
        ours = run('ours', folder/'ws', LIMIT, cwd=folder)
        expected = sorted(bd.SHIFTED + bd.WITH_UNSEEN)
        assert ours['windows'] == rows // WINDOW and all(f == expected for f in ours['flags'].values()), ours['flags']
        theirs = run('evidently', folder/'ws', cwd=folder) if rows <= 1_000_000 or os.environ.get('WORKBENCH_BENCH_DRIFT_EVIDENTLY_10M') else None
        if theirs: assert theirs['windows'] == rows // WINDOW and all(f == expected for f in theirs['flags'].values()), theirs['flags']
        print(json.dumps({
            'benchmark': 'drift_over_the_prediction_log', 'log_rows': rows, 'window_rows': WINDOW, 'windows': ours['windows'], 'reference_rows': REF_ROWS,
            'columns': {'numeric': len(bd.NUMERIC), 'categorical': len(bd.CATEGORICAL)}, 'cpus': os.cpu_count(), 'loadavg_1m_before': load,
            'log_made_s': round(made, 1),
            'ours': {'drift.memory_limit': LIMIT, 'seconds': round(ours['seconds'], 2), 'peak_rss_mb': round(ours['peak_rss_mb'], 1),
                     'rss_after_imports_mb': round(ours['rss_after_imports_mb'], 1)},
            'evidently': theirs and {'version': theirs['evidently'], 'seconds': round(theirs['seconds'], 2), 'read_s': round(theirs['read_s'], 2),
                                     'peak_rss_mb': round(theirs['peak_rss_mb'], 1), 'rss_after_imports_mb': round(theirs['rss_after_imports_mb'], 1)},
            'speedup': theirs and round(theirs['seconds'] / ours['seconds'], 1),  # Evidently's seconds / ours
            'peak_rss_ratio': theirs and round(ours['peak_rss_mb'] / theirs['peak_rss_mb'], 3)}))  # ours / Evidently's
    finally: shutil.rmtree(folder, ignore_errors=True)
