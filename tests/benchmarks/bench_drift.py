"""Drift of 23 features between two Parquet files of 1,000,000 rows: `workbench.stats` against Evidently's `DataDriftPreset`.

Data: a reference and a current frame of ROWS rows, 20 numeric and 3 categorical columns, made with a fixed seed
(`write_frames`). Numeric columns cycle through normal(0, 1), lognormal(0, 1), Student's t with 3 degrees of freedom
and normal(5, 2); in the current frame every third one (num_00, num_03, ..., num_18) is moved by 0.3 of its
distribution's standard deviation; num_05 and num_09 have 2% missing values in both frames. Categorical columns have
5 categories with unequal shares; in the current frame cat_0 has a sixth category, unseen in the reference, at 15%.
A shift of 0.3 standard deviations is used rather than 0.1 because 0.1 is exactly the threshold of the normed
Wasserstein distance both tools use (Evidently by default above 1,000 rows, workbench as `drift.wasserstein_threshold`),
so which side of it a 0.1 shift lands on would be chance.
The files are written once per run (in chunks of 983,040 rows with pyarrow's ParquetWriter, so making 10,000,000
rows stays within memory) in a temporary folder under $WORKBENCH_BENCH_TMP (default: the system's), removed afterwards;
1M rows take 2 x 155 MB, 10M rows 2 x 1.5 GB. Row groups are of 122,880 rows, DuckDB's own size (the reference
`values.parquet` that `drift.reference` writes with DuckDB's COPY has them). With pyarrow's default of one row group
per 1,048,576 rows, a scan of all 23 columns makes DuckDB allocate a block of ~160 MB per thread for one row group, so
the process needs a memory_limit above 2 x 160 MB at 2 threads and fails at 256MB on 10M rows.

Each tool runs in a process of its own (`python bench_drift.py ours|evidently ...`: the `__main__` block halfway down,
before pytest is imported, so a worker loads neither pytest nor the other tool), so its peak RSS is that process's
`ru_maxrss`; each worker also reports its RSS right after its imports, before any data, to show the net figure.
- workbench: a fresh `duckdb.connect()` with `SET memory_limit` ($WORKBENCH_BENCH_DUCKDB_MEMORY, default 256MB) and
  `SET threads` ($WORKBENCH_BENCH_DUCKDB_THREADS, default 2), the files as `read_parquet('...')` relations;
  `stats.profile_of` on the reference (done once per model version and stored), then `stats.compare` of the
  current against it with the default thresholds. Reported: compare alone and profile + compare.
- Evidently: `pd.read_parquet` of both files (it needs the frames in memory, so reading is part of its work), then
  `Report([DataDriftPreset()]).run(current, reference)`.
Both tools must flag every shifted column and cat_0, and neither an unshifted one, by the same statistics (the normed
Wasserstein distance for numbers, Jensen-Shannon distance for categories), and their values of those statistics must
agree, so the comparison is of working code. Targets (reported, not asserted): Evidently's seconds / ours >= 50, our
peak RSS / Evidently's <= 0.25.
`test_drift_scaling`: workbench alone on 1,000,000 and 10,000,000 rows of the same shape, each in its own process:
time_10M / time_1M (linear is 10) and rss_10M / rss_1M (flat is 1); figures in tests/benchmarks/README.md.
Both print `loadavg_1m_before`: other work on the machine (2 cores here) skews the figures.

Run: pytest tests/benchmarks/bench_drift.py -m benchmark -s -p no:cacheprovider
"""
import json, os, resource, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROWS, BIG_ROWS, SEED = 1_000_000, 10_000_000, 0
ROW_GROUP = 122_880  # rows per Parquet row group: DuckDB's own (as in the `values.parquet` workbench writes); see the docstring
CHUNK = 8 * ROW_GROUP  # rows made and written at a time
NUMERIC = [f'num_{j:02d}' for j in range(20)]
CATEGORICAL = [f'cat_{j}' for j in range(3)]
SHIFTED, WITH_MISSING, WITH_UNSEEN = NUMERIC[::3], ['num_05', 'num_09'], ['cat_0']
SHIFT, MISSING, UNSEEN = 0.3, 0.02, 0.15  # the shift in standard deviations, the missing share, the unseen category's share
CATEGORIES, SHARES = ['a', 'b', 'c', 'd', 'e'], [0.35, 0.25, 0.2, 0.12, 0.08]
DUCKDB_MEMORY = os.environ.get('WORKBENCH_BENCH_DUCKDB_MEMORY', '256MB')
DUCKDB_THREADS = int(os.environ.get('WORKBENCH_BENCH_DUCKDB_THREADS', '2'))
ROOT = Path(__file__).resolve().parents[2]


def _numeric(rng, j:int, n:int, current:bool):
    "`n` values of numeric column `j`: its base distribution, moved by SHIFT standard deviations in the current frame if it is shifted."
    import numpy as np
    kind = j % 4
    if kind == 0: x, sd = rng.normal(0, 1, n), 1.0
    elif kind == 1: x, sd = rng.lognormal(0, 1, n), float(np.sqrt((np.e - 1) * np.e))  # right-skewed, heavy right tail
    elif kind == 2: x, sd = rng.standard_t(3, n), float(np.sqrt(3))  # heavy tails on both sides
    else: x, sd = rng.normal(5, 2, n), 2.0
    if current and NUMERIC[j] in SHIFTED: x += SHIFT * sd
    if NUMERIC[j] in WITH_MISSING: x[rng.random(n) < MISSING] = np.nan
    return x

def _categorical(rng, j:int, n:int, current:bool):
    "`n` values of categorical column `j`, as an Arrow string array (no Python strings are made)."
    import numpy as np, pyarrow as pa
    cats, p = CATEGORIES, SHARES
    if current and CATEGORICAL[j] in WITH_UNSEEN: cats, p = [*cats, 'unseen'], [s * (1 - UNSEEN) for s in p] + [UNSEEN]
    return pa.array(cats, pa.string()).take(pa.array(rng.choice(len(cats), n, p=p).astype(np.int32)))

def write_frames(folder:Path, rows:int, seed:int=SEED) -> tuple:
    "Write the reference and the current frame of `rows` rows as ref.parquet and cur.parquet in `folder`, CHUNK rows at a time."
    import numpy as np, pyarrow as pa, pyarrow.parquet as pq
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder/'ref.parquet', folder/'cur.parquet'
    for which, path in enumerate(paths):
        writer = None
        for i, start in enumerate(range(0, rows, CHUNK)):
            n, rng = min(CHUNK, rows - start), np.random.default_rng([seed, which, i])
            cols = {c: _numeric(rng, j, n, which == 1) for j, c in enumerate(NUMERIC)}
            cols |= {c: _categorical(rng, j, n, which == 1) for j, c in enumerate(CATEGORICAL)}
            table = pa.table(cols)
            writer = writer or pq.ParquetWriter(path, table.schema, use_dictionary=CATEGORICAL)  # random doubles gain nothing from a dictionary
            writer.write_table(table, row_group_size=ROW_GROUP)
        writer.close()
    return paths


# The workers: each runs one tool in this process and prints one line of JSON. They import only that tool.
def _rss_now_mb() -> float:
    "This process's resident set size now, in MB."
    with open('/proc/self/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20

def _peak_rss_mb() -> float:
    "This process's peak resident set size so far, in MB (ru_maxrss is in KiB on Linux)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def worker_ours(ref:str, cur:str, memory_limit:str, threads:int) -> dict:
    import duckdb, scipy.stats  # noqa: F401  scipy is imported by `compare` anyway (p-values); loaded here, it counts as an import, not as work
    from workbench import stats
    from workbench.config import load_settings
    baseline = _rss_now_mb()
    thresholds = load_settings(env={}).values
    features = {**dict.fromkeys(NUMERIC, 'numeric'), **dict.fromkeys(CATEGORICAL, 'categorical')}
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET memory_limit='{memory_limit}'")
    con.execute(f'SET threads={int(threads)}')
    R, C = f"read_parquet('{ref}')", f"read_parquet('{cur}')"
    profile = stats.profile_of(con, R, features)
    t1, peak_profile = time.perf_counter(), _peak_rss_mb()
    result = stats.compare(con, C, profile, R, thresholds)
    t2 = time.perf_counter()
    return dict(profile_s=t1 - t0, compare_s=t2 - t1, seconds=t2 - t0, rss_after_imports_mb=baseline, peak_rss_after_profile_mb=peak_profile,
                peak_rss_mb=_peak_rss_mb(), duckdb=duckdb.__version__, rows=profile['rows'], result=result.to_dict('records'))

def worker_evidently(ref:str, cur:str) -> dict:
    import evidently, pandas as pd
    from evidently import Report, Dataset, DataDefinition
    from evidently.presets import DataDriftPreset
    baseline = _rss_now_mb()
    t0 = time.perf_counter()
    reference, current = pd.read_parquet(ref), pd.read_parquet(cur)
    t1 = time.perf_counter()
    dd = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(current, data_definition=dd), Dataset.from_pandas(reference, data_definition=dd))
    t2 = time.perf_counter()
    drift = {m['config']['column']: dict(method=m['config']['method'], value=m['value'], threshold=m['config']['threshold'])
             for m in snapshot.dict()['metrics'] if m['config']['type'].endswith(':ValueDrift')}
    return dict(read_s=t1 - t0, report_s=t2 - t1, seconds=t2 - t0, rss_after_imports_mb=baseline, peak_rss_mb=_peak_rss_mb(),
                evidently=evidently.__version__, rows=len(reference), drift=drift)

if __name__ == '__main__':  # python bench_drift.py ours REF CUR MEMORY_LIMIT THREADS | evidently REF CUR
    tool, *args = sys.argv[1:]
    out = worker_ours(*args[:3], int(args[3])) if tool == 'ours' else worker_evidently(*args)
    print('BENCH_JSON ' + json.dumps(out, default=float))
    sys.exit(0)


import pytest  # below the workers, so that a worker process does not load it

pytestmark = pytest.mark.benchmark


def run_worker(tool:str, *args, cwd:Path) -> dict:
    "Run this file as a worker for `tool` in a new process, in `cwd` (DuckDB spills there, if it does); its JSON."
    r = subprocess.run([sys.executable, __file__, tool, *map(str, args)], cwd=cwd, capture_output=True, text=True)
    line = next((l for l in r.stdout.splitlines() if l.startswith('BENCH_JSON ')), None)
    assert r.returncode == 0 and line, f'the {tool} worker failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    return json.loads(line.removeprefix('BENCH_JSON '))


@pytest.fixture(scope='module')
def folder():
    "A temporary folder for this run's data, removed afterwards."
    d = Path(tempfile.mkdtemp(prefix='workbench-bench-drift-', dir=os.environ.get('WORKBENCH_BENCH_TMP')))
    yield d
    shutil.rmtree(d, ignore_errors=True)

def frames(folder:Path, rows:int) -> tuple:
    "The reference and current Parquet files of `rows` rows in `folder`, written on first use."
    sub = folder/f'{rows}'
    if not (sub/'.done').exists():
        t = time.perf_counter(); paths = write_frames(sub, rows); (sub/'.done').touch()
        print(f"\nwrote {rows:,} rows x 2 to {sub} ({sum(p.stat().st_size for p in paths) / 2**20:.0f} MB) in {time.perf_counter() - t:.1f} s")
    return sub/'ref.parquet', sub/'cur.parquet'


def _ours_flags(result:list) -> dict:
    "statistic -> {feature: (value, drifted)} of our result's records."
    out = {}
    for r in result: out.setdefault(r['statistic'], {})[r['feature']] = (r['value'], r['drifted'])
    return out

def _mb(x): return round(x, 1)


def test_drift_vs_evidently(folder):
    ref, cur = frames(folder, ROWS)
    load_before = round(os.getloadavg()[0], 2)
    ours = run_worker('ours', ref, cur, DUCKDB_MEMORY, DUCKDB_THREADS, cwd=ref.parent)
    theirs = run_worker('evidently', ref, cur, cwd=ref.parent)
    assert ours['rows'] == theirs['rows'] == ROWS

    # Working code: the same statistics flag the same columns in both tools, and their values agree.
    flags, drift = _ours_flags(ours['result']), theirs['drift']
    stat_of = {'Wasserstein distance (normed)': 'wasserstein', 'Jensen-Shannon distance': 'js'}
    assert set(drift) == set(NUMERIC + CATEGORICAL) and {d['method'] for d in drift.values()} == set(stat_of), drift
    expected = set(SHIFTED + WITH_UNSEEN)
    theirs_drifted = {c for c, d in drift.items() if d['value'] >= d['threshold']}  # Evidently's rule for distances
    ours_drifted = {c for c, d in drift.items() if flags[stat_of[d['method']]][c][1]}
    assert theirs_drifted == expected, f'Evidently flags {sorted(theirs_drifted)}, expected {sorted(expected)}'
    assert ours_drifted == expected, f'workbench flags {sorted(ours_drifted)}, expected {sorted(expected)}'
    assert {c for c, (_, d) in flags['ks'].items() if d} >= set(SHIFTED)  # and KS too (at 1M rows it may also flag a chance difference)
    assert {c for c, (_, d) in flags['unseen'].items() if d} == set(WITH_UNSEEN)
    gap = max(abs(flags[stat_of[d['method']]][c][0] - d['value']) for c, d in drift.items())
    assert gap < 0.01, f'the statistics differ by up to {gap} between the tools'

    ev_net, ours_net = theirs['peak_rss_mb'] - theirs['rss_after_imports_mb'], ours['peak_rss_mb'] - ours['rss_after_imports_mb']
    print(json.dumps({
        'benchmark': 'drift_vs_evidently', 'rows': ROWS, 'columns': {'numeric': len(NUMERIC), 'categorical': len(CATEGORICAL)}, 'cpus': os.cpu_count(),
        'loadavg_1m_before': load_before,
        'ours': {'duckdb_memory_limit': DUCKDB_MEMORY, 'duckdb_threads': DUCKDB_THREADS, 'profile_s': round(ours['profile_s'], 2),
                 'compare_s': round(ours['compare_s'], 2), 'profile_and_compare_s': round(ours['seconds'], 2),
                 'rss_after_imports_mb': _mb(ours['rss_after_imports_mb']), 'peak_rss_after_profile_mb': _mb(ours['peak_rss_after_profile_mb']),
                 'peak_rss_mb': _mb(ours['peak_rss_mb'])},
        'evidently': {'version': theirs['evidently'], 'read_s': round(theirs['read_s'], 2), 'report_s': round(theirs['report_s'], 2),
                      'read_and_report_s': round(theirs['seconds'], 2), 'rss_after_imports_mb': _mb(theirs['rss_after_imports_mb']),
                      'peak_rss_mb': _mb(theirs['peak_rss_mb'])},
        'speedup': round(theirs['seconds'] / ours['seconds'], 1),  # Evidently's seconds / ours, profile + compare; target >= 50
        'speedup_compare_only': round(theirs['seconds'] / ours['compare_s'], 1),  # the profile is made once per model version and stored
        'peak_rss_ratio': round(ours['peak_rss_mb'] / theirs['peak_rss_mb'], 3),  # ours / Evidently's; target <= 0.25
        'net_rss_ratio': round(ours_net / ev_net, 3),  # the same less each process's RSS after its imports
        'drifted': sorted(ours_drifted), 'max_statistic_gap': float(f'{gap:.2g}')}))


def test_drift_scaling(folder):
    out, load_before = {}, {}
    for rows in (ROWS, BIG_ROWS):
        ref, cur = frames(folder, rows)
        load_before[f'{rows // 1_000_000}M'] = round(os.getloadavg()[0], 2)
        r = run_worker('ours', ref, cur, DUCKDB_MEMORY, DUCKDB_THREADS, cwd=ref.parent)
        assert r['rows'] == rows
        flags = _ours_flags(r['result'])
        assert {c for c, (_, d) in flags['wasserstein'].items() if d} == set(SHIFTED) and {c for c, (_, d) in flags['unseen'].items() if d} == set(WITH_UNSEEN)
        out[rows] = r
    small, big = out[ROWS], out[BIG_ROWS]
    print(json.dumps({
        'benchmark': 'drift_scaling', 'duckdb_memory_limit': DUCKDB_MEMORY, 'duckdb_threads': DUCKDB_THREADS, 'cpus': os.cpu_count(),
        'loadavg_1m_before': load_before,
        **{f'{n // 1_000_000}M': {'profile_s': round(r['profile_s'], 2), 'compare_s': round(r['compare_s'], 2), 'seconds': round(r['seconds'], 2),
                                  'rss_after_imports_mb': _mb(r['rss_after_imports_mb']), 'peak_rss_mb': _mb(r['peak_rss_mb'])} for n, r in out.items()},
        'time_ratio': round(big['seconds'] / small['seconds'], 2),  # linear is 10
        'compare_time_ratio': round(big['compare_s'] / small['compare_s'], 2),
        'rss_ratio': round(big['peak_rss_mb'] / small['peak_rss_mb'], 3)}))  # flat is 1
