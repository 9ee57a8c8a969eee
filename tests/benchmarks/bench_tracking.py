"""Loading 10,000 runs (20 params, 20 metrics each) for comparison: `workbench.tracking` against `mlflow.search_runs`.

Run: pytest tests/benchmarks/bench_tracking.py -m benchmark -s -p no:cacheprovider
The store is generated once (MLflow creates the schema, rows are bulk-inserted in exactly MLflow's layout) and
cached in $WORKBENCH_BENCH_CACHE (default /tmp/workbench-bench).
"""
import json, os, random, sqlite3, statistics, time, uuid
from pathlib import Path
import pytest

pytestmark = pytest.mark.benchmark
RUNS, PARAMS, METRICS = 10_000, 20, 20
CACHE = Path(os.environ.get('WORKBENCH_BENCH_CACHE', '/tmp/workbench-bench'))


def make_store(path:Path, runs=RUNS, params=PARAMS, metrics=METRICS, seed=0):
    "An MLflow SQLite store with one experiment of `runs` finished runs, written with executemany."
    from mlflow.tracking import MlflowClient
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    tmp.unlink(missing_ok=True)
    exp = int(MlflowClient(f'sqlite:///{tmp}').create_experiment('bench', artifact_location=(path.parent/'bench-artifacts').as_uri()))
    rng, t0 = random.Random(seed), 1_750_000_000_000
    rows = {k: [] for k in ('runs', 'tags', 'params', 'metrics', 'latest_metrics')}
    for i in range(runs):
        rid, start = uuid.UUID(int=rng.getrandbits(128), version=4).hex, t0 + 1000 * i
        rows['runs'].append((rid, f'run-{i}', 'UNKNOWN', '', '', 'bench', 'FINISHED', start, start + 900, '', 'active',
                             f'{(path.parent/"bench-artifacts").as_uri()}/{rid}/artifacts', exp))
        rows['tags'] += [('mlflow.runName', f'run-{i}', rid), ('mlflow.user', 'bench', rid), ('workbench.dataset', 'credit@0123456789ab', rid),
                         ('workbench.dataset_id', '0123456789ab' + 'f' * 52, rid), ('workbench.code_version', 'a' * 40, rid),
                         ('mlflow.source.name', 'pipelines/train.ipynb', rid), ('team', rng.choice(['risk', 'growth']), rid)]
        rows['params'] += [(f'param_{j}', str(rng.choice([0.01, 0.1, 1, 10, 'lbfgs', 'saga', True])), rid) for j in range(params)]
        for j in range(metrics):
            v, ts = rng.random(), start + 100 + j
            rows['metrics'].append((f'metric_{j}', v, ts, rid, 0, 0))
            rows['latest_metrics'].append((f'metric_{j}', v, ts, 0, 0, rid))
    sql = {'runs': 'insert into runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time, end_time, '
                   'source_version, lifecycle_stage, artifact_uri, experiment_id) values (?,?,?,?,?,?,?,?,?,?,?,?,?)',
           'tags': 'insert into tags (key, value, run_uuid) values (?,?,?)', 'params': 'insert into params (key, value, run_uuid) values (?,?,?)',
           'metrics': 'insert into metrics (key, value, timestamp, run_uuid, step, is_nan) values (?,?,?,?,?,?)',
           'latest_metrics': 'insert into latest_metrics (key, value, timestamp, step, is_nan, run_uuid) values (?,?,?,?,?,?)'}
    con = sqlite3.connect(tmp)
    with con:
        for t, q in sql.items(): con.executemany(q, rows[t])
    con.execute('pragma journal_mode=wal')  # as `tracking.prepare_store` leaves a workspace store
    con.close()
    os.replace(tmp, path)


@pytest.fixture(scope='module')
def store():
    path = CACHE/f'tracking-{RUNS}x{PARAMS}x{METRICS}-v2.db'
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter(); make_store(path)
        print(f'\ngenerated {path} in {time.perf_counter() - t:.1f} s')
    return path


def timed(f, repeat=1):
    "(median seconds, last result) of `repeat` calls of `f`."
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter(); out = f(); times.append(time.perf_counter() - t)
    return statistics.median(times), out


def test_load_10k_runs(store, tmp_path):
    import mlflow
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    from workbench import runs, tracking
    uri = f'sqlite:///{store}'
    ws = open_workspace(tmp_path/'ws', load_settings(env={}, overrides={'workspace.tracking_uri': uri}))
    exp = mlflow.MlflowClient(uri).get_experiment_by_name('bench').experiment_id

    ours_s, ours = timed(lambda: runs.runs(ws), repeat=4)  # the median of 4: the first call also imports
    def all_views():  # every view materialized, metric history included: more than search_runs returns
        con = runs.connect_runs(ws)
        return {v: con.sql(f'select * from {v}').to_arrow_table() for v in ('runs', 'run_params', 'run_tags', 'run_metrics', 'metric_history')}
    views_s, views = timed(all_views, repeat=3)
    with tracking._tracking(uri):
        mlflow.search_runs([exp], max_results=10)  # warm up: engine, schema check
        theirs_s, theirs = timed(lambda: mlflow.search_runs([exp], max_results=50_000))

    # the stock client reads the generated store, and we return what it returns
    assert len(theirs) == len(ours) == RUNS and theirs.run_id.is_unique
    a, b = ours.set_index('run_id').sort_index(), theirs.set_index('run_id').sort_index()
    for col in [f'params.param_{j}' for j in range(PARAMS)] + [f'metrics.metric_{j}' for j in range(METRICS)] + ['tags.team', 'tags.mlflow.source.name']:
        assert a[col].tolist() == b[col].tolist(), col
    assert a.run_name.tolist() == b['tags.mlflow.runName'].tolist() and a.user.tolist() == b['tags.mlflow.user'].tolist()
    assert a.dataset_id.tolist() == b['tags.workbench.dataset_id'].tolist() and a.status.tolist() == b.status.tolist()
    assert (a.start_time == b.start_time).all() and (a.end_time == b.end_time).all()
    assert views['run_params'].num_rows == views['run_metrics'].num_rows == views['metric_history'].num_rows == RUNS * 20

    print(json.dumps({'benchmark': 'tracking_load_10k_runs', 'ours_s': round(ours_s, 3), 'mlflow_search_runs_s': round(theirs_s, 3),
                      'ratio': round(theirs_s / ours_s, 1), 'runs': RUNS, 'ours_all_views_s': round(views_s, 3)}))
    assert ours_s < 1
