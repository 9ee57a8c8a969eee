"Issue 20: the lifecycle on a team's `mlflow server` whose backend store is PostgreSQL, artifacts proxied by the server."
import sys, threading
import pandas as pd, pytest
from sklearn.linear_model import LogisticRegression
from conftest import approve
from test_registry import NUM, CAT, candidate
from tracking_server import READER_PASSWORD, create_database
from workbench import data, demo, registry, runs, tracking, views
from workbench.config import load_settings
from workbench.errors import WorkbenchError
from workbench.workspace import open_workspace


@pytest.fixture(scope='module')
def team(mlflow_server, tmp_path_factory):
    "A workspace tracking to the server: a dataset, a run registered as version 1, approved and champion, a second run."
    ws = open_workspace(tmp_path_factory.mktemp('team')/'ws',
                        load_settings(env={'WORKBENCH_WORKSPACE_TRACKING_URI': mlflow_server.url}), create=True)
    credit = data.commit(ws, 'credit', demo.training_frame(demo.generate(months=4, rows_per_month=800), 4), 'four months', 'ana')
    first, run1 = candidate(ws, credit, LogisticRegression(max_iter=500), NUM + CAT)
    with tracking.start_run(ws, 'credit-default', credit.ref, NUM, 'defaulted', {'model': 'LogisticRegression'}) as run:
        for step, auc in enumerate([0.55, 0.6]): tracking.log_metrics({'gate.auc': auc}, step=step)
        tracking.log_metrics({'loss': float('nan'), 'upper': float('inf')})  # MLflow keeps NaN as a flag
    approve(ws, first.ref, 'bea')
    registry.promote(ws, first.ref, 'bea', 'first champion')
    return ws, credit, (first, run1), (None, run.run_id)


def test_lifecycle_on_the_server(team, mlflow_server):
    ws, credit, (first, run1), _ = team
    assert ws.tracking_uri == mlflow_server.url and first.version == 1
    assert registry.champion(ws, 'credit-default').version == 1
    # artifacts went through the server onto the object store, none into the workspace (whose machine has no AWS_* keys)
    assert mlflow_server.artifacts.startswith('s3://') and not list(ws.root.rglob('model.onnx'))
    assert any(f.endswith('/model.onnx') for f in mlflow_server.artifact_files())
    model, mv = registry.load_onnx(ws, 'credit-default@champion')
    assert mv.version == 1 and model
    lineage = registry.lineage(ws, first.ref)
    assert lineage['run']['run_id'] == run1 and lineage['datasets'][0]['id'] == credit.id
    assert list(views.models(ws).version) == [1]


def test_runs_compared_through_the_server(team):
    ws, credit, (_, run1), (_, run2) = team
    df = runs.runs(ws, 'credit-default')
    assert list(df.run_id) == [run2, run1] and set(df.dataset) == {credit.ref}
    assert (df['params.model'] == 'LogisticRegression').all() and df['metrics.gate.auc'].notna().all()
    table = runs.compare(ws, [run1, run2])
    assert table.set_index(['kind', 'key']).loc[('tag', 'workbench.features'), 'differs']
    assert list(views.runs(ws, search='credit').run_id) == [run2, run1]
    shown = views.comparison(ws, [run1, run2])
    assert set(shown['metrics'].run_id) == {run1, run2}


def test_runs_read_from_the_database(team, mlflow_server, monkeypatch, tmp_path):
    "With `workspace.tracking_db`, runs come from the server's database (read-only role, password from PGPASSWORD)."
    ws, credit, (_, run1), (_, run2) = team
    through_server = runs.runs(ws)
    monkeypatch.setenv('PGPASSWORD', READER_PASSWORD)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))  # where runs() keeps its copy
    direct = open_workspace(ws.root, load_settings(env={'WORKBENCH_WORKSPACE_TRACKING_URI': mlflow_server.url,
                                                        'WORKBENCH_WORKSPACE_TRACKING_DB': mlflow_server.reader_db}))
    fast = runs.runs(direct)
    assert fast.columns.tolist() == through_server.columns.tolist()
    assert fast.drop(columns='artifact_uri').equals(through_server.drop(columns='artifact_uri'))
    got = fast.set_index('run_id').loc[run2]
    assert pd.isna(got['metrics.loss']) and got['metrics.upper'] == sys.float_info.max  # MLflow's SQL store keeps inf so
    con = runs.connect_runs(direct, run_ids=[run1])
    assert con.execute('select count(distinct run_id) from metric_history').fetchone()[0] == 1
    history = runs.connect_runs(direct, run_ids=[run2]).execute("select step, value from metric_history where key = 'gate.auc' order by step")
    assert history.fetchall() == [(0, 0.55), (1, 0.6)]
    assert runs.compare(direct, [run1, run2]).equals(runs.compare(ws, [run1, run2]))
    monkeypatch.setenv('PGPASSWORD', 'wrong')
    with pytest.raises(WorkbenchError, match='password authentication failed'):
        runs.runs(direct)


def test_runs_kept_on_this_machine_follow_the_database(team, mlflow_server, monkeypatch, tmp_path):
    "runs() keeps a copy of the tables and then reads only the rows written since: it always equals what the server says."
    from mlflow.tracking import MlflowClient
    ws, _, (_, run1), (_, run2) = team
    monkeypatch.setenv('PGPASSWORD', READER_PASSWORD)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    direct = open_workspace(ws.root, load_settings(env={'WORKBENCH_WORKSPACE_TRACKING_URI': mlflow_server.url,
                                                        'WORKBENCH_WORKSPACE_TRACKING_DB': mlflow_server.reader_db}))
    reads = []
    real = runs._pg_read
    monkeypatch.setattr(runs, '_pg_read', lambda uri, copies, *a, **k: reads.append(' '.join(copies.values())) or real(uri, copies, *a, **k))
    def same():  # as the server's own API answers, read whole each time
        got, want = runs.runs(direct), runs.runs(ws)
        for t in threading.enumerate():  # runs() writes its copy in a thread of its own: wait for it
            if t.name == 'workbench-keep-runs': t.join()
        assert got.columns.tolist() == want.columns.tolist()
        pd.testing.assert_frame_equal(got.drop(columns='artifact_uri'), want.drop(columns='artifact_uri'))
        return got
    same()
    assert len(reads) == 1 and 'xmin' not in reads[0]  # the first time: copied whole
    c = MlflowClient(mlflow_server.url)
    c.set_tag(run1, 'team', 'risk'); c.set_tag(run2, 'mlflow.note.content', 'kept')
    c.log_metric(run2, 'gate.auc', 0.65, step=2)  # a newer value of a metric: its latest row is replaced
    new = c.create_run(c.get_run(run1).info.experiment_id, run_name='later')
    c.log_param(new.info.run_id, 'model', 'GradientBoosting'); c.set_terminated(new.info.run_id)
    got = same()
    assert len(reads) == 2 and 'xmin' in reads[1]  # only what was written since
    assert got.set_index('run_id').loc[run2, 'metrics.gate.auc'] == 0.65 and len(got) == 3
    same()
    assert len(reads) == 3 and 'xmin' in reads[2]
    c.delete_tag(run1, 'team')  # a deleted row: the counts disagree, so the tables are copied whole again
    got = same()
    assert 'tags.team' not in got and len(reads) == 5 and 'xmin' not in reads[4]
    c.delete_run(new.info.run_id)  # a run deleted (its lifecycle changes) and a run renamed
    c.set_tag(run1, 'mlflow.runName', 'renamed')
    assert len(same()) == 2
    for f in tmp_path.rglob('*.arrow'): f.write_bytes(b'not arrow')  # a damaged copy is copied again
    same()
    assert 'xmin' not in reads[-1]


def test_unreachable_server_and_database(team, tmp_path):
    from conftest import free_port
    ws = team[0]
    gone = open_workspace(tmp_path/'ws', load_settings(env={'WORKBENCH_WORKSPACE_TRACKING_URI': f'http://127.0.0.1:{free_port()}'}),
                          create=True)
    with pytest.raises(WorkbenchError, match='does not answer'):
        runs.runs(gone)
    no_db = open_workspace(ws.root, load_settings(env={'WORKBENCH_WORKSPACE_TRACKING_URI': ws.tracking_uri,
                                                       'WORKBENCH_WORKSPACE_TRACKING_DB': f'postgresql://reader@127.0.0.1:{free_port()}/mlflow'}))
    with pytest.raises(WorkbenchError, match='cannot read the tracking database'):
        runs.runs(no_db)


def test_artifacts_beside_a_workspace_on_object_storage(seaweedfs, postgres, tmp_path, monkeypatch):
    "A workspace on object storage tracked in PostgreSQL named directly (no server): run artifacts go to the bucket."
    from pyarrow.fs import FileSelector
    for k, v in seaweedfs.items(): monkeypatch.setenv(k, v)
    monkeypatch.setenv('WORKBENCH_HOME', f"{seaweedfs['WORKBENCH_HOME']}/no-server")
    monkeypatch.setenv('XDG_STATE_HOME', str(tmp_path/'state'))
    with pytest.raises(WorkbenchError, match='MLflow must be shared'):  # a SQLite file would be this machine's only
        open_workspace(None, load_settings(env={})).tracking_uri
    direct = create_database(postgres, 'direct').replace('postgresql:', 'postgresql+psycopg2:')  # the driver installed
    ws = open_workspace(None, load_settings(env={}, overrides={'workspace.tracking_uri': direct}))
    credit = data.commit(ws, 'credit', demo.training_frame(demo.generate(months=4, rows_per_month=800), 4), 'four months', 'ana')
    mv, run_id = candidate(ws, credit, LogisticRegression(max_iter=500), NUM)
    assert registry.client(ws).get_run(run_id).info.artifact_uri.startswith(f'{ws.uri}/artifacts/mlflow/credit-default/')
    fs, base = ws.storage()
    stored = [i.path for i in fs.get_file_info(FileSelector(f'{base}/artifacts/mlflow', recursive=True))]
    assert any(p.endswith('/model.onnx') for p in stored) and not list(ws.root.rglob('model.onnx'))
    model, got = registry.load_onnx(ws, mv.ref)
    assert got.version == mv.version and len(model) > 1000
