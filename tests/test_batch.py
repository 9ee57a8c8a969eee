"Batch scoring on the demo workspace: DuckDB and Spark engines, inputs, monitoring, refusals, and the CLI."
import json, os, shutil, subprocess
import numpy as np, pyarrow as pa, pyarrow.dataset as pds, pyarrow.parquet as pq
import pytest
from conftest import BIN
from conftest import clean_env

REF = 'credit-default@champion'


@pytest.fixture(scope='module')
def bws(demo_run, tmp_path_factory):
    "A copy of the demo workspace (its MLflow artifacts stay where the demo wrote them), and the latest training data in 3 Parquet files."
    from workbench import data
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    root = shutil.copytree(demo_run.ws, tmp_path_factory.mktemp('batch')/'ws')
    ws = open_workspace(root, load_settings(env={}))
    t = pq.read_table(ws.root/data.resolve(ws, 'credit@latest').path)
    parts = root.parent/'parts'; parts.mkdir()
    for i, start in enumerate(range(0, t.num_rows, -(-t.num_rows // 3))): pq.write_table(t.slice(start, -(-t.num_rows // 3)), parts/f'part-{i}.parquet')
    return ws, t, parts


@pytest.fixture(scope='module')
def spark():
    "PySpark on Java, in local[2]: under CI a missing engine fails the tests, never skips them."
    try:
        from workbench import spark
        s = spark.session('local[2]')
    except Exception as e:
        if os.environ.get('CI'): pytest.fail(f'Spark is not usable here: {e}')
        pytest.skip(f'Spark is not usable here: {e}')
    yield s
    s.stop()


def served(ws, frame):
    "Probabilities and labels as the model server computes them (its own input path), for comparison."
    from workbench import registry
    from workbench.deployed import Deployed
    onnx_bytes, mv = registry.load_onnx(ws, REF)
    d = Deployed.from_bytes(mv.name, mv.version, onnx_bytes)
    cols = {c: [None if v != v else v for v in frame[c].tolist()] for c in d.names}
    out = d.run(d.feeds(cols, len(frame)))
    return out['probabilities'][:, 1], out['label'].ravel(), mv


def test_duckdb_engine_scores_as_the_server_does_and_reaches_monitoring(bws, tmp_path):
    from workbench import audit, batch
    ws, t, parts = bws
    r = batch.score(ws, REF, 'credit@latest', tmp_path/'scores.parquet', batch_size=700, keys=['application_id'])
    out = pq.read_table(tmp_path/'scores.parquet')
    assert out.column_names == ['application_id', 'prediction', 'probability', 'model_version'] and out.num_rows == t.num_rows == r['rows']
    assert pq.ParquetFile(tmp_path/'scores.parquet').metadata.num_row_groups == -(-t.num_rows // 700)  # streamed, one row group per batch
    frame = t.to_pandas()
    p, label, mv = served(ws, frame)
    assert out['application_id'].to_pylist() == frame.application_id.tolist()
    assert np.abs(out['probability'].to_numpy() - p).max() < 1e-12 and (out['prediction'].to_numpy() == label).all()
    assert set(out['model_version'].to_pylist()) == {mv.version}
    # audited, with the row count
    ev = audit.log(ws, 5)
    ev = ev[ev.action == 'batch.score'].iloc[0]
    after = json.loads(ev.after) if isinstance(ev.after, str) else ev.after
    assert ev.subject == mv.ref and after['rows'] == t.num_rows and after['run'] == r['run']
    # the sample reaches the prediction log as batch rows: every row here, as the run is smaller than batch.monitor_rows
    log = ws.sql("select * from predictions where starts_with(request_id, $r || '-') order by \"row\"", dict(r=r['run'])).df()  # a request id per row: `<run>-<row>`
    assert len(log) == r['monitored_rows'] == t.num_rows and set(log.variant) == set(log.source) == {'batch'} and set(log.version) == {mv.version}
    assert np.allclose(log.score, out['probability'].to_numpy()) and json.loads(log.inputs[5])['income'] == frame.income[5]
    # ... where drift monitoring reads it like served requests
    from workbench import drift
    rows = drift.drift(ws, f'credit-default/{mv.version}', window=f'{t.num_rows}rows', alert=False)
    assert len(rows) and set(rows.rows) == {t.num_rows}


def test_inputs_a_glob_a_query_and_a_sample(bws, tmp_path):
    from workbench import batch
    ws, t, parts = bws
    batch.score(ws, REF, str(parts/'*.parquet'), tmp_path/'glob.parquet', keys=['application_id'])
    q = f"select * from read_parquet('{parts}/*.parquet') where product = 'personal_loan'"
    r = batch.score(ws, REF, q, tmp_path/'query.parquet', keys=['application_id'])
    g, s = pq.read_table(tmp_path/'glob.parquet'), pq.read_table(tmp_path/'query.parquet')
    assert g.num_rows == t.num_rows and 0 < s.num_rows == r['rows'] < t.num_rows
    both = g.join(s, 'application_id', right_suffix='_q', join_type='inner')
    assert both.num_rows == s.num_rows and both['probability'].equals(both['probability_q'])
    # a CSV file: the same scores (numbers written as text and read back are the same numbers)
    import pyarrow.csv as pcsv
    pcsv.write_csv(t, tmp_path/'in.csv')
    batch.score(ws, REF, str(tmp_path/'in.csv'), tmp_path/'csv.parquet', keys=['application_id'])
    assert pq.read_table(tmp_path/'csv.parquet')['probability'].equals(g['probability'])
    # a smaller monitoring sample is drawn from the whole run, not its start
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    small = open_workspace(ws.root, load_settings(overrides={'batch.monitor_rows': '200'}, env={}))
    r = batch.score(small, REF, str(parts/'*.parquet'), tmp_path/'sampled.parquet')
    rows = ws.sql('select "row" from predictions where starts_with(request_id, $r || \'-\')', dict(r=r['run'])).df()['row']
    assert r['monitored_rows'] == len(rows) == rows.nunique() == 200 and rows.max() > t.num_rows * 0.8 and rows.min() < t.num_rows * 0.2
    # the default keys are every column the model does not take
    assert pq.read_schema(tmp_path/'sampled.parquet').names[:3] == ['application_id', 'applied_at', 'month']


def test_spark_and_duckdb_write_identical_outputs(bws, spark, tmp_path):
    from workbench import batch
    ws, t, parts = bws
    a = batch.score(ws, REF, str(parts/'*.parquet'), tmp_path/'duck.parquet', batch_size=500)
    b = batch.score(ws, REF, str(parts/'*.parquet'), tmp_path/'spark', engine='spark', batch_size=300, master='local[2]')
    assert (tmp_path/'spark').is_dir() and not list(tmp_path.glob('.tmp-*'))
    duck, sp = pq.read_table(tmp_path/'duck.parquet'), pds.dataset(tmp_path/'spark').to_table()
    assert a['rows'] == b['rows'] == t.num_rows and b['monitored_rows'] == t.num_rows
    assert duck.schema.remove_metadata() == sp.schema.remove_metadata(), (duck.schema, sp.schema)
    assert duck.sort_by('application_id').equals(sp.sort_by('application_id'))  # every key, prediction and probability, bit for bit
    # a folder of Parquet parts (as Spark writes them) is an input too
    assert batch.score(ws, REF, str(parts), tmp_path/'folder.parquet')['rows'] == t.num_rows


def _nothing_written(ws, folder, before):
    assert not [p for p in folder.iterdir() if p.name != 'in.parquet'], list(folder.iterdir())
    assert ws.sql("select count(*) from audit where action = 'batch.score'").fetchall()[0][0] == before


@pytest.mark.parametrize('engine', ['duckdb', 'spark'])
def test_bad_input_is_refused_before_any_output(bws, tmp_path, engine, request):
    from workbench import batch
    from workbench.config import WorkbenchError
    if engine == 'spark': request.getfixturevalue('spark')
    ws, t, parts = bws
    before = ws.sql("select count(*) from audit where action = 'batch.score'").fetchall()[0][0]
    cases = {'income': t.drop_columns(['income']), 'credit_score': t.set_column(t.schema.get_field_index('credit_score'), 'credit_score', t['credit_score'].cast(pa.string())),
             'product': t.set_column(t.schema.get_field_index('product'), 'product', pa.array(np.arange(t.num_rows)))}
    for column, bad in cases.items():
        pq.write_table(bad, tmp_path/'in.parquet')
        with pytest.raises(WorkbenchError, match=f"column '?{column}\\b"):
            batch.score(ws, REF, str(tmp_path/'in.parquet'), tmp_path/'out.parquet', engine=engine)
        _nothing_written(ws, tmp_path, before)
    # a value no model takes, far into the input: the run fails naming column and row, and leaves nothing (missing values: see test_column_names.py)
    age = t['age'].to_pylist(); age[t.num_rows - 3] = float('inf')
    pq.write_table(t.set_column(t.schema.get_field_index('age'), 'age', pa.array(age, pa.float64())), tmp_path/'in.parquet')
    with pytest.raises(WorkbenchError, match="column 'age' has an infinite value" + (f" in row {t.num_rows - 3}" if engine == 'duckdb' else '')):
        batch.score(ws, REF, str(tmp_path/'in.parquet'), tmp_path/'out.parquet', engine=engine, batch_size=500)
    _nothing_written(ws, tmp_path, before)


def test_cli(bws, tmp_path):
    ws, t, parts = bws
    env = clean_env()
    run = lambda *a: subprocess.run([str(BIN/'workbench'), '-w', str(ws.root), 'batch', 'score', *map(str, a)], env=env, capture_output=True, text=True, timeout=300)
    r = run(REF, 'credit@latest', tmp_path/'s.parquet', '--keys', 'application_id,month', '--batch-size', '1000')
    assert r.returncode == 0, r.stderr
    assert f'scored {t.num_rows:,} rows with credit-default/' in r.stdout and 'rows/s' in r.stderr  # the progress bar
    assert pq.read_schema(tmp_path/'s.parquet').names == ['application_id', 'month', 'prediction', 'probability', 'model_version']
    for args, message in [((REF, 'credit@latest', tmp_path/'s.parquet'), 'exists; choose another output or overwrite it'),
                          (('credit-default@nobody', 'credit@latest', tmp_path/'x.parquet'), 'nobody'),
                          ((REF, tmp_path/'none-*.parquet', tmp_path/'x.parquet'), 'no file matches'),
                          ((REF, 'credit@latest', tmp_path/'x.parquet', '--keys', 'nope'), "no key column 'nope'"),
                          ((REF, 'credit@latest', tmp_path/'x.parquet', '--batch-size', '0'), '--batch-size'),
                          ((REF, 'credit@latest', tmp_path/'x.parquet', '--master', 'local[2]'), 'a master URL is for the Spark engine'),
                          ((REF, 'select * from audit', tmp_path/'x.parquet', '--engine', 'spark'), 'the Spark engine reads files'),
                          ((REF, 'credit@latest', tmp_path/'nowhere'/'x.parquet'), 'no folder')]:
        r = run(*args, '--quiet')
        assert r.returncode != 0 and message in r.stderr and 'Traceback' not in r.stderr, (args, r.stderr)
    assert not (tmp_path/'x.parquet').exists()
    r = run(REF, 'credit@latest', tmp_path/'s.parquet', '--overwrite', '--quiet')
    assert r.returncode == 0 and pq.read_schema(tmp_path/'s.parquet').names[-3:] == ['prediction', 'probability', 'model_version']
