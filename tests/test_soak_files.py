"""Under steady appends, maintenance keeps a Delta table's data files and log bounded, and readers never notice.

The prediction log appends every FLUSH seconds (10 to 20 commits a second, as the machine allows: 25 s here are 5 to 10
minutes of a server at 53 commits a minute) with its own maintenance every 2 s and a 5 s retention, the production defaults (every 5 minutes,
30 minutes' retention) scaled down. Two readers count rows through `ws.sql` meanwhile, one of them holding its
snapshot for half the retention before it reads. The same number of commits without maintenance is the comparison.
"""
import json, threading, time
from datetime import datetime, timezone
import numpy as np, pandas as pd
from workbench import audit, data
from workbench.config import load_settings
from workbench.predictions import PredictionLog, to_table
from workbench.workspace import COMPACT_EVERY, open_workspace

SECONDS, FLUSH = 25, 0.04  # of steady load; between flushes
EVERY, RETENTION = 2.0, 5.0  # seconds between maintenances; seconds a replaced file or an old log entry is kept


def bounds(rate:float) -> tuple:
    "Most data files and log entries the table may hold at `rate` commits a second, with maintenance."
    # A replaced file waits RETENTION, then at most until the next maintenance ends (EVERY, and as long again for the
    # maintenance itself on a busy machine), so at most rate * (RETENTION + 2 * EVERY) wait; a reader sees at most
    # 2 * COMPACT_EVERY (a compaction every 50 commits, and maintenance's). The log keeps the entries of the last
    # RETENTION seconds before the newest checkpoint, and at most checkpoint_interval (50) after it, with a few
    # checkpoints.
    return rate * (RETENTION + 2 * EVERY) + 2 * COMPACT_EVERY, rate * RETENTION + 2 * 50 + 10


def settings(maintained:bool):
    minutes = lambda s: str(s / 60)
    extra = {'maintenance.every_minutes': minutes(EVERY), 'maintenance.file_retention_minutes': minutes(RETENTION),
             'maintenance.log_retention_minutes': minutes(RETENTION)} if maintained else {
             'maintenance.every_minutes': '0'}  # the server leaves it to cron: nothing runs for the 25 s
    return load_settings(env={}, overrides={'serving.flush_seconds': str(FLUSH)} | extra)


def request(i:int):
    "One scored request of one row, as the server buffers it."
    meta = dict(request_id=f'r{i}', time=datetime.now(timezone.utc), model='credit', version=1, variant='champion',
                source='online', latency_ms=0.3)
    p = (i % 100) / 100
    return meta, {'income': np.array([float(i)]), 'product': ['card']}, 1, {
        'label': np.array([int(p > .5)]), 'probabilities': np.array([[1 - p, p]])}


def counts(ws, name='predictions') -> tuple:
    "(data files, log entries) of table `name`: every Parquet file on disk, every commit and checkpoint in its log."
    p = ws.table_path(name)
    return len(list(p.glob('*.parquet'))), len(list((p/'_delta_log').glob('*.json')) +
                                              list((p/'_delta_log').glob('*.checkpoint.parquet')))


def reader(ws, added, seen:list, errors:list, stop, slow:bool):
    "Count rows until `stop`; a count must never fall, nor exceed what was added; `slow` holds its snapshot first."
    last = 0
    while not stop.is_set():
        try:
            if slow:
                con = ws.connect(['predictions'])  # the snapshot is fixed here
                time.sleep(RETENTION / 2)
                n, = con.sql('select count(*) from (select sum(score), max(inputs) from predictions group by '
                             'request_id)').fetchall()[0]  # reads every file's data, not only its footer
            else: n, = ws.sql('select count(*) from predictions').fetchall()[0]
        except Exception as e: errors.append(f"{type(e).__name__}: {e}"); continue
        if not last <= n <= added[0]: errors.append(f"count went from {last} to {n} with {added[0]} added")
        last = n; seen.append(n)


def test_maintenance_keeps_files_and_log_bounded_under_steady_appends(tmp_path):
    ws = open_workspace(tmp_path/'ws', settings(True))
    log = PredictionLog(ws)
    added, stop, errors, seen = [0], threading.Event(), [], {'quick': [], 'slow': []}
    readers = [threading.Thread(target=reader, args=(ws, added, seen[k], errors, stop, k == 'slow')) for k in seen]
    for t in readers: t.start()
    peak, start = (0, 0), time.monotonic()
    sampled = start
    while time.monotonic() - start < SECONDS:
        for _ in range(10): log.add(*request(added[0])); added[0] += 1
        time.sleep(0.01)
        if time.monotonic() - sampled >= 0.25:  # four samples a second
            now, sampled = counts(ws), time.monotonic()
            peak = (max(peak[0], now[0]), max(peak[1], now[1]))
    log.close(); stop.set()
    for t in readers: t.join()
    from deltalake import DeltaTable
    commits = DeltaTable(str(ws.table_path('predictions'))).version()
    final = counts(ws)
    total, ids = ws.sql('select count(*), count(distinct request_id) from predictions').fetchall()[0]

    # the same number of commits, of the same rows, without maintenance (the server's default before: none)
    bare = open_workspace(tmp_path/'bare', settings(False))
    rows = to_table([request(i) for i in range(added[0] // commits)])
    for _ in range(commits): bare.append('predictions', rows)
    unmaintained = counts(bare)

    print('\n' + json.dumps(dict(commits=commits, rows=added[0], seconds=SECONDS, maintenances=log.maintenances,
                                 bounds=[round(b) for b in bounds(commits / SECONDS)],
                                 reads={k: len(v) for k, v in seen.items()},
                                 maintained=dict(peak_files=peak[0], peak_log=peak[1], final_files=final[0],
                                                 final_log=final[1]),
                                 unmaintained=dict(files=unmaintained[0], log=unmaintained[1]))))
    assert not errors, errors[:5]
    assert (total, ids) == (added[0], added[0])  # no row lost, none twice
    assert commits > 150 and log.maintenances >= 5  # steady commits, maintained every EVERY s or so
    assert len(seen['quick']) > 20 and len(seen['slow']) >= 3
    files, entries = bounds(commits / SECONDS)
    assert peak[0] <= files and peak[1] <= entries, (peak, (files, entries))
    assert unmaintained[0] > max(commits, files) and unmaintained[1] > max(commits, entries)  # both grow with commits


def test_log_cleanup_keeps_audit_chain_and_dataset_versions(tmp_path):
    "Trimming the log to seconds loses nothing the workbench reads: the audit chain, its head, the dataset versions."
    (tmp_path/'settings.ini').write_text(f"[audit]\nanchor = {tmp_path/'anchors'}\n[maintenance]\n"
                                         "checkpoint_interval = 5\nfile_retention_minutes = 0.0167\n"
                                         "log_retention_minutes = 0.0167\n")  # one second
    ws = open_workspace(tmp_path/'ws', load_settings(tmp_path/'settings.ini', env={}))
    for i in range(3): data.commit(ws, 'credit', pd.DataFrame({'a': range(i + 3)}), f'v{i}')
    for i in range(30): audit.record(ws, 'test.event', f's{i}', after={'i': i})
    time.sleep(1.5)
    ws.maintain()
    audit.record(ws, 'test.event', 'after-maintenance')  # the head comes from the newest commit's metadata
    log = ws.table_path('audit')/'_delta_log'
    assert len(list(log.glob('*.json'))) < 10  # the log was trimmed
    v = audit.verify(ws)
    assert v.ok and v.events == 3 + 30 + 1, str(v)
    assert [len(data.load(ws, x.ref)) for x in data.versions(ws, 'credit')] == [3, 4, 5]


def test_appends_racing_maintenance_raise_nothing_and_write_once(tmp_path):
    "A writer's commit and a maintenance trimming the log at once: no append raises, every row is written once."
    (tmp_path/'settings.ini').write_text("[maintenance]\ncheckpoint_interval = 5\nfile_retention_minutes = 0.0167\n"
                                         "log_retention_minutes = 0.0167\n")  # a checkpoint every 5 commits; 1 s
    ws = open_workspace(tmp_path/'ws', load_settings(tmp_path/'settings.ini', env={}))
    ws.append('predictions', to_table([request(0)]))
    stop, failed, maintained = threading.Event(), [], [0]
    def maintain():
        while not stop.is_set():
            try: ws.maintain('predictions'); maintained[0] += 1
            except Exception: pass  # two trims of one log may collide; only the writer's errors count here
    t = threading.Thread(target=maintain); t.start()
    added, start = 1, time.monotonic()
    while time.monotonic() - start < 8:
        try: ws.append('predictions', to_table([request(added)]))
        except Exception as e: failed.append(f"{type(e).__name__}: {e}")
        added += 1
    stop.set(); t.join()
    total, ids = ws.sql('select count(*), count(distinct request_id) from predictions').fetchall()[0]
    assert maintained[0] > 10 and added > 100, (maintained, added)
    assert not failed, failed[:3]  # before: about one append in 30 raised, after its commit had landed
    assert total == ids == added - len(failed)
