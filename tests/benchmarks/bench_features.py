"""A point-in-time join of 1,000,000 entity rows against 5 feature views of 10,000,000 rows: `workbench.features.get_training_frame` against Feast's `get_historical_features` on its local `file` offline store.

Data (`write_views`, `write_entities`, made once per run with a fixed seed, written with pyarrow's ParquetWriter in row
groups of 122,880 rows, DuckDB's own size, to a temporary folder under $WORKBENCH_BENCH_TMP, default the system's,
removed afterwards; 434 MB at full size, made in ~14 s):
- 5 feature views v0..v4, one Parquet file each of VIEW_ROWS (2,000,000) rows, 10,000,000 in all: `customer_id` (int64;
  each view holds a random 90% of CUSTOMERS, 100,000 customers, so ~20 rows per customer and view), `event_timestamp`
  (timestamp[us, tz=UTC], uniform to the microsecond over 2024) and 4 float64 features `v{i}_f0..v{i}_f3` (normal,
  lognormal, Poisson counts, uniform; `v{i}_f3` null on 5% of rows). No two rows of a view share (customer_id,
  event_timestamp), so "the latest row" is never a tie. Rows are in time order, as a pipeline appends them.
- ENTITY_ROWS (1,000,000) entity rows in random order: `customer_id`, `event_timestamp` and `row_id` (0, 1, ...: the
  row's number, carried through both tools to compare them). 85% are a customer drawn from 105% of CUSTOMERS (so some
  are in no view and each view lacks ~10% of them) at a time uniform from 15 days before 2024 to 45 days after it
  (so some come before any feature row and some after every row has expired); 4% sit exactly at a random feature row's
  time (the join is at or before: that row counts), 4% exactly TTL after one (the TTL's edge: it counts), 4% TTL + 1 µs
  after one (just expired), each with that row's customer; 3% repeat another entity row's (customer_id,
  event_timestamp) exactly.
- TTL: 30 days for every view. So a value comes from the customer's latest row of the view at or before the entity
  row's time, when that row is at most 30 days older; otherwise the features are null.
$WORKBENCH_BENCH_FEATURES_SCALE (default 1) multiplies the customers, the view rows and the entity rows alike (e.g. 0.01:
1,000 customers, 20,000 rows a view, 10,000 entity rows).

Each tool runs in a process of its own (`python bench_features.py ours|feast FOLDER`: the `__main__` block halfway
down, before pytest is imported, so a worker loads neither pytest nor the other tool), ours with this interpreter and
Feast with $WORKBENCH_BENCH_FEAST_PYTHON (default /work/feastvenv/bin/python): Feast brings its own dependencies (dask,
SQLAlchemy, protobuf, FastAPI, a pyarrow newer than ours), kept out of our venv, so it lives in one of its own:
    python3 -m venv /work/feastvenv && /work/feastvenv/bin/pip install feast==0.67.0
(measured with feast 0.67.0, dask 2026.8.0, pandas 2.3.3, pyarrow 26.0.1). Each worker registers the 5 views (outside the
timer; its seconds are reported), reads the entity rows with `pd.read_parquet` (outside the timer, the same in both), and
is timed from that DataFrame in memory to the joined pandas DataFrame in memory:
- ours: `open_workspace` of a fresh workspace, `features.apply` of 5 `FeatureView(name='v{i}', entity='customer_id',
  timestamp='event_timestamp', source=<the view's Parquet file>, features={'v{i}_f{j}': 'v{i}_f{j}'}, ttl='30d')`, then
  `features.get_training_frame(ws, entity_df, ['v0', ..., 'v4'], timestamp='event_timestamp')` (DuckDB, a default
  connection: both cores).
- feast: a feature repo in a temporary folder (`feature_store.yaml`: provider local, offline store `file`, i.e. its
  Dask store, a file registry, an unused sqlite online store), one `Entity` (join key customer_id), 5 `FeatureView`s
  over a `FileSource` each (timestamp_field event_timestamp, ttl 30 days, 4 Float64 fields), `FeatureStore.apply`, then
  `get_historical_features(entity_df=entity_df, features=['v0:v0_f0', ...]).to_df()` (Dask's default threaded
  scheduler: both cores).
Peak RSS is each worker's VmHWM (/proc/self/status; not ru_maxrss, which carries the parent's peak into the child: see
bench_batch.py) read right after the join, before the frame is written to Parquet for the check; the RSS after each
worker's imports and just before the join are reported too.

Feast's file store does not return one row per entity row, and the check says so rather than hide it (seen in its
dask.py, feast 0.67, and on this data):
- it drops an entity row altogether when, in any requested view, its customer has rows but none in [t - ttl, t]
  (its TTL filter runs on the entity x feature-row join and removes every candidate; a customer with no rows at all
  survives as a left join's nulls): rows whose time is before the customer's first row or past the TTL of its latest;
- it keeps one row of entity rows that share (customer_id, event_timestamp) (drop_duplicates on the join keys and the
  entity time; feast-dev/feast#6787), whichever sorts last;
- otherwise it agrees with ours: at or before the entity time (a feature row at exactly t counts), the TTL window
  closed at both ends (a row exactly ttl old counts, one a microsecond older does not), the latest row taken whole
  (a null feature in it stays null, not filled from an older row), UTC throughout.
So the check (`check_frames`, outside both timers) builds a third, independent answer with numpy (per view,
`searchsorted` of (customer_id, event_timestamp) in the view's sorted keys), and asserts over ALL rows: ours has exactly
the entity rows (every row_id once, keys unchanged) and every feature equal to the reference (NaN == NaN, exact: values
are copied, not computed); Feast returns exactly one row per distinct (customer_id, event_timestamp) among the entity
rows that its rule above keeps, each with a row_id of that key, and every feature equal to the reference and to ours
for that row_id. The counts (rows Feast dropped or merged, features that are null) are in the JSON.

Printed: one JSON line: each tool's seconds, apply seconds, RSS after imports and peak RSS, `speedup` (Feast's seconds /
ours, target >= 10x: reported as `target_met`, not asserted), `peak_rss_ratio` (ours / Feast's), the check's counts, the
versions, and `loadavg_1m_before` each worker, the 1-minute load average when it started: other work on the machine
(2 cores here) skews the figures.

Run: pytest tests/benchmarks/bench_features.py -m benchmark -s -p no:cacheprovider
"""
import json, os, shutil, subprocess, sys, tempfile, time
from datetime import timedelta
from pathlib import Path

SCALE = float(os.environ.get('WORKBENCH_BENCH_FEATURES_SCALE', '1'))
CUSTOMERS, VIEW_ROWS, ENTITY_ROWS = round(100_000 * SCALE), round(2_000_000 * SCALE), round(1_000_000 * SCALE)
VIEWS, FEATURES_PER_VIEW, TTL_DAYS, SEED = 5, 4, 30, 0
ROW_GROUP = 122_880  # rows per Parquet row group: DuckDB's own; see bench_drift.py
VIEW_SHARE, NULL_SHARE = 0.9, 0.05  # the share of customers in each view; of v{i}_f3 that is null
AT_ROW, AT_EDGE, PAST_EDGE, REPEATS = 0.04, 0.04, 0.04, 0.03  # shares of the entity rows: see the docstring
DAY_US = 86_400_000_000
YEAR_US = 366 * DAY_US  # 2024
EPOCH_2024_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z in µs since 1970
ENTITY_FROM_US, ENTITY_TO_US = -15 * DAY_US, YEAR_US + 45 * DAY_US  # entity times, relative to 2024-01-01
TTL_US = TTL_DAYS * DAY_US
TARGET_SPEEDUP = 10.0
FEAST_PYTHON = os.environ.get('WORKBENCH_BENCH_FEAST_PYTHON', '/work/feastvenv/bin/python')
FEAST_INSTALL = 'python3 -m venv /work/feastvenv && /work/feastvenv/bin/pip install feast==0.67.0'  # the version measured; see the docstring
FEATURES = {f'v{i}': [f'v{i}_f{j}' for j in range(FEATURES_PER_VIEW)] for i in range(VIEWS)}


def view_path(folder:Path, i:int) -> Path: return Path(folder)/f'v{i}.parquet'
def entity_path(folder:Path) -> Path: return Path(folder)/'entities.parquet'


def _write(path:Path, table) -> Path:
    "Write `table` to `path` a row group (ROW_GROUP rows) at a time."
    import pyarrow.parquet as pq
    with pq.ParquetWriter(path, table.schema) as w:
        for start in range(0, max(table.num_rows, 1), ROW_GROUP): w.write_table(table.slice(start, ROW_GROUP), row_group_size=ROW_GROUP)
    return path

def _timestamps(us):
    "µs since 2024-01-01 as Arrow timestamp[us, tz=UTC]."
    import numpy as np, pyarrow as pa
    return pa.array(np.asarray(us, dtype='int64') + EPOCH_2024_US, pa.timestamp('us', tz='UTC'))

def write_views(folder:Path) -> list:
    "Write the VIEWS feature views (see the docstring); for each, a random sample of its rows' (customer_id, µs since 2024) to place entity rows by."
    import numpy as np, pyarrow as pa
    samples = []
    for i in range(VIEWS):
        rng = np.random.default_rng([SEED, i])
        customers = np.flatnonzero(rng.random(CUSTOMERS) < VIEW_SHARE)
        keys = np.empty(0, 'int64')
        while len(keys) < VIEW_ROWS:  # unique (customer, time): a repeat is all but impossible, but drawn again if it happens
            more = VIEW_ROWS - len(keys)
            keys = np.unique(np.concatenate([keys, (rng.choice(customers, more) << 46) | rng.integers(0, YEAR_US, more)]))
        cust, ts = keys >> 46, keys & ((1 << 46) - 1)
        order = np.argsort(ts, kind='stable')  # time order, as a pipeline appends
        cust, ts = cust[order], ts[order]
        f3 = rng.uniform(0, 100, VIEW_ROWS)
        table = pa.table({'customer_id': pa.array(cust), 'event_timestamp': _timestamps(ts),
                          f'v{i}_f0': rng.normal(0, 1, VIEW_ROWS), f'v{i}_f1': rng.lognormal(0, 1, VIEW_ROWS),
                          f'v{i}_f2': rng.poisson(3, VIEW_ROWS).astype('float64'),
                          f'v{i}_f3': pa.array(f3, mask=rng.random(VIEW_ROWS) < NULL_SHARE)})
        _write(view_path(folder, i), table)
        pick = rng.choice(VIEW_ROWS, ENTITY_ROWS // VIEWS + 1, replace=False)
        samples.append((cust[pick], ts[pick]))
    return samples

def write_entities(folder:Path, samples:list) -> Path:
    "Write the ENTITY_ROWS entity rows (see the docstring), placing some by the views' `samples`."
    import numpy as np, pyarrow as pa
    rng = np.random.default_rng([SEED, 100])
    n = ENTITY_ROWS
    cust = rng.integers(0, round(CUSTOMERS * 1.05), n)
    ts = rng.integers(ENTITY_FROM_US, ENTITY_TO_US, n)
    kind = rng.choice(5, n, p=[1 - AT_ROW - AT_EDGE - PAST_EDGE - REPEATS, AT_ROW, AT_EDGE, PAST_EDGE, REPEATS])
    sample_cust, sample_ts = np.concatenate([c for c, _ in samples]), np.concatenate([t for _, t in samples])
    for k, offset in ((1, 0), (2, TTL_US), (3, TTL_US + 1)):  # at a feature row, at its TTL's edge, a µs past it
        rows = np.flatnonzero(kind == k)
        take = rng.choice(len(sample_cust), len(rows), replace=False)
        cust[rows], ts[rows] = sample_cust[take], sample_ts[take] + offset
    rows = np.flatnonzero(kind == 4)  # repeat the (customer, time) of another entity row
    others = np.flatnonzero(kind != 4)
    copy = others[rng.integers(0, len(others), len(rows))]
    cust[rows], ts[rows] = cust[copy], ts[copy]
    order = rng.permutation(n)  # random order, row_id in file order
    return _write(entity_path(folder), pa.table({'customer_id': pa.array(cust[order]), 'event_timestamp': _timestamps(ts[order]),
                                                 'row_id': pa.array(np.arange(n, dtype='int64'))}))


# The workers: each runs one tool in this process and prints one line of JSON. They import only that tool.
def _rss_now_mb() -> float:
    "This process's resident set size now, in MB."
    with open('/proc/self/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20

def _peak_rss_mb() -> float:
    "This process's peak resident set size so far, in MB: VmHWM, which starts afresh at exec (see bench_batch.py), not ru_maxrss."
    with open('/proc/self/status') as f: return next(int(l.split()[1]) for l in f if l.startswith('VmHWM:')) / 1024

def worker_ours(folder:str) -> dict:
    import deltalake, duckdb, numpy as np, pandas as pd, pyarrow.parquet  # noqa: F401  what `features` uses; loaded here, they count as imports, not as work
    from workbench import audit, batch, features as F  # noqa: F401
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    folder = Path(folder)
    baseline = _rss_now_mb()
    t = time.perf_counter()
    ws = open_workspace(folder/'ws', load_settings(env={}))
    F.apply(ws, [F.FeatureView(name=v, entity='customer_id', timestamp='event_timestamp', source=str(view_path(folder, i)),
                               features={f: f for f in FEATURES[v]}, ttl=f'{TTL_DAYS}d') for i, v in enumerate(FEATURES)])
    apply_seconds = time.perf_counter() - t
    entity_df = pd.read_parquet(entity_path(folder))
    before = _rss_now_mb()
    t0 = time.perf_counter()
    frame = F.get_training_frame(ws, entity_df, list(FEATURES), timestamp='event_timestamp')
    seconds = time.perf_counter() - t0
    peak = _peak_rss_mb()
    frame.to_parquet(folder/'ours.parquet', index=False)
    return dict(rows=len(frame), seconds=seconds, apply_seconds=apply_seconds, rss_after_imports_mb=baseline, rss_before_join_mb=before,
                peak_rss_mb=peak, duckdb=duckdb.__version__, pandas=pd.__version__)

def worker_feast(folder:str) -> dict:
    import dask, feast, pandas as pd, pyarrow, pyarrow.parquet  # noqa: F401
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64
    folder = Path(folder)
    baseline = _rss_now_mb()
    t = time.perf_counter()
    repo = folder/'feast_repo'; repo.mkdir(exist_ok=True)
    (repo/'feature_store.yaml').write_text(f"project: bench_features\nregistry: {repo/'registry.db'}\nprovider: local\n"
                                           f"offline_store:\n  type: file\nonline_store:\n  type: sqlite\n  path: {repo/'online.db'}\n"
                                           "entity_key_serialization_version: 3\n")
    customer = Entity(name='customer', join_keys=['customer_id'], value_type=ValueType.INT64)
    views = [FeatureView(name=v, entities=[customer], ttl=timedelta(days=TTL_DAYS), schema=[Field(name=f, dtype=Float64) for f in FEATURES[v]],
                         source=FileSource(name=f'{v}_source', path=str(view_path(folder, i)), timestamp_field='event_timestamp'))
             for i, v in enumerate(FEATURES)]
    store = FeatureStore(repo_path=str(repo))
    store.apply([customer, *views])
    apply_seconds = time.perf_counter() - t
    entity_df = pd.read_parquet(entity_path(folder))
    before = _rss_now_mb()
    t0 = time.perf_counter()
    frame = store.get_historical_features(entity_df=entity_df, features=[f'{v}:{f}' for v, fs in FEATURES.items() for f in fs]).to_df()
    seconds = time.perf_counter() - t0
    peak = _peak_rss_mb()
    frame.to_parquet(folder/'feast.parquet', index=False)
    return dict(rows=len(frame), seconds=seconds, apply_seconds=apply_seconds, rss_after_imports_mb=baseline, rss_before_join_mb=before,
                peak_rss_mb=peak, feast=feast.__version__, dask=dask.__version__, pandas=pd.__version__, pyarrow=pyarrow.__version__)

if __name__ == '__main__':  # python bench_features.py ours|feast FOLDER
    tool, folder = sys.argv[1:3]
    out = worker_ours(folder) if tool == 'ours' else worker_feast(folder)
    print('BENCH_JSON ' + json.dumps(out, default=float))
    sys.exit(0)


import pytest  # below the workers, so that a worker process does not load it

pytestmark = pytest.mark.benchmark


def run_worker(tool:str, python:str, folder:Path) -> dict:
    "Run this file as a worker for `tool` with `python` in a new process, in `folder` (DuckDB spills there, if it does); its JSON."
    load_before = round(os.getloadavg()[0], 2)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}  # Feast's venv must not see our checkout
    if tool == 'ours':  # ours must: this checkout's workbench, whatever the venv has installed
        env['PYTHONPATH'] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), *filter(None, [os.environ.get('PYTHONPATH')])])
    r = subprocess.run([python, __file__, tool, str(folder)], cwd=folder, env=env, capture_output=True, text=True)
    line = next((l for l in r.stdout.splitlines() if l.startswith('BENCH_JSON ')), None)
    assert r.returncode == 0 and line, f'the {tool} worker failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    return json.loads(line.removeprefix('BENCH_JSON ')) | {'loadavg_1m_before': load_before}


@pytest.fixture(scope='module')
def feast_python():
    "The interpreter of Feast's venv; a clear failure when there is none."
    if not Path(FEAST_PYTHON).exists():
        pytest.fail(f"no Feast interpreter at {FEAST_PYTHON}: create its venv with `{FEAST_INSTALL}` "
                    "(or point WORKBENCH_BENCH_FEAST_PYTHON at a python that has feast)", pytrace=False)
    r = subprocess.run([FEAST_PYTHON, '-c', 'import feast; print(feast.__version__)'], capture_output=True, text=True, cwd=tempfile.gettempdir())
    if r.returncode != 0:
        pytest.fail(f"{FEAST_PYTHON} cannot import feast ({r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}): "
                    f"install it with `{FEAST_INSTALL}`", pytrace=False)
    return FEAST_PYTHON

@pytest.fixture(scope='module')
def folder():
    "A temporary folder for this run's data, workspace and Feast repo, removed afterwards."
    d = Path(tempfile.mkdtemp(prefix='workbench-bench-features-', dir=os.environ.get('WORKBENCH_BENCH_TMP')))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def reference(folder:Path, entities) -> dict:
    """The expected frame, made independently of both tools: feature -> values in entity-row order, and view -> whether
    the customer has rows in the view at all (Feast's drop rule needs it)."""
    import numpy as np, pyarrow.parquet as pq
    cust_e, ts_e = entities['customer_id'].to_numpy(), _us(entities['event_timestamp'])
    assert cust_e.max() < 1 << 17 and ts_e.min() >= -60 * DAY_US and ts_e.max() < (1 << 46) - 60 * DAY_US, 'the keys do not fit 17 + 46 bits: SCALE too large'
    key_e = (cust_e << 46) | (ts_e + 60 * DAY_US)
    expected, present = {}, {}
    for i, view in enumerate(FEATURES):
        t = pq.read_table(view_path(folder, i)).to_pandas()
        cust = t['customer_id'].to_numpy()
        ts = _us(t['event_timestamp'])
        key = (cust << 46) | (ts + 60 * DAY_US)
        order = np.argsort(key)
        key, cust, ts = key[order], cust[order], ts[order]
        j = np.searchsorted(key, key_e, side='right') - 1  # the customer's latest row at or before the entity time, if any
        jj = np.maximum(j, 0)
        hit = (j >= 0) & (cust[jj] == cust_e) & (ts[jj] >= ts_e - TTL_US)
        for f in FEATURES[view]:
            expected[f] = np.where(hit, t[f].to_numpy(dtype='float64')[order][jj], np.nan)
        present[view] = np.isin(cust_e, np.unique(cust))
    return dict(expected=expected, present=present)

def _us(times):
    "A pandas Series of tz-aware times as int64 µs since 2024-01-01 (UTC)."
    return times.dt.tz_convert('UTC').dt.tz_localize(None).to_numpy().astype('datetime64[us]').astype('int64') - EPOCH_2024_US

def _same(a, b):
    "Where two float arrays agree, NaN agreeing with NaN."
    import numpy as np
    return (a == b) | (np.isnan(a) & np.isnan(b))

def check_frames(folder:Path) -> dict:
    "Assert ours and Feast's frames against the reference and each other (see the docstring); the counts."
    import numpy as np, pandas as pd
    entities = pd.read_parquet(entity_path(folder))
    n = len(entities)
    ref = reference(folder, entities)
    expected, present = ref['expected'], ref['present']
    features = [f for fs in FEATURES.values() for f in fs]

    ours = pd.read_parquet(folder/'ours.parquet')
    assert len(ours) == n, f'ours has {len(ours)} rows for {n} entity rows'
    assert sorted(ours.columns) == sorted([*entities.columns, *features]), f'ours has columns {list(ours.columns)}'
    ours, mismatches = ours.sort_values('row_id', kind='stable').reset_index(drop=True), 0
    assert (ours['row_id'].to_numpy() == np.arange(n)).all(), 'ours does not have every entity row exactly once'
    assert (ours['customer_id'].to_numpy() == entities['customer_id'].to_numpy()).all()
    ts_e = _us(entities['event_timestamp'])
    assert (_us(ours['event_timestamp']) == ts_e).all()
    for f in features:
        bad = ~_same(ours[f].to_numpy(dtype='float64'), expected[f]); mismatches += int(bad.sum())
        assert not bad.any(), f'ours differs from the reference on {bad.sum()} rows of {f}, e.g. row_id {np.flatnonzero(bad)[:5].tolist()}'

    # Feast: one row per distinct (customer_id, event_timestamp) of the entity rows its TTL filter keeps.
    kept = np.ones(n, bool)
    for view, fs in FEATURES.items():
        kept &= ~present[view] | ~np.isnan(expected[fs[0]])  # v{i}_f0 is never null in a feature row: NaN means no row in the window
    keys = entities[['customer_id', 'event_timestamp']]
    distinct = ~keys.duplicated()
    theirs = pd.read_parquet(folder/'feast.parquet')
    assert sorted(theirs.columns) == sorted([*entities.columns, *features]), f'Feast has columns {list(theirs.columns)}'
    assert not theirs['row_id'].duplicated().any()
    want_rows = int((kept & distinct.to_numpy()).sum())
    assert len(theirs) == want_rows, (f'Feast returned {len(theirs)} rows; the rules of feast 0.67\'s file store predict {want_rows} '
                                      '(a later Feast may have changed them: see the docstring)')
    rid = theirs['row_id'].to_numpy()
    assert kept[rid].all(), f'Feast returned {(~kept[rid]).sum()} rows its TTL filter should have dropped'
    assert (theirs['customer_id'].to_numpy() == entities['customer_id'].to_numpy()[rid]).all()
    assert (_us(theirs['event_timestamp']) == ts_e[rid]).all()
    assert not theirs[['customer_id', 'event_timestamp']].duplicated().any()  # so with want_rows rows, every kept key once
    for f in features:
        got = theirs[f].to_numpy(dtype='float64')
        bad = ~_same(got, expected[f][rid]); mismatches += int(bad.sum())
        assert not bad.any(), f'Feast differs from the reference on {bad.sum()} rows of {f}, e.g. row_id {rid[bad][:5].tolist()}'
        bad = ~_same(got, ours[f].to_numpy(dtype='float64')[rid]); mismatches += int(bad.sum())
        assert not bad.any(), f'Feast differs from ours on {bad.sum()} rows of {f}, e.g. row_id {rid[bad][:5].tolist()}'

    nulls = {v: round(float(np.isnan(expected[fs[0]]).mean()), 4) for v, fs in FEATURES.items()}
    return dict(entity_rows=n, distinct_entity_keys=int(distinct.sum()), ours_rows=n, feast_rows=len(theirs),
                feast_dropped_rows=int((~kept).sum()),  # entity rows with a view whose customer has rows, none within the TTL
                feast_merged_rows=int((kept & ~distinct.to_numpy()).sum()),  # kept rows whose key repeats an earlier row's
                compared_ours_rows=n, compared_feast_rows=len(theirs), compared_values=(n + len(theirs)) * len(features),
                null_share_by_view=nulls, mismatches=mismatches)  # counted value by value: 0, or an assert above failed


def _mb(x): return round(x, 1)


def test_features_vs_feast(feast_python, folder):
    t_all = time.perf_counter()
    t = time.perf_counter()
    samples = write_views(folder)
    write_entities(folder, samples)
    size = sum(p.stat().st_size for p in folder.glob('*.parquet')) / 2**20
    print(f"\nwrote {VIEWS} views x {VIEW_ROWS:,} rows and {ENTITY_ROWS:,} entity rows to {folder} ({size:.0f} MB) in {time.perf_counter() - t:.1f} s")
    ours = run_worker('ours', sys.executable, folder)
    theirs = run_worker('feast', feast_python, folder)
    t = time.perf_counter()
    checks = check_frames(folder)
    check_seconds = time.perf_counter() - t
    speedup = theirs['seconds'] / ours['seconds']
    def figures(w, *extra):
        return {'loadavg_1m_before': w['loadavg_1m_before'], **{k: w[k] for k in extra}, 'seconds': round(w['seconds'], 2),
                'entity_rows_per_second': round(ENTITY_ROWS / w['seconds']), 'apply_seconds': round(w['apply_seconds'], 2),
                'rss_after_imports_mb': _mb(w['rss_after_imports_mb']), 'rss_before_join_mb': _mb(w['rss_before_join_mb']),
                'peak_rss_mb': _mb(w['peak_rss_mb'])}
    print(json.dumps({
        'benchmark': 'features_vs_feast', 'scale': SCALE, 'entity_rows': ENTITY_ROWS, 'views': VIEWS, 'feature_rows': VIEWS * VIEW_ROWS,
        'features': VIEWS * FEATURES_PER_VIEW, 'customers': CUSTOMERS, 'ttl_days': TTL_DAYS, 'data_mb': _mb(size), 'cpus': os.cpu_count(),
        'ours': figures(ours, 'duckdb', 'pandas'),
        'feast': figures(theirs, 'feast', 'dask', 'pandas', 'pyarrow') | {'offline_store': 'file'},
        'speedup': round(speedup, 1),  # Feast's seconds / ours; target >= 10
        'target_speedup': TARGET_SPEEDUP, 'target_met': speedup >= TARGET_SPEEDUP,
        'peak_rss_ratio': round(ours['peak_rss_mb'] / theirs['peak_rss_mb'], 3),  # ours / Feast's
        **checks, 'check_seconds': round(check_seconds, 1), 'wall_seconds': round(time.perf_counter() - t_all, 1)}))
