"""Batch scoring of a registered model over 1,000,000 and 10,000,000 Parquet rows: `workbench.batch.score` against scikit-learn's `predict_proba` and MLflow's pyfunc `predict` over pandas chunks.

Data: demo-shaped rows, the 18 columns of `workbench.demo`'s applications plus its `defaulted` label
(`write_input`). They are made in blocks of 1,000,000 rows, each a `demo.generate(months=10, rows_per_month=100_000,
drift_month=8)` with a seed of its own (BLOCK_SEED + block) and starting 10 months after the block before it (from
2017-01), so no two rows repeat and the last 3 months of every block carry the demo's drift (income recorded net, the
product 'bnpl', unseen in training, on 15% of rows); `application_id` is renumbered over the whole file (A00000001...).
Making a block takes ~4 s, so the 10M file (~270 MB) takes ~45 s. The blocks are written with pyarrow's ParquetWriter,
carrying the remainder over, in row groups of exactly 122,880 rows (DuckDB's own; see bench_drift.py), without pandas
metadata (so pandas reads credit_score, an integer column with missing values, as float64 with NaN, as it would a file
that DuckDB or Spark wrote, not as its own Int64, which MLflow's schema enforcement refuses), to a temporary folder
under $WORKBENCH_BENCH_TMP (default: the system's), removed afterwards.

Model: a scikit-learn Pipeline as `pipelines/train.ipynb` builds it: a ColumnTransformer (the 10 numeric features:
SimpleImputer(median) + StandardScaler; the 4 text features, home_ownership, purpose, product and region:
OneHotEncoder(handle_unknown='ignore')), then GradientBoostingClassifier(n_estimators=100, max_depth=3,
random_state=0); `gender` (the sensitive column), ids, dates and the label are not features. It is trained on 20,000
of 24,000 pre-drift demo rows (seed 42), committed as dataset `bench` of a fresh workspace, inside
`tracking.start_run`, logged with `tracking.log_sklearn` (the run's `sklearn-model`), exported with `onnx.export`
(parity checked on the 4,000 held-out rows), logged with `registry.log_candidate` and registered as `bench-gbm/1`
(registered versions are ONNX only: the competitors load the scikit-learn model from the run). The integer columns
(age, term_months, num_open_accounts, delinquencies_2y, and credit_score, which has missing values) are `double` inputs
of the ONNX model and `long` / `double` columns of the MLflow signature.

Each tool runs in a process of its own (`python bench_batch.py ours|sklearn|pyfunc ...`: the `__main__` block halfway
down, before pytest is imported, so a worker loads neither pytest nor the other tools), on the same input file, one
after another. Its peak RSS is that process's VmHWM (/proc/self/status); its RSS right after its imports, before any
model or data, is reported too. Not `ru_maxrss`: Linux carries a parent's peak over to its child through fork and exec
(exec keeps the high-water mark of the memory it replaces), so every worker started by this pytest process, which has
trained the model and made the data, would report at least that process's peak (~880 MB for each of the three at
200,000 rows); VmHWM belongs to the memory that exec maps anew. Each tool is timed from "a model reference and a file"
to "the output file closed", so opening the model counts:
- ours: `batch.score(ws, 'bench-gbm/1', input, output, batch_size=BATCH, keys=['application_id'])` with its other
  defaults (the DuckDB engine); `keys` so that it writes what the others write (by default it copies every non-feature
  column). That includes what it does besides scoring: a random sample of up to `batch.monitor_rows` (100,000) scored
  rows appended to the prediction log, and an audit event. Its own `rows_per_second` (from opening the input to the
  output file in place: no model loading, logging or auditing) is reported as `score_rows_per_second`.
- sklearn: `mlflow.sklearn.load_model('runs:/<run>/sklearn-model')`, then `pq.ParquetFile(input).iter_batches(BATCH,
  columns=[application_id, the features])`, `.to_pandas()`, `predict_proba`, and application_id, prediction (the class
  of the larger probability, which is what `predict` returns) and probability (of class 1) written with a ParquetWriter.
- pyfunc: `mlflow.pyfunc.load_model('runs:/<run>/sklearn-model')`, the same chunks, `.predict(chunk)` (schema
  enforcement against the logged signature, then the pipeline's `predict`: labels only, since `log_sklearn` does not
  set `pyfunc_predict_fn`), and application_id and prediction written likewise.
BATCH is 65,536 rows ($WORKBENCH_BENCH_BATCH_SIZE). Every output must have as many rows as the input, and the outputs
must agree (so the comparison is of working code): over all rows, joined on application_id, our probability within
1e-6 of scikit-learn's, our label equal to scikit-learn's wherever its probability is not within 1e-6 of 0.5, and
pyfunc's label equal to scikit-learn's.

Printed: one JSON line per size (rows/s and peak RSS of each tool, ours / sklearn and ours / pyfunc throughput,
ours / sklearn peak RSS), then a summary line with the targets, reported, not asserted: our rows/s at least 2x
scikit-learn's at the largest size (TARGET_SPEEDUP), and our peak RSS at the largest size at most 1.25x ours at the
smallest (TARGET_RSS_RATIO; flat is 1: the batch size, not the row count, should bound the memory). Sizes:
$WORKBENCH_BENCH_BATCH_ROWS, comma-separated, default "1000000,10000000" (e.g. "200000,1000000" for a quick run;
multiples of 10). Each tool's figures come with `loadavg_1m_before`, the 1-minute load average when its worker started:
other work on the machine (2 cores here) skews them, ours (which uses both cores) most.
For reference (the issue): on 1M rows of this kind of pipeline in memory, scikit-learn 0.77M rows/s, a naive ONNX
Runtime loop 1.08M rows/s.

Run: pytest tests/benchmarks/bench_batch.py -m benchmark -s -p no:cacheprovider
"""
import json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path

SIZES = [int(s) for s in os.environ.get('WORKBENCH_BENCH_BATCH_ROWS', '1000000,10000000').split(',')]
BATCH = int(os.environ.get('WORKBENCH_BENCH_BATCH_SIZE', '65536'))
ROW_GROUP = 122_880  # rows per Parquet row group: DuckDB's own; see bench_drift.py
BLOCK, BLOCK_MONTHS, BLOCK_DRIFT_MONTH, BLOCK_SEED = 1_000_000, 10, 8, 1000  # the demo rows made at a time, see the docstring
NUMERIC = ['age', 'income', 'employment_years', 'loan_amount', 'term_months', 'interest_rate', 'credit_score', 'debt_to_income',
           'num_open_accounts', 'delinquencies_2y']
TEXT = ['home_ownership', 'purpose', 'product', 'region']
FEATURES, TARGET, KEY = NUMERIC + TEXT, 'defaulted', 'application_id'
MODEL, EXPERIMENT = 'bench-gbm', 'bench-batch'
TRAIN_ROWS, HOLDOUT_ROWS = 20_000, 4_000
TARGET_SPEEDUP, TARGET_RSS_RATIO = 2.0, 1.25


def _block(k:int, n:int):
    "Block `k` of the input: `n` (at most BLOCK) demo rows with their label, as an Arrow table; application_id still per block."
    import pandas as pd, pyarrow as pa
    from workbench import demo
    start = (pd.Period('2017-01', 'M') + BLOCK_MONTHS * k).strftime('%Y-%m')
    per_month = -(-n // BLOCK_MONTHS)
    d = demo.generate(months=BLOCK_MONTHS, rows_per_month=per_month, drift_month=BLOCK_DRIFT_MONTH, start=start, seed=BLOCK_SEED + k)
    t = pa.Table.from_pandas(demo.training_frame(d, BLOCK_MONTHS).head(n), preserve_index=False)
    return t.replace_schema_metadata(None)  # no pandas metadata: read back, credit_score is float64 with NaN, not pandas' Int64

def write_input(path:Path, rows:int) -> Path:
    "Write `rows` demo-shaped rows to `path`, a block at a time, in row groups of exactly ROW_GROUP rows (the last one excepted)."
    import numpy as np, pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq
    path.parent.mkdir(parents=True, exist_ok=True)
    writer, pending, done = None, None, 0
    for k, start in enumerate(range(0, rows, BLOCK)):
        t = _block(k, min(BLOCK, rows - start))
        ids = pc.binary_join_element_wise('A', pc.utf8_lpad(pc.cast(pa.array(np.arange(start + 1, start + t.num_rows + 1)), pa.string()), 8, '0'), '')
        t = t.set_column(t.schema.get_field_index(KEY), KEY, ids)
        pending = t if pending is None else pa.concat_tables([pending, t]).combine_chunks()
        writer = writer or pq.ParquetWriter(path, t.schema)
        full = pending.num_rows // ROW_GROUP * ROW_GROUP
        if start + t.num_rows >= rows: full = pending.num_rows  # the last block: write what is left
        writer.write_table(pending.slice(0, full), row_group_size=ROW_GROUP)
        pending, done = pending.slice(full), done + full
    writer.close()
    assert done == rows
    return path


# The workers: each runs one tool in this process and prints one line of JSON. They import only that tool.
def _rss_now_mb() -> float:
    "This process's resident set size now, in MB."
    with open('/proc/self/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20

def _peak_rss_mb() -> float:
    "This process's peak resident set size so far, in MB: VmHWM, which starts afresh at exec (see the docstring), not ru_maxrss."
    with open('/proc/self/status') as f: return next(int(l.split()[1]) for l in f if l.startswith('VmHWM:')) / 1024

def worker_ours(ws_path:str, source:str, output:str, batch_size:int) -> dict:
    import deltalake, duckdb, onnxruntime, mlflow  # noqa: F401  what `batch.score` uses; loaded here, they count as imports, not as work
    from workbench import audit, batch, canary, predictions, registry, serving  # noqa: F401
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    baseline = _rss_now_mb()
    ws = open_workspace(ws_path, load_settings(env={}), create=False)
    t0 = time.perf_counter()
    r = batch.score(ws, f'{MODEL}/1', source, output, batch_size=batch_size, keys=[KEY])
    seconds = time.perf_counter() - t0
    return dict(rows=r['rows'], seconds=seconds, score_seconds=r['seconds'], score_rows_per_second=r['rows_per_second'],
                rss_after_imports_mb=baseline, peak_rss_mb=_peak_rss_mb(), duckdb=duckdb.__version__, onnxruntime=onnxruntime.__version__)

def _competitor(flavor:str, tracking_uri:str, run_id:str, source:str, output:str, batch_size:int) -> dict:
    "scikit-learn's predict_proba (flavor 'sklearn') or the pyfunc model's predict ('pyfunc') over pandas chunks of `source`, written to `output`."
    import mlflow, numpy as np, pandas as pd, pyarrow as pa, pyarrow.parquet as pq, sklearn  # noqa: F401
    import mlflow.pyfunc, mlflow.sklearn  # noqa: F401
    baseline = _rss_now_mb()
    mlflow.set_tracking_uri(tracking_uri)
    t0 = time.perf_counter()
    model = (mlflow.sklearn if flavor == 'sklearn' else mlflow.pyfunc).load_model(f'runs:/{run_id}/sklearn-model')
    t1, rows, writer = time.perf_counter(), 0, None
    for b in pq.ParquetFile(source).iter_batches(batch_size=batch_size, columns=[KEY, *FEATURES]):
        X = b.to_pandas()[FEATURES]
        if flavor == 'sklearn':
            p = model.predict_proba(X)
            out = pa.table({KEY: b.column(KEY), 'prediction': pa.array(model.classes_.take(p.argmax(axis=1))), 'probability': pa.array(p[:, 1])})
        else:
            out = pa.table({KEY: b.column(KEY), 'prediction': pa.array(np.asarray(model.predict(X)))})
        writer = writer or pq.ParquetWriter(output, out.schema)
        writer.write_table(out); rows += b.num_rows
    writer.close()
    t2 = time.perf_counter()
    return dict(rows=rows, seconds=t2 - t0, load_seconds=t1 - t0, rss_after_imports_mb=baseline, peak_rss_mb=_peak_rss_mb(),
                sklearn=sklearn.__version__, mlflow=mlflow.__version__)

if __name__ == '__main__':  # python bench_batch.py ours WS INPUT OUTPUT BATCH | sklearn|pyfunc TRACKING_URI RUN_ID INPUT OUTPUT BATCH
    tool, *args = sys.argv[1:]
    out = worker_ours(*args[:3], int(args[3])) if tool == 'ours' else _competitor(tool, *args[:4], int(args[4]))
    print('BENCH_JSON ' + json.dumps(out, default=float))
    sys.exit(0)


import pytest  # below the workers, so that a worker process does not load it

pytestmark = pytest.mark.benchmark


def run_worker(tool:str, *args, cwd:Path) -> dict:
    "Run this file as a worker for `tool` in a new process, in `cwd` (DuckDB spills there, if it does); its JSON."
    env = {**os.environ, 'MLFLOW_ALLOW_PICKLE_DESERIALIZATION': 'true'}  # MLflow 3.17 asks for it even for skops (see test_tracking.py)
    load_before = round(os.getloadavg()[0], 2)
    r = subprocess.run([sys.executable, __file__, tool, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True)
    line = next((l for l in r.stdout.splitlines() if l.startswith('BENCH_JSON ')), None)
    assert r.returncode == 0 and line, f'the {tool} worker failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    return json.loads(line.removeprefix('BENCH_JSON ')) | {'loadavg_1m_before': load_before}


@pytest.fixture(scope='module')
def folder():
    "A temporary folder for this run's workspace and data, removed afterwards."
    d = Path(tempfile.mkdtemp(prefix='workbench-bench-batch-', dir=os.environ.get('WORKBENCH_BENCH_TMP')))
    yield d
    shutil.rmtree(d, ignore_errors=True)

@pytest.fixture(scope='module')
def model(folder):
    "A fresh workspace with the pipeline trained, tracked, exported and registered as bench-gbm/1; (workspace folder, tracking URI, run id)."
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from workbench import data, demo, onnx, registry, tracking
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    t = time.perf_counter()
    ws = open_workspace(folder/'ws', load_settings(env={}))
    rows = TRAIN_ROWS + HOLDOUT_ROWS
    data.commit(ws, 'bench', demo.training_frame(demo.generate(months=12, rows_per_month=rows // 12, drift_month=13, seed=42), 12),
                message='bench_batch.py: pre-drift demo rows')
    with tracking.start_run(ws, EXPERIMENT, 'bench', FEATURES, TARGET, {'model': 'gradient_boosting', 'n_estimators': 100}) as run:
        X_train, X_holdout, y_train, _ = train_test_split(run.X, run.y, test_size=HOLDOUT_ROWS, random_state=0, stratify=run.y)
        pipe = make_pipeline(ColumnTransformer([('num', make_pipeline(SimpleImputer(strategy='median'), StandardScaler()), NUMERIC),
                                                ('cat', OneHotEncoder(handle_unknown='ignore'), TEXT)]),
                             GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0)).fit(X_train, y_train)
        tracking.log_sklearn(pipe, X=X_train)
        exported = onnx.export(pipe, X_holdout, settings=ws.settings)
        registry.log_candidate(ws, run.run_id, exported)
    mv = registry.register(ws, run.run_id, MODEL)
    assert mv.version == 1 and {s['name']: s['type'] for s in exported.signature} == {c: 'double' for c in NUMERIC} | {c: 'string' for c in TEXT}
    print(f'\ntrained, exported (parity {exported.parity.max_abs_diff:.2g}) and registered {MODEL}/1 in {time.perf_counter() - t:.1f} s')
    return ws.root, ws.tracking_uri, run.run_id


def check_outputs(source:Path, ours:Path, sk:Path, pyfunc:Path, rows:int) -> dict:
    "Every output has `rows` rows; over all rows, joined on the key: probability gap ours vs scikit-learn, label mismatches (see the docstring)."
    import duckdb, pyarrow.parquet as pq
    for p in (source, ours, sk, pyfunc):
        assert (n := pq.ParquetFile(p).metadata.num_rows) == rows, f'{p.name} has {n} rows, not {rows}'
    con = duckdb.connect()
    con.execute("SET threads=2")
    joined, gap, label_mismatches, pyfunc_mismatches = con.execute(f"""
        select count(*), max(abs(o.probability - s.probability)),
               count(*) filter (where o.prediction <> s.prediction and abs(s.probability - 0.5) > 1e-6),
               count(*) filter (where f.prediction <> s.prediction)
        from read_parquet('{sk}') s join read_parquet('{ours}') o using ({KEY}) join read_parquet('{pyfunc}') f using ({KEY})""").fetchone()
    assert joined == rows, f'only {joined} of {rows} rows have the same {KEY} in all three outputs'
    assert gap <= 1e-6, f'our probabilities differ from scikit-learn\'s by up to {gap}'
    assert label_mismatches == 0, f'our label differs from scikit-learn\'s on {label_mismatches} rows'
    assert pyfunc_mismatches == 0, f'the pyfunc label differs from scikit-learn\'s on {pyfunc_mismatches} rows'
    positives = con.execute(f"select avg(prediction::double), avg(probability) from read_parquet('{ours}')").fetchone()
    return dict(max_probability_diff=float(f'{gap:.2g}'), label_mismatches=label_mismatches, predicted_positive_share=round(positives[0], 4),
                mean_probability=round(positives[1], 4))


def _mb(x): return round(x, 1)
def _m(rows): return f'{rows / 1e6:g}M'


def test_batch_score(folder, model):
    ws_root, tracking_uri, run_id = model
    results, checks = {}, {}
    for rows in SIZES:
        sub = folder/f'{rows}'
        t = time.perf_counter(); source = write_input(sub/'input.parquet', rows)
        print(f"wrote {rows:,} rows to {source} ({source.stat().st_size / 2**20:.0f} MB) in {time.perf_counter() - t:.1f} s")
        ours = run_worker('ours', ws_root, source, sub/'ours.parquet', BATCH, cwd=sub)
        sk = run_worker('sklearn', tracking_uri, run_id, source, sub/'sklearn.parquet', BATCH, cwd=sub)
        pf = run_worker('pyfunc', tracking_uri, run_id, source, sub/'pyfunc.parquet', BATCH, cwd=sub)
        assert ours['rows'] == sk['rows'] == pf['rows'] == rows
        checks[rows] = check_outputs(source, sub/'ours.parquet', sub/'sklearn.parquet', sub/'pyfunc.parquet', rows)
        results[rows] = r = {name: w | {'rows_per_second': rows / w['seconds']} for name, w in (('ours', ours), ('sklearn', sk), ('pyfunc', pf))}
        def figures(name, w, *extra):
            return {'loadavg_1m_before': w['loadavg_1m_before'], **{k: w[k] for k in extra}, 'seconds': round(w['seconds'], 2),
                    'rows_per_second': round(r[name]['rows_per_second']), 'rss_after_imports_mb': _mb(w['rss_after_imports_mb']),
                    'peak_rss_mb': _mb(w['peak_rss_mb'])}
        print(json.dumps({
            'benchmark': 'batch_score', 'rows': rows, 'batch_size': BATCH, 'input_mb': _mb(source.stat().st_size / 2**20), 'cpus': os.cpu_count(),
            'model': f'{MODEL}/1: ColumnTransformer + one-hot + GradientBoostingClassifier(100 trees, depth 3)',
            'ours': figures('ours', ours, 'duckdb', 'onnxruntime') | {'score_rows_per_second': ours['score_rows_per_second']},
            'sklearn': figures('sklearn', sk, 'sklearn', 'mlflow') | {'load_seconds': round(sk['load_seconds'], 2)},
            'pyfunc': figures('pyfunc', pf, 'sklearn', 'mlflow') | {'load_seconds': round(pf['load_seconds'], 2)},
            'speedup_vs_sklearn': round(r['ours']['rows_per_second'] / r['sklearn']['rows_per_second'], 2),  # ours / scikit-learn's rows/s
            'speedup_vs_pyfunc': round(r['ours']['rows_per_second'] / r['pyfunc']['rows_per_second'], 2),
            'peak_rss_ratio_vs_sklearn': round(ours['peak_rss_mb'] / sk['peak_rss_mb'], 3),  # ours / scikit-learn's
            **checks[rows]}))
        shutil.rmtree(sub, ignore_errors=True)  # nothing else reads them
    small, big = min(SIZES), max(SIZES)
    speedup = results[big]['ours']['rows_per_second'] / results[big]['sklearn']['rows_per_second']
    rss_ratio = results[big]['ours']['peak_rss_mb'] / results[small]['ours']['peak_rss_mb']
    print(json.dumps({
        'benchmark': 'batch_score_summary', 'sizes': SIZES, 'batch_size': BATCH, 'cpus': os.cpu_count(),
        'rows_per_second': {name: {_m(n): round(results[n][name]['rows_per_second']) for n in SIZES} for name in ('ours', 'sklearn', 'pyfunc')},
        'peak_rss_mb': {name: {_m(n): _mb(results[n][name]['peak_rss_mb']) for n in SIZES} for name in ('ours', 'sklearn', 'pyfunc')},
        'speedup_vs_sklearn': round(speedup, 2), 'target_speedup': TARGET_SPEEDUP, 'speedup_target_met': speedup >= TARGET_SPEEDUP,
        'speedup_vs_pyfunc': round(results[big]['ours']['rows_per_second'] / results[big]['pyfunc']['rows_per_second'], 2),
        'rss_ratio': round(rss_ratio, 3),  # our peak RSS, largest size / smallest; flat is 1
        'target_rss_ratio': TARGET_RSS_RATIO, 'rss_target_met': rss_ratio <= TARGET_RSS_RATIO,
        'time_ratio': round(results[big]['ours']['seconds'] / results[small]['ours']['seconds'], 2),  # linear is big / small
        'target_met': speedup >= TARGET_SPEEDUP and rss_ratio <= TARGET_RSS_RATIO}))
