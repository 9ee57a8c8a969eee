"Erasure of data subjects (GDPR Art. 17): their ids gone from every file of the workspace, ids and the audit chain intact."
import hashlib, json
from datetime import datetime, timedelta, timezone
from pathlib import Path
import numpy as np, pandas as pd, pyarrow as pa, pyarrow.parquet as pq
import pytest
from workbench import audit, data, demo, erasure
from workbench.config import load_settings
from workbench.errors import WorkbenchError
from workbench.performance import ingest_labels
from workbench.predictions import PredictionLog
from workbench.workspace import open_workspace

GONE = ['A0000007', 'A0000612']  # an applicant of month 1, one of month 2
FEATURES = ['age', 'income', 'loan_amount']


def needles(values) -> list:
    "What must not be found: each value, and its unsalted hashes (an identifier's hash is still personal data)."
    return list(values) + [getattr(hashlib, h)(v.encode()).hexdigest() for v in values for h in ('sha256', 'sha1', 'md5')]


def parquet_holds(f:Path, found) -> bool:
    "Whether the Parquet file `f` holds one of `found`: in a column's values, its footer statistics or its metadata."
    pf = pq.ParquetFile(f)
    meta = pf.metadata
    texts = [json.dumps(pf.read().to_pylist(), default=str)]
    texts += [str(v) for k, v in (meta.metadata or {}).items()]
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            s = meta.row_group(g).column(c).statistics
            if s is not None and s.has_min_max: texts += [str(s.min), str(s.max)]
    return any(n in t for t in texts for n in found)


def holding(root:Path, values) -> list:
    "Every file under `root` that holds one of `values`: Parquet files read, every file also scanned as bytes and as text."
    found, out = needles(values), []
    for f in sorted(p for p in Path(root).rglob('*') if p.is_file()):
        body = f.read_bytes()
        if any(n.encode() in body for n in found) or any(n in body.decode('utf-8', 'replace') for n in found) \
           or any(n.encode('utf-16-le') in body for n in found) or (f.suffix == '.parquet' and parquet_holds(f, found)):
            out.append(str(f.relative_to(root)))
    return out


def snapshot(root:Path) -> dict:
    "Every file under `root` but the lock files, with its size and modification time."
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in Path(root).rglob('*')
            if p.is_file() and p.parent.name != 'locks'}


def build(tmp:Path):
    "A workspace with 3 versions of `credit` (keyed by application_id), a dataset without the key, a prediction log, errors and labels."
    ws = open_workspace(tmp/'ws', load_settings(env={}))
    p = demo.generate(months=3, rows_per_month=500)
    frames = [demo.training_frame(p, k) for k in (1, 2, 3)]
    vs = [data.commit(ws, 'credit', f, f'months 1 to {k}', 'ana') for k, f in enumerate(frames, 1)]
    data.commit(ws, 'rates', pd.DataFrame({'month': ['2025-01', '2025-02'], 'rate': [0.04, 0.05]}), 'rates', 'ana')
    apps = p['applications'].set_index('application_id')
    log, start = PredictionLog(ws, flush_seconds=60), datetime.now(timezone.utc) - timedelta(minutes=5)
    meta = lambda rid, i: dict(request_id=rid, time=start + timedelta(seconds=i), model='credit-default', version=1,
                               variant='champion', source='test', latency_ms=1.0)
    out = lambda n: dict(label=np.zeros(n, 'int64'), probabilities=np.tile(np.array([[0.7, 0.3]], 'float32'), (n, 1)))
    served = list(apps.index[:40]) + list(apps.index[600:640])  # served one at a time, the id as request id (as the demo)
    for i, a in enumerate(served):
        if a in GONE: log.flush()  # a file of their row alone: its statistics (min = max) in Delta's log are their id
        log.add(meta(a, i), {c: np.array([apps.loc[a, c]]) for c in FEATURES}, 1, out(1))
        if a in GONE or i % 10 == 9: log.flush()
    batch = apps.iloc[590:690]  # a batch request whose rows carry the key among their inputs
    log.add(meta('batch-0001', 99), {'application_id': batch.index.to_numpy(), **{c: batch[c].to_numpy() for c in FEATURES}},
            len(batch), out(len(batch)))
    log.failed(meta(GONE[0], 100), f'cannot score application {GONE[0]}: income is missing')
    log.failed(meta('A0000001', 101), 'cannot score: model timed out')
    log.close()
    ws.delta('predictions').create_checkpoint()  # a checkpoint, whose statistics hold their request ids
    labels = p['labels'][p['labels'].application_id.isin(served)]
    ingest_labels(ws, labels[['application_id', 'defaulted']], key='application_id', label='defaulted', on='request_id', actor='ana')
    ws.append('labels', [dict(key=GONE[1], key_column='application_id', label=1.0, observed_at=start, ingested_at=start,
                              source='late file')])
    return ws, vs, frames


def table(ws, name) -> pd.DataFrame:
    return ws.sql(f'select * from {name}').df()


@pytest.fixture(scope='module')
def erased(tmp_path_factory):
    "The workspace before and after erasing the applicants `GONE`."
    tmp = tmp_path_factory.mktemp('erasure')
    ws, vs, frames = build(tmp)
    before = {n: table(ws, n) for n in ('predictions', 'serving_errors', 'labels')}
    held = holding(ws.root, GONE)  # where the search finds them before
    r = erasure.erase(ws, 'application_id', GONE, 'GDPR Art. 17 request 2025-031', actor='dpo')
    return ws, vs, frames, before, held, r, tmp


def test_the_search_finds_the_ids_before(erased):
    ws, vs, frames, before, held, r, tmp = erased
    kinds = {Path(f).parts[0] for f in held}
    assert {'datasets', 'tables'} <= kinds, held
    assert any('_delta_log' in f and f.endswith('.json') for f in held)  # statistics and request ids in the log
    assert any(f.startswith('tables/predictions/_delta_log/') and f.endswith('.checkpoint.parquet') for f in held), held
    assert any(f.startswith('tables/predictions/_delta_log/') and f.endswith('.json') for f in held), held


def test_no_file_holds_an_erased_id(erased):
    ws, vs, frames, before, held, r, tmp = erased
    assert holding(ws.root, GONE) == []
    anchor = audit.anchor_file(ws)  # outside the workspace: the audit chain's heads
    assert anchor.exists() and not any(n in anchor.read_text() for n in needles(GONE))
    assert not any(n in json.dumps(r) for n in needles(GONE))


def test_rows_erased_and_reported(erased):
    ws, vs, frames, before, held, r, tmp = erased
    gone = [int(f.application_id.isin(GONE).sum()) for f in frames]
    assert gone == [1, 2, 2]
    assert [(e['version'], e['rows_erased'], e['rows_left']) for e in r['versions']] == \
           [(v.id, g, v.rows - g) for v, g in zip(vs, gone)]
    p = before['predictions']
    in_batch = p.request_id.eq('batch-0001') & p.inputs.str.contains('|'.join(GONE))
    assert r['tables'] == {'predictions': int(p.request_id.isin(GONE).sum() + in_batch.sum()), 'serving_errors': 1,
                           'labels': int(before['labels'].key.isin(GONE).sum())}
    assert r['tables']['predictions'] == 3 and r['tables']['labels'] == 3
    assert r['rows'] == sum(gone) + sum(r['tables'].values()) and r['values'] == 2 and r['recovered'] == {}
    print(f"erasure took {r['seconds']} s")


def test_versions_keep_their_ids_and_lose_only_the_subjects_rows(erased):
    ws, vs, frames, before, held, r, tmp = erased
    for v, f in zip(vs, frames):
        assert data.resolve(ws, f'credit@{v.id}').id == v.id
        got = data.load(ws, f'credit@{v.short}')
        want = f[~f.application_id.isin(GONE)].reset_index(drop=True)
        assert got.application_id.tolist() == want.application_id.tolist() and len(got) < v.rows
        # every other row and value as committed: the content hash equals that of the original data less their rows
        assert data.dataset_id(data.load(ws, v.ref, 'arrow')) == data.dataset_id(data.read_source(want)) == r['versions'][vs.index(v)]['remaining']
    assert erasure.check(ws).set_index('ref').state.to_dict() == {**{v.ref: 'erased' for v in vs},
                                                                 data.resolve(ws, 'rates').ref: 'intact'}


def test_other_rows_of_the_tables_unchanged(erased):
    ws, vs, frames, before, held, r, tmp = erased
    p, now = before['predictions'], table(ws, 'predictions')
    theirs = p.request_id.isin(GONE) | p.inputs.str.contains('|'.join(GONE))
    cols = ['request_id', 'row', 'inputs', 'score']
    pd.testing.assert_frame_equal(now[cols].sort_values(['request_id', 'row']).reset_index(drop=True),
                                  p[~theirs][cols].sort_values(['request_id', 'row']).reset_index(drop=True))
    assert table(ws, 'serving_errors').request_id.tolist() == ['A0000001']
    l, lnow = before['labels'], table(ws, 'labels')
    assert sorted(lnow.key) == sorted(l.key[~l.key.isin(GONE)])
    # every file of a table keeps plain strings: a filtered query over old and rewritten files works
    assert ws.sql("select count(*) from labels where key >= 'A' and key_column = 'request_id'").fetchall()[0][0] == len(lnow)
    assert ws.sql("select count(*) from predictions where request_id >= 'A'").fetchall()[0][0] == len(now)


def test_tombstone_is_audited_and_names_no_one(erased):
    ws, vs, frames, before, held, r, tmp = erased
    assert audit.verify(ws).ok
    e = audit.log(ws, action='data.erase').iloc[0]
    assert (e.seq, e.actor, e.subject, e.reason) == (r['seq'], 'dpo', 'application_id', 'GDPR Art. 17 request 2025-031')
    after = json.loads(e.after)
    assert after['versions'] == r['versions'] and after['tables'] == r['tables'] and after['key'] == 'application_id'
    assert not any(n in e.after + e.reason + e.subject for n in needles(GONE))
    notes = erasure.erasures(ws, 'credit')
    assert notes.ref.tolist() == [v.ref for v in vs]
    day = e.time.strftime('%Y-%m-%d')
    assert notes.note.tolist() == [f'erased {n} rows on {day} (audit seq {e.seq})' for n in (1, 2, 2)]
    assert erasure.check(ws).note.tolist()[:3] == notes.note.tolist()


def test_erasing_again_is_a_recorded_no_op(erased):
    ws, vs, frames, before, held, r, tmp = erased
    files = {v.path: (ws.root/v.path).stat().st_mtime_ns for v in vs}
    again = erasure.erase(ws, 'application_id', GONE, 'GDPR Art. 17 request 2025-031, checked again', actor='dpo')
    assert (again['rows'], again['versions'], again['tables']) == (0, [], {'predictions': 0, 'serving_errors': 0, 'labels': 0})
    assert again['seq'] == r['seq'] + 1 and len(audit.log(ws, action='data.erase')) == 2
    assert {v.path: (ws.root/v.path).stat().st_mtime_ns for v in vs} == files
    assert audit.verify(ws).ok and erasure.check(ws).ok.all()
    assert erasure.erasures(ws, 'credit').seq.unique().tolist() == [r['seq']]  # the no-op rewrote no version
    assert holding(ws.root, GONE) == []


@pytest.fixture
def small(tmp_path):
    "A small workspace: 3 versions, a prediction log and labels."
    ws = open_workspace(tmp_path/'ws', load_settings(env={}))
    apps = pd.DataFrame({'application_id': [f'A{i:07d}' for i in range(1, 31)], 'income': np.arange(30.0)})
    vs = [data.commit(ws, 'credit', apps[:10 * k], f'{k}', 'ana') for k in (1, 2, 3)]
    log = PredictionLog(ws, flush_seconds=60)
    meta = lambda rid: dict(request_id=rid, time=datetime.now(timezone.utc), model='m', version=1, variant='champion',
                            source='test', latency_ms=1.0)
    for a in apps.application_id:
        log.add(meta(a), {'income': np.array([1.0])}, 1, dict(label=np.array([1]), probabilities=np.array([[0.5, 0.5]], 'float32')))
    log.close()
    assert ws.sql('select count(*) from predictions').fetchall()[0][0] == 30
    ingest_labels(ws, pd.DataFrame({'id': apps.application_id, 'y': 1}), key='id', label='y', on='request_id', actor='ana')
    return ws, vs


@pytest.mark.parametrize('args, says', [
    (('customer_id', ['C1'], 'request 1'), "no dataset has a column 'customer_id'"),
    (('', ['A0000001'], 'request 1'), 'key must name the column'),
    (('application_id', [], 'request 1'), 'there are no values to erase'),
    (('application_id', 'A0000001', 'request 1'), 'values must be a list'),
    (('application_id', ['A0000001', None], 'request 1'), 'empty or missing'),
    (('application_id', ['A0000001'], ' '), 'say why'),
    (('application_id', ['A0000001'], 'erase A0000001 please'), 'the reason names a value')])
def test_bad_input_says_what_to_do_and_writes_nothing(small, args, says):
    ws, vs = small
    was = snapshot(ws.root)
    with pytest.raises(WorkbenchError) as e: erasure.erase(ws, *args)
    assert says in str(e.value) and '\n' not in str(e.value)
    assert snapshot(ws.root) == was


def test_a_stopped_erasure_is_finished_and_recorded_by_the_next(small, monkeypatch):
    ws, vs = small
    gone, calls = ['A0000003', 'A0000015'], []
    real = erasure._replace
    def stop_second(*a):
        calls.append(a[1])
        if len(calls) == 2: raise KeyboardInterrupt  # stopped between two version files
        real(*a)
    monkeypatch.setattr(erasure, '_replace', stop_second)
    with pytest.raises(KeyboardInterrupt): erasure.erase(ws, 'application_id', gone, 'request 9')
    monkeypatch.undo()
    assert not list((ws.root/'datasets'/'credit').glob('.tmp-*'))  # no half-written file
    assert erasure.check(ws).state.tolist() == ['changed', 'intact', 'intact']  # rewritten, not yet recorded: said so
    real_record = audit.record
    monkeypatch.setattr(erasure.audit, 'record', lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt): erasure.erase(ws, 'application_id', gone, 'request 9')  # stopped before its record
    monkeypatch.setattr(erasure.audit, 'record', real_record)
    assert len(audit.log(ws, action='data.erase')) == 0
    r = erasure.erase(ws, 'application_id', gone, 'request 9')  # run again: finishes and records everything
    assert [(e['rows_erased'], e['rows_left']) for e in r['versions']] == [(1, 9), (2, 18), (2, 28)]
    assert r['tables'] == {'predictions': 2, 'labels': 2} and r['recovered'] == {'predictions': 2, 'labels': 2}
    assert erasure.check(ws).ok.all() and audit.verify(ws).ok
    assert holding(ws.root, gone) == []


def test_a_purge_that_stopped_is_finished_by_the_next_run(small, monkeypatch):
    ws, vs = small
    monkeypatch.setattr(erasure, 'purge_history', lambda ws, name: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt): erasure.erase(ws, 'application_id', ['A0000001'], 'request 10')
    monkeypatch.undo()
    assert holding(ws.root, ['A0000001']) != []  # recorded, but Delta's log still holds it (the first id: a file's minimum)
    again = erasure.erase(ws, 'application_id', ['A0000001'], 'request 10')
    assert again['rows'] == 0 and holding(ws.root, ['A0000001']) == []
    assert audit.verify(ws).ok


def test_appends_during_an_erasure_are_kept(small):
    import threading
    ws, vs = small
    n0, stop, added = ws.sql('select count(*) from predictions').fetchall()[0][0], threading.Event(), []
    def writer():
        i = 0
        while not stop.is_set() and i < 40:
            ws.append('predictions', [dict(request_id=f'w{i}', row=0, time=datetime.now(timezone.utc), model='m', version=1,
                                           variant='champion', source='test', inputs='{}', prediction='0', score=0.5,
                                           outputs='{}', latency_ms=1.0)])
            added.append(i); i += 1
    t = threading.Thread(target=writer); t.start()
    try: r = erasure.erase(ws, 'application_id', ['A0000020', 'A0000021'], 'request 11')
    finally: stop.set(); t.join()
    assert r['tables']['predictions'] == 2
    assert ws.sql('select count(*) from predictions').fetchall()[0][0] == n0 - 2 + len(added)
    assert holding(ws.root, ['A0000020', 'A0000021']) == []


def test_files_in_flight_are_waited_for(small, monkeypatch):
    "A subject's rows in a file no version references yet: committed while the erasure looks, they go too; never committed (a writer failed), the file goes once `ORPHAN_SECONDS` old."
    import time, uuid
    import pyarrow.compute as pc
    from deltalake.transaction import AddAction
    ws, vs = small
    rows, count = ws.delta('predictions').to_pyarrow_table(), lambda: ws.sql('select count(*) from predictions').fetchall()[0][0]
    def written(rid):
        f = ws.root/'tables'/'predictions'/f'part-00000-{uuid.uuid4()}-c000.zstd.parquet'
        pq.write_table(rows.filter(pc.equal(rows['request_id'], rid)), f)
        return f
    flight, left, n0 = written('A0000011'), written('A0000012'), count()  # a writer about to commit; one whose commit failed
    real, landed = erasure._unused, []
    def unused(ws_, name):
        found = real(ws_, name)
        if name == 'predictions' and not landed and any(p.endswith(flight.name) for p, _ in found):
            dt = ws.delta('predictions')  # its commit lands while the erasure waits
            dt.create_write_transaction([AddAction(flight.name, flight.stat().st_size, {}, int(time.time() * 1000), True,
                                                   json.dumps({'numRecords': 1}))], 'append', dt.schema())
            landed.append(flight.name)
        return found
    monkeypatch.setattr(erasure, '_unused', unused)
    monkeypatch.setattr(erasure, 'ORPHAN_SECONDS', 3)
    said = []
    r = erasure.erase(ws, 'application_id', ['A0000011', 'A0000012'], 'request 12', say=said.append)
    assert landed and r['tables']['predictions'] == 3  # A0000011 logged and in flight, A0000012 logged
    assert len(said) == 1 and said[0].startswith('waiting for 2 file(s) of predictions') and 'at most 3 s' in said[0], said
    assert r['seconds'] >= 3 and not left.exists() and not flight.exists()  # waited until the failed writer's file was old
    assert count() == n0 + 1 - 3 and holding(ws.root, ['A0000011', 'A0000012']) == []
    assert audit.verify(ws).ok and erasure.check(ws).ok.all()


def test_the_cli_erases_from_a_file_verifies_and_logs(tmp_path):
    "`workbench data erase KEY --values FILE --reason`, then `data verify` and `data log` say what was erased; bad input is one sentence."
    import subprocess, sys
    from conftest import clean_env
    ws, *_ = build(tmp_path)
    env = clean_env(WORKBENCH_HOME=str(ws.root), WORKBENCH_ACTOR='dpo')
    wb = lambda *a, **kw: subprocess.run([str(Path(sys.executable).parent/'workbench'), *map(str, a)], env=env, capture_output=True, text=True, timeout=300, **kw)
    (tmp_path/'ids.txt').write_text('\n'.join(GONE) + '\n')
    r = wb('data', 'erase', 'application_id', tmp_path/'ids.txt', '--reason', 'GDPR Art. 17 request 2026-014')
    assert r.returncode == 0 and 'erased' in r.stdout and 'predictions' in r.stdout, r.stderr
    verified = wb('data', 'verify', '--format', 'json')
    assert verified.returncode == 0 and {v['state'] for v in json.loads(verified.stdout)} == {'erased', 'intact'}
    log = json.loads(wb('data', 'log', 'credit', '--format', 'json').stdout)
    assert all(v['erased'].startswith('erased ') for v in log), log
    assert 'intact' in wb('audit', 'verify').stdout and not holding(ws.root, GONE)
    for args, says in [(['nope', tmp_path/'ids.txt', '--reason', 'x'], "no dataset has a column 'nope'"),
                       (['application_id', tmp_path/'ids.txt'], 'say why the rows are erased with --reason'),
                       (['application_id', tmp_path/'none.txt', '--reason', 'x'], 'cannot read the values from'),
                       (['application_id', '-', '--reason', 'x'], 'value')]:
        r = wb('data', 'erase', *args, input='')
        assert r.returncode == 1 and says in r.stderr and 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
    # a version file altered behind the workbench's back is named
    v = data.versions(ws, 'credit')[0]
    pq.write_table(pq.read_table(ws.root/v.path).slice(1), ws.root/v.path)
    r = wb('data', 'verify')
    assert r.returncode == 1 and v.ref in r.stderr and 'neither its id nor its latest erasure' in r.stderr, r.stderr


def test_erasing_from_the_demo_leaves_no_file_holding_them(demo_run, tmp_path):
    "The demo's whole workspace (executed notebooks, MLflow's artifacts and database, the canary's figures, the card) holds no erased id after `data erase`."
    import shutil, subprocess, sys
    from conftest import clean_env
    root = shutil.copytree(demo_run.ws, tmp_path/'ws')
    ws = open_workspace(root, load_settings(env={}))
    pick = lambda q: ws.sql(q).fetchall()[0][0]
    gone = ['A0000001',  # the first row of the training data
            pick("select min(key) from labels"),  # served, then labelled late
            pick("select max(request_id) from predictions where request_id like 'A%'")]  # of the last month: the canary's key too
    assert len(set(gone)) == 3 and all(g.startswith('A') for g in gone), gone
    held = holding(root, gone)
    assert {'datasets', 'tables'} <= {Path(f).parts[0] for f in held}, held
    env = clean_env(WORKBENCH_HOME=str(root), WORKBENCH_ACTOR='dpo')
    wb = lambda *a: subprocess.run([str(Path(sys.executable).parent/'workbench'), *map(str, a)], env=env,
                                   capture_output=True, text=True, timeout=600)  # it may wait for a file in flight
    (tmp_path/'ids.txt').write_text('\n'.join(gone) + '\n')
    r = wb('data', 'erase', 'application_id', tmp_path/'ids.txt', '--reason', 'GDPR Art. 17 request 2026-101')
    assert r.returncode == 0, r.stdout + r.stderr
    assert holding(root, gone) == []
    assert wb('audit', 'verify').returncode == 0 and wb('data', 'verify').returncode == 0
    after = json.loads(audit.log(ws, action='data.erase').iloc[0].after)
    assert after['tables']['predictions'] >= 1 and after['tables']['labels'] >= 1 and len(after['versions']) >= 3
    assert not any(n in json.dumps(after) for n in needles(gone))
    shown = wb('registry', 'show', 'credit-default@champion')  # the workspace still works: its champion, runs and lineage
    assert shown.returncode == 0 and 'credit-default' in shown.stdout, shown.stderr


def test_erasure_on_object_storage_reaches_every_object_and_every_machine(seaweedfs, tmp_path, monkeypatch):
    "On SeaweedFS: no object of the workspace holds an erased id, and another machine's copy of a version is fetched again."
    for k, v in seaweedfs.items(): monkeypatch.setenv(k, v)
    url = f"{seaweedfs['WORKBENCH_HOME']}/erasure-{tmp_path.name}"
    def machine(name):
        monkeypatch.setenv('XDG_STATE_HOME', str(tmp_path/name))
        (ini := tmp_path/name/'settings.ini').parent.mkdir()
        ini.write_text(f"[audit]\nanchor = {tmp_path/name/'anchors'}\n")
        return open_workspace(url, load_settings(ini, env={}))
    a, b = machine('a'), machine('b')
    apps = pd.DataFrame({'application_id': [f'A{i:07d}' for i in range(1, 41)], 'income': np.arange(40.0)})
    vs = [data.commit(a, 'credit', apps[:20 * k], f'{k}', 'ana') for k in (1, 2)]
    log = PredictionLog(a, flush_seconds=60)
    for rid in apps.application_id[:10]:
        log.add(dict(request_id=rid, time=datetime.now(timezone.utc), model='m', version=1, variant='champion', source='test',
                     latency_ms=1.0), {'income': np.array([1.0])}, 1,
                dict(label=np.array([1]), probabilities=np.array([[0.5, 0.5]], 'float32')))
    log.close()
    a.write_bytes('pipelines/run.ipynb', json.dumps({'cells': [{'outputs': ['A0000003 scored 0.7']}]}).encode())
    pq.write_table(pa.table({'application_id': ['A0000003', 'A0000004'], 'x': [1, 2]}), tmp_path/'online.parquet')
    a.write_bytes('online/applicant/1-x.parquet', (tmp_path/'online.parquet').read_bytes())
    copy = b.local_file(vs[1].path)  # machine b reads version 2 before the erasure: its own copy
    assert 'A0000003' in pq.read_table(copy).column('application_id').to_pylist()

    r = erasure.erase(a, 'application_id', ['A0000003'], 'GDPR Art. 17 request 2026-102', actor='dpo')
    assert [e['rows_erased'] for e in r['versions']] == [1, 1] and r['tables']['predictions'] == 1
    assert r['documents'] == {'online/applicant/1-x.parquet': 1, 'pipelines/run.ipynb': 1}
    fs, base = a.storage()
    from pyarrow.fs import FileSelector, FileType
    for i in fs.get_file_info(FileSelector(base, recursive=True)):  # every object, downloaded and searched
        if i.type == FileType.File:
            (dst := tmp_path/'objects'/i.path[len(base) + 1:]).parent.mkdir(parents=True, exist_ok=True)
            with fs.open_input_stream(i.path) as f: dst.write_bytes(f.read())
    assert (tmp_path/'objects'/vs[1].path).exists() and holding(tmp_path/'objects', ['A0000003']) == []
    assert holding(a.root, ['A0000003']) == []  # nor this machine's copies
    fresh = pq.read_table(b.local_file(vs[1].path)).column('application_id').to_pylist()  # b's copy, fetched again
    assert 'A0000003' not in fresh and len(fresh) == 39
    assert data.load(b, vs[1].ref).application_id.tolist() == fresh and erasure.check(b).ok.all() and audit.verify(a).ok
