"""Each dashboard page on a workspace with 10,000 runs and 1,000,000 logged predictions: seconds until its content shows.

Run: pytest tests/benchmarks/bench_dashboard.py -m benchmark -s -p no:cacheprovider
The workspace is the demo's (`workbench demo --months 6 --rows-per-month 1000 --drift-month 5`), with 10,000 more runs
bulk-inserted into its MLflow store in MLflow's own layout (as bench_tracking does) and the prediction log grown to
1,000,000 rows by appending copies of the logged rows with new request ids and times. Each page is opened in a new
browser context of headless Chromium (Debian's, driven by Playwright), so nothing is cached, and timed from navigation
until its real content is visible: the newest run's name, the champion's heading, the drift headline ('2 of 15 features
drifted since …') and chart, the serving chart, the audit headline ('… events, chain verified').
Each page is visited three times, round after round; the JSON line has every visit, the median per page and the
slowest visit. Target (issue 25): every page's median within 1 s, asserted. Beside them, in the same browser and
round after round, the floor: Panel pages with no workbench code (`panel_floor.py`: a line of text; the same and two
small Bokeh charts), timed the same way, and each page's median over the floor's. A second test opens JupyterLab as a new user, clicks
the launcher's Experiments card as soon as it shows and times the tab until the newest run shows, on the demo's
workspace (target 3 s, asserted) and on the 10,000 runs one. No competitor is named for this one: the figures are ours.
"""
import json, shutil, sqlite3, statistics, subprocess, time, uuid, random
from pathlib import Path
import pytest

pytestmark = pytest.mark.benchmark
from conftest import BIN, clean_env, free_port, started
RUNS, PREDICTIONS, ROUNDS, TARGET_S = 10_000, 1_000_000, 3, 1.0
# page -> (text of its real content, whether it has a chart to wait for as well)
PAGES = {'/experiments': (f'bench-{RUNS - 1}', False), '/registry': (': champion', False),  # the champion's heading, v1 or v2
         '/drift': ('features drifted since', True), '/serving': ('Traffic', True), '/data': ('credit@', False),
         '/audit': ('chain verified', False)}


def add_runs(db:Path, n:int, seed:int=0):
    "Bulk-insert `n` finished runs (20 params, 20 metrics) into the MLflow store `db`, in a new experiment."
    from mlflow.tracking import MlflowClient
    exp = int(MlflowClient(f'sqlite:///{db}').create_experiment(f'bench-{uuid.uuid4().hex[:6]}'))
    rng, t0, art = random.Random(seed), 1_750_000_000_000, (db.parent/'artifacts').as_uri()
    runs, tags, params, latest = [], [], [], []
    for i in range(n):
        rid, start = uuid.UUID(int=rng.getrandbits(128), version=4).hex, t0 + 1000 * i
        runs.append((rid, f'bench-{i}', 'UNKNOWN', '', '', 'bench', 'FINISHED', start, start + 900, '', 'active', f'{art}/{rid}/artifacts', exp))
        tags += [('mlflow.runName', f'bench-{i}', rid), ('workbench.dataset', 'credit@0123456789ab', rid)]
        params += [(f'param_{j}', str(rng.choice([0.01, 0.1, 1, 10, 'lbfgs'])), rid) for j in range(20)]
        latest += [(f'metric_{j}', rng.random(), start + 100, 0, 0, rid) for j in range(20)]
    con = sqlite3.connect(db)
    with con:
        con.executemany('insert into runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time, end_time, '
                        'source_version, lifecycle_stage, artifact_uri, experiment_id) values (?,?,?,?,?,?,?,?,?,?,?,?,?)', runs)
        con.executemany('insert into tags (key, value, run_uuid) values (?,?,?)', tags)
        con.executemany('insert into params (key, value, run_uuid) values (?,?,?)', params)
        con.executemany('insert into metrics (key, value, timestamp, run_uuid, step, is_nan) values (?,?,?,?,0,0)', [(k, v, t, r) for k, v, t, _, _, r in latest])
        con.executemany('insert into latest_metrics (key, value, timestamp, step, is_nan, run_uuid) values (?,?,?,?,?,?)', latest)
    con.close()


def grow_predictions(root:Path, rows:int):
    "Append copies of the logged predictions, with new request ids and later times, until the log holds `rows` rows."
    import pyarrow as pa, pyarrow.compute as pc
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    ws = open_workspace(root, load_settings(env={}))
    base = ws.sql('select * from predictions').to_arrow_table()
    have, k = base.num_rows, 0
    while have < rows:
        k += 1
        n = min(base.num_rows, rows - have)
        t = base.slice(0, n)
        t = t.set_column(t.schema.get_field_index('request_id'), 'request_id', pc.binary_join_element_wise(t['request_id'], pa.scalar(f'-{k}'), ''))
        t = t.set_column(t.schema.get_field_index('time'), 'time', pc.add(t['time'], pa.scalar(k * 60_000_000, pa.duration('us'))))
        ws.append('predictions', t); have += n
    ws.maintain('predictions')


@pytest.fixture(scope='module')
def big_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp('dash-bench')/'ws'
    env = clean_env(WORKBENCH_HOME=str(root))
    subprocess.run([str(BIN/'workbench'), 'demo', '--months', '6', '--rows-per-month', '1000', '--drift-month', '5'], env=env, check=True, capture_output=True)
    shutil.copytree(root, root.parent/'demo')  # as the demo left it, for the JupyterLab test
    add_runs(root/'mlflow.db', RUNS)
    grow_predictions(root, PREDICTIONS)
    return root


def load(b, url:str, text:str, chart:bool) -> tuple:
    "Seconds from navigating to `url` until `text` (and a chart's canvas, if `chart`) shows; whether it showed a traceback."
    page = b.new_page(viewport={'width': 1400, 'height': 1000})  # a new context: nothing cached
    t = time.perf_counter()
    page.goto(url)
    page.get_by_text(text).first.wait_for(timeout=60_000)
    if chart: page.locator('canvas').first.wait_for(timeout=60_000)
    s, failed = round(time.perf_counter() - t, 2), 'Traceback' in page.content()
    page.close()
    return s, failed


FLOOR = {'/text': ('floor reached', False), '/charts': ('floor reached', True)}


def test_every_page_within_a_second(big_ws):
    from playwright.sync_api import sync_playwright
    port, floor_port = free_port(), free_port()
    url, floor_url, seconds, floor, failed = f'http://127.0.0.1:{port}', f'http://127.0.0.1:{floor_port}', {}, {}, []
    with started([BIN/'workbench', '--workspace', big_ws, 'dashboard', '--port', port], url + '/audit', timeout=120,
                 log=big_ws.parent/'dashboard.log', env=clean_env()) as server, \
         started([BIN/'python', Path(__file__).parent/'panel_floor.py', floor_port], floor_url + '/text', timeout=60,
                 log=big_ws.parent/'floor.log'):
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=shutil.which('chromium') or '/usr/bin/chromium', args=['--no-sandbox'])
            for _ in range(ROUNDS):
                for path, (text, chart) in PAGES.items():
                    s, bad = load(b, url + path, text, chart)
                    seconds.setdefault(path, []).append(s)
                    if bad: failed.append(path)
                for path, (text, chart) in FLOOR.items():
                    floor.setdefault(path, []).append(load(b, floor_url + path, text, chart)[0])
            b.close()
        assert server.poll() is None, 'the dashboard died during the benchmark'
    assert not failed, f'pages showed a traceback: {failed}'
    assert set(seconds) == set(PAGES) and all(len(v) == ROUNDS for v in seconds.values()), seconds  # every page timed every round
    assert all(len(v) == ROUNDS for v in floor.values()) and all(s > 0 for v in floor.values() for s in v), floor
    median = {p: statistics.median(v) for p, v in seconds.items()}
    under = {p: statistics.median(v) for p, v in floor.items()}
    print(json.dumps({'benchmark': 'dashboard_pages', 'runs': RUNS, 'predictions': PREDICTIONS, 'seconds': seconds, 'median_s': median,
                      'slowest_median_s': max(median.values()), 'slowest_visit_s': max(max(v) for v in seconds.values()),
                      'panel_floor_s': floor, 'panel_floor_median_s': under,
                      'over_floor': {p: round(m / under['/charts' if PAGES[p][1] else '/text'], 2) for p, m in median.items()},
                      'target_s': TARGET_S, 'within_target': max(median.values()) <= TARGET_S}))
    slow = {p: m for p, m in median.items() if m > TARGET_S}
    assert not slow, f'median load above {TARGET_S:g} s at {RUNS:,} runs and {PREDICTIONS:,} predictions: {slow}'


def first_tab(ws:Path, tmp:Path) -> tuple:
    """JupyterLab opened on `ws` as a new user does: (seconds until its launcher shows, seconds from clicking its
    Experiments card until the newest run shows in the tab)."""
    import secrets
    from playwright.sync_api import sync_playwright
    port, token = free_port(), secrets.token_hex(16)
    url = f'http://127.0.0.1:{port}'
    tmp.mkdir(parents=True)
    env = clean_env(WORKBENCH_HOME=str(ws), JUPYTERLAB_WORKSPACES_DIR=str(tmp/'layouts'),
                    JUPYTERLAB_SETTINGS_DIR=str(tmp/'settings'))  # a fresh layout
    newest = subprocess.run([str(BIN/'workbench'), 'runs', 'list', '--format', 'json'], env=env, check=True,
                            capture_output=True, text=True).stdout
    newest = json.loads(newest)[0]['run_name']
    with started([BIN/'jupyter', 'lab', '--no-browser', '--allow-root', '--ip', '127.0.0.1', '--port', port,
                  f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={tmp}'],
                 f'{url}/api/status?token={token}', timeout=60, log=tmp/'lab.log', cwd=tmp, env=env):
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=shutil.which('chromium') or '/usr/bin/chromium', args=['--no-sandbox'])
            page = b.new_page(viewport={'width': 1500, 'height': 1000})
            t = time.perf_counter()
            page.goto(f'{url}/lab?token={token}')
            card = page.locator('.jp-LauncherCard', has_text='Experiments').first
            card.wait_for(timeout=90_000)
            lab_s, t = time.perf_counter() - t, time.perf_counter()
            card.click()  # at once, as soon as it shows
            page.frame_locator('iframe').first.get_by_text(newest).first.wait_for(timeout=120_000)
            tab_s = time.perf_counter() - t
            b.close()
    return round(lab_s, 2), round(tab_s, 2)


def test_first_jupyterlab_tab_within_3_s(big_ws, tmp_path):
    "The first dashboard tab of a JupyterLab just opened, on the demo's workspace (asserted) and on the 10,000 runs one."
    demo, big = first_tab(big_ws.parent/'demo', tmp_path/'demo'), first_tab(big_ws, tmp_path/'big')
    print(json.dumps({'benchmark': 'first_jupyterlab_tab', 'launcher_s': {'demo': demo[0], f'{RUNS}_runs': big[0]},
                      'first_tab_s': {'demo': demo[1], f'{RUNS}_runs': big[1]}, 'target_s': 3.0,
                      'within_target': demo[1] <= 3.0}))
    assert all(s > 0 for s in demo + big)
    assert demo[1] <= 3.0, f'the first dashboard tab took {demo[1]:.1f} s on the demo workspace (target 3 s)'
