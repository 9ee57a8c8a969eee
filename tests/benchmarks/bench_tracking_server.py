"""Loading 100,000 runs (20 params, 20 metrics each) from an `mlflow server` on PostgreSQL: `workbench.runs.runs` reading
the server's database (`workspace.tracking_db`) against `MlflowClient.search_runs` paging through the server.
`ours_s` is the whole `runs` frame (a column per param and metric) from this machine's kept copy of the tables and the
rows written since (none); `ours_cold_s` the same with no copy kept (every row copied); `ours_after_1000_new_runs_s`
after 1,000 more runs were written; `ours_read_s` the cold part reading the tables into Arrow.

Run: pytest tests/benchmarks/bench_tracking_server.py -m benchmark -s -p no:cacheprovider
The server creates MLflow's schema (its migrations); the runs are then bulk-inserted in MLflow's layout by set-based
SQL (`insert ... select ... from generate_series`) inside PostgreSQL, as MLflow itself would have stored them.
WORKBENCH_BENCH_RUNS sets the number of runs; WORKBENCH_BENCH_SEARCH_RUNS, if set, times `search_runs` on that many
runs only (the first pages) and extrapolates linearly to all, labelled so in the JSON line.
"""
import json, os, random, shutil, time
import pandas as pd, pytest

pytestmark = pytest.mark.benchmark
RUNS, PARAMS, METRICS = int(os.environ.get('WORKBENCH_BENCH_RUNS', 100_000)), 20, 20
SEARCH_RUNS = int(os.environ.get('WORKBENCH_BENCH_SEARCH_RUNS', 0))  # 0: time search_runs over every run
T0 = 1_750_000_000_000
RUN_ID = "md5(%(exp)s || '-' || i)"  # a 32-character hex id per experiment and run number i, as MLflow's uuid4().hex
VALUE = "mod(abs(hashtext(i || '-' || j)), 1000000) / 1000000.0::float8"  # metric j of run i, reproducible


def populate(db:str, experiment_id:int, artifact_root:str, runs:int=RUNS, params:int=PARAMS, metrics:int=METRICS):
    "Insert `runs` finished runs of `experiment_id` into MLflow's tables at `db`, each with params, metrics and tags."
    import psycopg2
    tags = [('mlflow.runName', "'run-' || i"), ('mlflow.user', "'bench'"), ('workbench.dataset', "'credit@0123456789ab'"),
            ('workbench.dataset_id', "'0123456789ab' || repeat('f', 52)"), ('workbench.code_version', "repeat('a', 40)"),
            ('mlflow.source.name', "'pipelines/train.ipynb'"), ('team', "(array['risk', 'growth'])[1 + mod(i, 2)]")]
    run_ids = 'from generate_series(0, %(n)s - 1) i'
    sql = [f"""insert into runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time,
                                end_time, source_version, lifecycle_stage, artifact_uri, experiment_id)
               select {RUN_ID}, 'run-' || i, 'UNKNOWN', '', '', 'bench', 'FINISHED', %(t0)s + 1000 * i, %(t0)s + 1000 * i + 900,
                      '', 'active', %(art)s || '/' || {RUN_ID} || '/artifacts', %(exp)s {run_ids}""",
           *[f"insert into tags (key, value, run_uuid) select %(k{n})s, {v}, {RUN_ID} {run_ids}" for n, (_, v) in enumerate(tags)],
           f"""insert into params (key, value, run_uuid)
               select 'param_' || j, (array['0.01', '0.1', '1', '10', 'lbfgs', 'saga', 'True'])[1 + mod(abs(hashtext(i || 'p' || j)), 7)],
                      {RUN_ID} {run_ids}, generate_series(0, %(params)s - 1) j""",
           *[f"""insert into {t} (key, value, timestamp, run_uuid, step, is_nan)
                 select 'metric_' || j, {VALUE}, %(t0)s + 1000 * i + 100 + j, {RUN_ID}, 0, false
                 {run_ids}, generate_series(0, %(metrics)s - 1) j""" for t in ('metrics', 'latest_metrics')]]
    args = dict(n=runs, t0=T0, art=artifact_root, exp=experiment_id, params=params, metrics=metrics,
                **{f'k{n}': k for n, (k, _) in enumerate(tags)})
    with psycopg2.connect(db.replace('postgresql+psycopg2:', 'postgresql:')) as con, con.cursor() as cur:
        for q in sql: cur.execute(q, args)
        cur.execute('analyze')


def search_all(url:str, experiment_id:str, limit:int=0) -> list:
    "Every run of the experiment through `MlflowClient.search_runs`, paged as MLflow allows (at most `limit` if set)."
    from mlflow.tracking import MlflowClient
    c, out, token = MlflowClient(url), [], None
    while True:
        page = c.search_runs([experiment_id], max_results=10_000 if not limit else min(10_000, limit - len(out)), page_token=token)
        out += page
        if not (token := page.token) or (limit and len(out) >= limit): return out


def test_load_runs_from_the_server(postgres, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient
    from tracking_server import READER_PASSWORD, mlflow_server_for
    from workbench import runs
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    server, ctx = mlflow_server_for(postgres, tmp_path, 'bench')
    with ctx:
        exp = MlflowClient(server.url).create_experiment('bench')
        t = time.perf_counter()
        populate(server.db, int(exp), 'mlflow-artifacts:/' + exp)
        populated = time.perf_counter() - t
        monkeypatch.setenv('PGPASSWORD', READER_PASSWORD)
        ws = open_workspace(tmp_path/'ws', load_settings(env={'WORKBENCH_WORKSPACE_TRACKING_URI': server.url,
                                                              'WORKBENCH_WORKSPACE_TRACKING_DB': server.reader_db}), create=True)
        monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'cache'))  # where runs() keeps its copy of the tables
        runs.runs(ws)  # warm: imports, PostgreSQL's caches
        shutil.rmtree(tmp_path/'cache')
        t = time.perf_counter(); cold = runs.runs(ws); cold_s = time.perf_counter() - t  # no copy kept: every row copied
        t = time.perf_counter(); ours = runs.runs(ws); ours_s = time.perf_counter() - t  # the copy, and what was written since: nothing
        t = time.perf_counter(); runs._read_postgres(server.reader_db, None, history=False, lean=True); read_s = time.perf_counter() - t
        populate(server.db, int(later := MlflowClient(server.url).create_experiment('later')), 'mlflow-artifacts:/' + later, runs=1000)
        t = time.perf_counter(); grown = runs.runs(ws); grown_s = time.perf_counter() - t  # 1,000 runs logged since
        t = time.perf_counter(); found = search_all(server.url, exp, SEARCH_RUNS); searched_s = time.perf_counter() - t
    assert len(ours) == RUNS and ours.run_id.is_unique and len(grown) == RUNS + 1000
    pd.testing.assert_frame_equal(ours, cold)
    pd.testing.assert_frame_equal(grown[grown.experiment == 'bench'].reset_index(drop=True), ours)
    assert len(ours.filter(like='params.').columns) == PARAMS and len(ours.filter(like='metrics.').columns) == METRICS
    ids = set(ours.run_id)
    assert {r.info.run_id for r in found} <= ids and len(found) == (SEARCH_RUNS or RUNS)
    if not SEARCH_RUNS: assert {r.info.run_id for r in found} == ids
    mine = ours.set_index('run_id')
    for r in random.Random(0).sample(found, 200):  # the same values, both ways
        assert {k: mine.at[r.info.run_id, f'metrics.{k}'] for k in r.data.metrics} == r.data.metrics
        assert {k: mine.at[r.info.run_id, f'params.{k}'] for k in r.data.params} == r.data.params
    mlflow_s = searched_s * RUNS / len(found)
    print(json.dumps({'runs': RUNS, 'params': PARAMS, 'metrics': METRICS, 'ours_s': round(ours_s, 3), 'mlflow_s': round(mlflow_s, 2),
                      'ratio': round(mlflow_s / ours_s, 1), 'ours_cold_s': round(cold_s, 3), 'cold_ratio': round(mlflow_s / cold_s, 1),
                      'ours_after_1000_new_runs_s': round(grown_s, 3), 'ours_read_s': round(read_s, 3), 'populate_s': round(populated, 1),
                      **({'mlflow_timed_runs': len(found), 'mlflow_timed_s': round(searched_s, 2),
                          'mlflow_s_is': 'extrapolated linearly from the timed runs'} if SEARCH_RUNS else {})}))
