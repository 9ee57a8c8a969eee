"A workspace on S3-compatible object storage (a real SeaweedFS server): safe concurrent commits, DuckDB over every row."
import json, re, subprocess, sys, time
import pyarrow as pa
import pytest
from conftest import BIN, clean_env

WRITERS, APPENDS = 4, 100

WRITER = '''
import json, sys, time
from workbench.config import load_settings
from workbench.workspace import open_workspace
ws = open_workspace(None, load_settings(env={}), create=False)  # WORKBENCH_HOME=s3://...
n = int(sys.argv[1])
print('ready', flush=True); sys.stdin.readline()  # the barrier: everyone starts when the parent says go
start = time.time()
for i in range(''' + str(APPENDS) + '''): ws.append('events', [dict(writer=n, i=i)])
print(json.dumps(dict(seconds=time.time() - start)))
'''


@pytest.fixture
def s3_ws(seaweedfs, tmp_path, monkeypatch, request):
    "A fresh workspace under its own prefix of the session's bucket; its local state in tmp_path."
    for k, v in seaweedfs.items(): monkeypatch.setenv(k, v)
    monkeypatch.setenv('WORKBENCH_HOME', f"{seaweedfs['WORKBENCH_HOME']}/{request.node.name}")
    monkeypatch.setenv('XDG_STATE_HOME', str(tmp_path/'state'))
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    return open_workspace(None, load_settings(env={}))


def log_entries(ws, name:str) -> list:
    "The commit entries of table `name`'s Delta log, read from the store."
    fs, base = ws.storage()
    from pyarrow.fs import FileSelector
    files = sorted(i.path for i in fs.get_file_info(FileSelector(f'{base}/tables/{name}/_delta_log'))
                   if i.path.endswith('.json'))
    out = []
    for f in files:
        with fs.open_input_stream(f) as s: out += [json.loads(l) for l in s.read().decode().splitlines()]
    return [e['commitInfo'] for e in out if 'commitInfo' in e]


def test_concurrent_appends_on_object_storage(s3_ws):
    ws = s3_ws
    assert ws.uri.startswith('s3://') and not (ws.root/'tables'/'events').exists()
    ws.create_table('events', pa.schema([('writer', pa.int64()), ('i', pa.int64())]))
    env = clean_env(**{k: v for k, v in __import__('os').environ.items() if k.startswith(('AWS_', 'XDG_'))},
                    WORKBENCH_HOME=ws.uri)
    procs = [subprocess.Popen([sys.executable, '-c', WRITER, str(n)], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(WRITERS)]
    for p in procs: assert p.stdout.readline() == 'ready\n', p.communicate()[1]
    start = time.time()
    for p in procs: p.stdin.write('go\n'); p.stdin.flush()
    outs = [p.communicate(timeout=120) for p in procs]
    seconds = time.time() - start
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, f"a writer failed:\n{err}"
        assert not re.search('lock', err, re.I), err

    # every append committed once, and DuckDB, through ws.sql, counts every row
    writes = [c for c in log_entries(ws, 'events') if c.get('operation') == 'WRITE']
    assert len(writes) == WRITERS * APPENDS
    assert ws.sql('select count(*), count(distinct (writer, i)) from events').fetchall() == [(400, 400)]
    assert ws.sql('select writer, max(i) + 1 from events group by writer order by writer').fetchall() == \
        [(n, APPENDS) for n in range(WRITERS)]
    retries = sum(c.get('operationMetrics', {}).get('num_retries', 0) or 0 for c in writes)
    print(f"\n{WRITERS} writers x {APPENDS} appends on SeaweedFS in {seconds:.1f} s; "
          f"delta-rs commit retries (conflicts resolved): {retries}")


@pytest.mark.parametrize('where', ['gs://bucket/ws', 'https://example.com/ws', 's3://ab/ws'])
def test_a_url_is_never_a_folder(tmp_path, where):
    r = subprocess.run([str(BIN/'workbench'), 'status'], cwd=tmp_path, env=clean_env(WORKBENCH_HOME=where),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and 'Traceback' not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and ('URL' in r.stderr or 'bucket name' in r.stderr), r.stderr
    assert list(tmp_path.iterdir()) == []  # no folder named gs: or https:


@pytest.fixture(params=['local', 's3'])
def any_ws(request, tmp_path, monkeypatch):
    "The same workspace two ways: a local folder, and a prefix of the session's SeaweedFS bucket."
    monkeypatch.setenv('XDG_STATE_HOME', str(tmp_path/'state'))
    if request.param == 's3':
        store = request.getfixturevalue('seaweedfs')
        for k, v in store.items(): monkeypatch.setenv(k, v)
        where = f"{store['WORKBENCH_HOME']}/{request.node.name.replace('[', '-').rstrip(']')}"
    else: where = str(tmp_path/'ws')
    monkeypatch.setenv('WORKBENCH_HOME', where)
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    return open_workspace(None, load_settings(env={}))


OTHER_MACHINE = """
from workbench import audit, data
from workbench.config import load_settings
from workbench.workspace import open_workspace
ws = open_workspace(None, load_settings(env={}), create=False)
v = audit.verify(ws)
print(v.ok, v.events, data.load(ws, 'credit').income.max())
"""


def test_data_commit_and_audit(any_ws, tmp_path):
    import pandas as pd
    from workbench import audit, data
    ws = any_ws
    df = pd.DataFrame({'income': [1.5, 2.5, 3.5], 'city': ['a', 'b', 'a']})
    v1 = data.commit(ws, 'credit', df, 'first')
    v2 = data.commit(ws, 'credit', df.assign(income=df.income * 2), 'doubled')
    assert data.commit(ws, 'credit', df).id == v1.id  # the same data is the same version
    assert data.load(ws, 'credit~1').equals(df) and data.load(ws, 'credit@latest').income.tolist() == [3.0, 5.0, 7.0]
    assert data.diff(ws, 'credit~1', 'credit').b.id == v2.id
    assert sorted(ws.tables()) == ['audit', 'datasets']
    v = audit.verify(ws)
    assert v.ok and v.events == 2, str(v)
    if ws.uri:  # everything shared is on the store; this machine only keeps its locks and copies
        fs, base = ws.storage()
        from pyarrow.fs import FileType
        assert fs.get_file_info(f'{base}/{v2.path}').type == FileType.File
        assert not (ws.root/'tables').exists() or not any((ws.root/'tables').iterdir())
    # another machine (its own local state, no copies of the files) reads the same workspace
    env = clean_env(**{k: val for k, val in __import__('os').environ.items() if k.startswith(('AWS_', 'WORKBENCH_'))},
                    XDG_STATE_HOME=str(tmp_path/'other'))
    r = subprocess.run([sys.executable, '-c', OTHER_MACHINE], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.split() == ['True', '2', '7.0'], r.stdout + r.stderr

RECORDER = '''
import sys
import pandas as pd
from workbench import audit, data
from workbench.config import load_settings
from workbench.workspace import open_workspace
ws = open_workspace(None, load_settings(env={}), create=False)
print('ready', flush=True); sys.stdin.readline()
for i in range(int(sys.argv[1])):
    audit.record(ws, 'test.write', f'{sys.argv[2]}/{i}')
    if i % 3 == 0: data.commit(ws, 'shared', pd.DataFrame({'machine': [sys.argv[2]], 'i': [i]}))
'''


def test_two_machines_share_no_lock(s3_ws, tmp_path):
    "Writers on two machines share no lock: compare-and-swap commits keep the audit chain and a dataset's history linear."
    from workbench import audit, data
    ws, n = s3_ws, 12
    audit.record(ws, 'test.start', 'chain')
    base = {k: v for k, v in __import__('os').environ.items() if k.startswith(('AWS_', 'WORKBENCH_'))}
    procs = [subprocess.Popen([sys.executable, '-c', RECORDER, str(n), m], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env=clean_env(**base, XDG_STATE_HOME=str(tmp_path/m)))  # each its own locks
             for m in ('m1', 'm2')]
    for p in procs: assert p.stdout.readline() == 'ready\n', p.communicate()[1]
    for p in procs: p.stdin.write('go\n'); p.stdin.flush()
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    commits = 2 * len(range(0, n, 3))
    v = audit.verify(ws)
    assert v.ok and v.events == 1 + 2 * n + commits, str(v)
    assert ws.sql("select count(*) from audit where action = 'dataset.commit'").fetchall() == [(commits,)]
    vs = data.versions(ws, 'shared')
    assert [x.seq for x in vs] == list(range(1, commits + 1))
    assert [x.parent for x in vs] == [None] + [x.id for x in vs[:-1]]
    assert sorted((str(f.machine[0]), int(f.i[0])) for f in (data.load(ws, f'shared@{x.id}') for x in vs)) == \
        sorted((m, i) for m in ('m1', 'm2') for i in range(0, n, 3))
