"Several processes appending to and reading one workspace at once get no lock error and lose no row; concurrent audit appenders still form one valid chain."
import json, re, subprocess, sys
import pyarrow as pa
from workbench import audit, data

WRITERS, READERS, SECONDS, ROWS, BURST = 4, 2, 8.0, 10, 10  # ROWS per append; see WRITER for BURST

PRELUDE = '''
import json, sys, time
from workbench import audit, data
from workbench.config import load_settings
from workbench.workspace import open_workspace
ws = open_workspace(sys.argv[1], load_settings(env={}), create=False)
n, seconds = int(sys.argv[2]), float(sys.argv[3])
print('ready', flush=True); sys.stdin.readline()  # the barrier: everyone starts when the parent says go
stop = time.time() + seconds
'''

WRITER = f'ROWS, BURST = {ROWS}, {BURST}\n' + PRELUDE + '''
import pandas as pd
i = commits = 0
while time.time() < stop:
    ws.append('events', [dict(writer=n, i=i, row=r) for r in range(ROWS)])
    if i >= BURST:  # the first BURST appends race each other bare: the audit lock would otherwise space the writers out
        audit.record(ws, 'test.write', f'w{n}/{i}')
        if i % 3 == 0:
            data.commit(ws, 'shared', pd.DataFrame({'writer': [n], 'i': [i]}))
            commits += 1
    i += 1
print(json.dumps(dict(appends=i, commits=commits)))
'''

READER = PRELUDE + '''
last, checks = (0, 0, 0), 0
while time.time() < stop:
    now = ws.sql("select (select count(*) from events), (select count(*) from audit), (select count(*) from datasets)").fetchall()[0]
    assert all(a <= b for a, b in zip(last, now)), f"counts went back from {last} to {now}"
    v = audit.verify(ws)
    assert v.ok and v.events >= now[1], str(v)
    last, checks = now, checks + 1
    time.sleep(0.1)  # leave the 2 cores mostly to the writers
print(json.dumps(dict(checks=checks, last=last)))
'''


def retries(ws, name):
    "Commit retries delta-rs made on table `name` (conflicts it resolved), from its commit log."
    return sum(int(n) for f in (ws.table_path(name)/'_delta_log').glob('*.json') for n in re.findall(r'"num_retries":(\d+)', f.read_text()))


def run_together(ws, env, scripts):
    "Start every script as its own Python process, release them at once, and return their JSON reports."
    procs = [subprocess.Popen([sys.executable, '-c', s, str(ws.root), str(k), str(SECONDS)], env=env, cwd=ws.root.parent,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k, s in enumerate(scripts)]
    for p in procs: assert p.stdout.readline() == 'ready\n', p.communicate()[1]
    for p in procs: p.stdin.write('go\n'); p.stdin.flush()
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs): assert p.returncode == 0, f"a worker failed:\n{err}"
    return [json.loads(out.splitlines()[-1]) for out, _ in outs]


def test_parallel_writers_and_readers(ws, env, wb):
    ws.create_table('events', pa.schema([('writer', pa.int64()), ('i', pa.int64()), ('row', pa.int64())]))
    reports = run_together(ws, env, [WRITER] * WRITERS + [READER] * READERS)
    done, seen = reports[:WRITERS], reports[WRITERS:]
    appends, commits = sum(r['appends'] for r in done), sum(r['commits'] for r in done)
    audited = {(w, i) for w, rep in enumerate(done) for i in range(BURST, rep['appends'])}  # (writer, i) with an audit event
    assert all(r['appends'] >= BURST + 2 for r in done) and all(r['checks'] >= 3 for r in seen), reports  # they really overlapped (a loaded CI machine gave one writer 13)

    # every (writer, i, row) exactly once, nothing else
    got = ws.sql('select writer, i, row, count(*) from events group by all').fetchall()
    assert all(c == 1 for *_, c in got)
    assert {k[:3] for k in got} == {(w, i, r) for w, rep in enumerate(done) for i in range(rep['appends']) for r in range(ROWS)}

    # one audit chain holding every event, seq 1..N
    assert [s for s, in ws.sql('select seq from audit order by seq').fetchall()] == list(range(1, len(audited) + commits + 1))
    subjects = ws.sql("select subject from audit where action = 'test.write'").fetchall()
    assert sorted(s for s, in subjects) == sorted(f'w{w}/{i}' for w, i in audited)
    assert ws.sql("select count(*) from audit where action = 'dataset.commit'").fetchall()[0][0] == commits
    v = audit.verify(ws)
    assert v.ok and v.events == len(audited) + commits, str(v)
    assert 'intact' in wb('audit', 'verify').stdout  # the CLI, in yet another process; fails on a non-zero exit

    # 'shared' has a linear history: seq 1..M, each parent the previous version, every file loadable and distinct
    vs = data.versions(ws, 'shared')
    assert [v.seq for v in vs] == list(range(1, commits + 1))
    assert [v.parent for v in vs] == [None] + [v.id for v in vs[:-1]]
    frames = [data.load(ws, f'shared@{v.id}') for v in vs]
    assert all(len(f) == 1 for f in frames)
    assert {(int(f.writer[0]), int(f.i[0])) for f in frames} == {(w, i) for w, i in audited if i % 3 == 0}
    print(f"\n{appends} appends, {commits} dataset commits, reader checks {[r['checks'] for r in seen]}, "
          f"delta-rs commit retries {({t: retries(ws, t) for t in ('events', 'audit', 'datasets')})}")
