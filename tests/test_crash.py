"A process killed mid-write leaves no partial or corrupt file: every batch is all there or not at all, and the workspace stays usable."
import os, random, signal, subprocess, sys, time
import pyarrow as pa, pyarrow.parquet as pq
import pytest
from conftest import clean_env
from workbench import audit, data

KILLS, ROWS, SEED = 8, 40_000, 20240611  # ROWS per appended batch (about 0.5 MB of Parquet)

WRITER = f'ROWS = {ROWS}\n' + '''
import sys
import numpy as np, pandas as pd, pyarrow as pa
from workbench import audit, data
from workbench.config import load_settings
from workbench.workspace import open_workspace
ws = open_workspace(sys.argv[1], load_settings(env={}), create=False)
first = int(sys.argv[2])  # batch ids of this run start here
rng = np.random.default_rng(first)
for b in range(first, first + 10**6):
    ws.append('big', pa.table({'batch': np.full(ROWS, b), 'row': np.arange(ROWS), 'x': rng.integers(0, 10**9, ROWS)}))
    print('ack', b, flush=True)  # the append returned: this batch must survive any kill from now on
    audit.record(ws, 'test.batch', f'b{b}')
    data.commit(ws, f'd{b % 3}', pd.DataFrame({'batch': b, 'row': np.arange(ROWS // 10), 'x': rng.integers(0, 10**9, ROWS // 10)}))
'''


def batches(ws):
    "{batch: (rows, distinct rows, sum of x (integers, so exact))}, reading every row of every data file the table references."
    return {b: r for b, *r in ws.sql('select batch, count(*), count(distinct row), sum(x) from big group by batch').fetchall()}


def check_versions(ws):
    "Every recorded version reads back whole, with its recorded rows and id; each history is still linear; how many there are."
    recorded = ws.sql('select path, rows, id from datasets').fetchall()
    for path, rows, vid in recorded:
        t = pq.read_table(pa.BufferReader(ws.read_bytes(path)))
        assert t.num_rows == rows and data.dataset_id(t) == vid, path
    for name in ('d0', 'd1', 'd2'):  # seq 1..M, each parent the previous version
        vs = data.versions(ws, name)
        assert [v.seq for v in vs] == list(range(1, len(vs) + 1)) and [v.parent for v in vs] == [None, *[v.id for v in vs]][:len(vs)]
    return len(recorded)


def check_datasets(ws):
    "`check_versions`, and in a folder: every visible file reads; leftovers are hidden and unreferenced."
    recorded = {path for path, in ws.sql('select path from datasets').fetchall()}
    files = [p for p in (ws.root/'datasets').rglob('*') if p.is_file()]
    leftovers = [p for p in files if p.name.startswith('.')]
    assert all(p.name.startswith('.tmp-') for p in leftovers), leftovers
    for p in files:
        if p not in leftovers: pq.read_table(p)  # raises on a partial or corrupt file
    assert not {str(p.relative_to(ws.root)) for p in leftovers} & recorded
    return check_versions(ws), len(leftovers)


def kill_repeatedly(ws, env, kills:int, check) -> set:
    "Start a writer on `ws` and SIGKILL it at a random moment, `kills` times; after each, every acked batch is there whole and `check(ws)` holds."
    ws.create_table('big', pa.schema([('batch', pa.int64()), ('row', pa.int64()), ('x', pa.int64())]))
    rng, acked, in_flight = random.Random(SEED), set(), set()
    for k in range(kills):
        first = k * 1000
        p = subprocess.Popen([sys.executable, '-c', WRITER, ws.uri or str(ws.root), str(first)], env=env, cwd=ws.root.parent,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = p.stdout.readline()  # wait until it is writing (the first append has returned)
        assert line == f'ack {first}\n', p.communicate()[1]
        time.sleep(rng.uniform(0.1, 1.5))
        os.kill(p.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=30)
        assert p.returncode == -signal.SIGKILL, err  # it was still running: no error made it stop early
        run = {first} | {int(l.split()[1]) for l in out.splitlines()}
        acked |= run
        in_flight.add(max(run) + 1)  # the only batch whose append may have committed without an ack

        got = batches(ws)
        assert all(n == d == ROWS for n, d, _ in got.values()), {b: r for b, r in got.items() if r[:2] != [ROWS, ROWS]}
        assert acked <= got.keys() <= acked | in_flight, (sorted(got.keys() - acked), sorted(acked - got.keys()))
        v = audit.verify(ws)
        assert v.ok, str(v)
        print(f"\nkill {k}: {len(run)} acked batches this run, {len(got.keys() - acked)} unacked batch(es) committed in all, "
              f"{v.events} audit events, dataset versions (and leftovers): {check(ws)}")
    return acked


def test_kill_mid_write(ws, env):
    kill_repeatedly(ws, env, KILLS, check_datasets)
    state = lambda: (batches(ws), audit.verify(ws), ws.sql('select name, seq, id from datasets order by all').fetchall())
    before = state()
    old = time.time() - 120  # the last kills' leftovers are seconds old; maintain waits until one is untouched for 60 s
    for p in (ws.root/'datasets').glob('*/.tmp-*'): os.utime(p, (old, old))
    removed = ws.maintain(retention_hours=0)
    after = state()
    check_datasets(ws)
    assert after[1].ok and after == before
    assert not list((ws.root/'datasets').glob('*/.tmp-*'))  # maintain cleared the leftovers of killed writers
    print(f"maintain removed {removed}")


def test_kill_mid_write_on_object_storage(seaweedfs, tmp_path):
    "The same kills with the workspace on the object store: its conditional writes keep every table and the audit chain whole."
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    env = clean_env(**seaweedfs | dict(WORKBENCH_HOME=f"{seaweedfs['WORKBENCH_HOME']}/crash"), XDG_STATE_HOME=str(tmp_path/'state'))
    with pytest.MonkeyPatch.context() as mp:
        for k in [*seaweedfs, 'XDG_STATE_HOME']: mp.setenv(k, env[k])
        ws = open_workspace(None, load_settings(env={}))
        acked = kill_repeatedly(ws, env, KILLS // 2, check_versions)
        assert len(acked) > KILLS // 2  # each writer got past its first batch
        before = (batches(ws), ws.sql('select name, seq, id from datasets order by all').fetchall())
        ws.maintain(retention_hours=0)
        assert (batches(ws), ws.sql('select name, seq, id from datasets order by all').fetchall()) == before and audit.verify(ws).ok


def test_kill_between_version_and_audit_event_heals_on_retry(ws, env):
    "A crash after the version's row but before its audit event: committing the same data again completes the record."
    child = '''
import os, signal, sys, pandas as pd
from workbench import audit, data
from workbench.config import load_settings
from workbench.workspace import open_workspace
ws = open_workspace(sys.argv[1], load_settings(env={}), create=False)
audit.record = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)  # die right after the datasets append
data.commit(ws, 'credit', pd.DataFrame({'a': [1, 2, 3]}), 'first')
'''
    import pandas as pd
    p = subprocess.run([sys.executable, '-c', child, str(ws.root)], env=env, capture_output=True, text=True)
    assert p.returncode == -signal.SIGKILL, p.stderr
    [v] = data.versions(ws, 'credit')
    assert audit.log(ws, action='dataset.commit').empty  # the crash window is real
    assert data.commit(ws, 'credit', pd.DataFrame({'a': [1, 2, 3]})).id == v.id
    log = audit.log(ws, action='dataset.commit')
    assert log.subject.tolist() == [v.ref] and log.reason.tolist() == ['first (recorded late: its commit stopped before its audit event)'] and audit.verify(ws).ok
    data.commit(ws, 'credit', pd.DataFrame({'a': [1, 2, 3]}))
    assert len(audit.log(ws, action='dataset.commit')) == 1  # and only once
