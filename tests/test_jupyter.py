"Issue 8: the JupyterLab extension and the Jupyter server extension, in a real JupyterLab and a real headless Chromium."
import json, os, re, secrets, subprocess, urllib.error, urllib.request
from pathlib import Path
import pytest
from conftest import ARTIFACTS, BIN, clean_env, free_port, started

FRONT_END = Path(__file__).parent.parent/'extensions'/'workbench_jupyterlab'


DRIFT = 'income drifted in window 2025-12 (PSI 0.41)'


@pytest.fixture(scope='module')
def lab(demo_ws, tmp_path_factory):
    "JupyterLab on the demo workspace, with an open drift alert about its champion and one about another version: (url, token)."
    from workbench import alerts, registry
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    ws = open_workspace(demo_ws, load_settings(env={}))
    alerts.send(ws, 'drift', registry.get(ws, 'credit-default@champion').ref, DRIFT)
    alerts.send(ws, 'drift', 'credit-default/99', 'about a version that is not the champion: not open')
    port, token, root = free_port(), secrets.token_hex(16), tmp_path_factory.mktemp('lab')
    env = clean_env(WORKBENCH_HOME=str(demo_ws), JUPYTERLAB_WORKSPACES_DIR=str(root/'.lab-workspaces'),
                    JUPYTERLAB_SETTINGS_DIR=str(root/'.lab-settings'))  # a fresh layout
    url = f'http://127.0.0.1:{port}'
    with started([BIN/'jupyter', 'lab', '--no-browser', '--allow-root', '--ip', '127.0.0.1', '--port', port, f'--IdentityProvider.token={token}',
                  f'--ServerApp.root_dir={root}'], f'{url}/api/status?token={token}', timeout=60, log=root/'lab.log', cwd=root, env=env):
        yield url, token


def get(url, token=None):
    "(status, body) of a GET, with Jupyter's token when given; redirects are not followed."
    class Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **kw): return None
    req = urllib.request.Request(url, headers={'Authorization': f'token {token}'} if token else {})
    try:
        with urllib.request.build_opener(Stay).open(req, timeout=120) as r: return r.status, r.read()
    except urllib.error.HTTPError as e: return e.code, e.read()


def test_both_extensions_are_installed_and_enabled():
    lab = subprocess.run([str(BIN/'jupyter'), 'labextension', 'list'], capture_output=True, text=True)
    line = next((l for l in (lab.stdout + lab.stderr).splitlines() if '@mlops-workbench/jupyterlab' in l), '')
    assert 'enabled' in line and 'OK' in line, lab.stdout + lab.stderr
    server = subprocess.run([str(BIN/'jupyter'), 'server', 'extension', 'list'], capture_output=True, text=True)
    out = server.stdout + server.stderr
    lines = [l for l in out.splitlines() if 'workbench.jupyter' in l]
    assert any('enabled' in l for l in lines) and any('OK' in l for l in lines), out  # enabled, and it imports


def test_summary_needs_jupyters_login(lab, demo_ws):
    from workbench import registry
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    url, token = lab
    status, body = get(f'{url}/workbench/api/summary')
    assert status == 403, (status, body[:200])
    status, body = get(f'{url}/workbench/api/summary', 'not-the-token')
    assert status == 403
    status, body = get(f'{url}/workbench/api/summary', token)
    assert status == 200
    s = json.loads(body)
    champion = registry.get(open_workspace(demo_ws, load_settings(env={})), 'credit-default@champion').version
    model = next(m for m in s['models'] if m['name'] == 'credit-default')
    assert model['champion'] == champion and 'champion' in next(v['aliases'] for v in model['versions'] if v['version'] == champion)
    assert any(r['run_name'].startswith('logistic-') for r in s['runs']) and s['open_alerts'] == len(s['alerts'])
    assert s['dashboard'] == 'workbench-dashboard/' and s['workspace'] == str(demo_ws)
    ref = f'credit-default/{champion}'  # open: the monitoring alerts about the champion (the demo's own, and DRIFT)
    from workbench.jupyter import ALERTS
    want = open_workspace(demo_ws, load_settings(env={})).sql(
        "select count(*) from audit where list_contains($kinds, action) and subject = $s", dict(s=ref, kinds=list(ALERTS))).fetchall()[0][0]
    assert s['open_alerts'] == len(s['alerts']) == want and DRIFT in {a['reason'] for a in s['alerts']}
    assert {a['subject'] for a in s['alerts']} == {ref}  # not the one about credit-default/99
    m = model['monitoring']  # the demo monitored version 1; a canary may have made version 2 champion since
    assert m['drift_checked'] == (champion == 1) and (m['estimate'] is not None) == (champion == 1), m
    if champion == 1: assert 0.6 < m['estimate']['auc'] < 0.9 and re.fullmatch(r'2025-\d\d', m['estimate']['window']), m  # a month of applications


def test_dashboards_are_behind_the_same_login(lab):
    url, token = lab
    status, _ = get(f'{url}/workbench-dashboard/audit')
    assert status in (302, 403)  # to the login page, or refused: never the page
    status, body = get(f'{url}/workbench-dashboard/audit', token)
    assert status == 200 and b'MLOps Workbench' in body


def test_front_end_unit_tests():
    jlpm = BIN/'jlpm'
    if not (FRONT_END/'node_modules').exists():
        if os.environ.get('CI'): pytest.fail(f'{FRONT_END}/node_modules is missing: the README install builds the front end')
        pytest.skip('the front end is not built here')
    r = subprocess.run([str(jlpm), 'test'], cwd=FRONT_END, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_sidebar_and_dashboard_tab_in_jupyterlab(lab, browser, demo_ws):
    url, token = lab
    page = browser.new_page(viewport={'width': 1500, 'height': 1000})
    page.goto(f'{url}/lab?token={token}')
    page.locator('#jp-main-dock-panel').wait_for(timeout=90_000)
    tab = page.locator('li[data-id="workbench-sidebar"]')
    tab.wait_for(timeout=60_000)
    if tab.get_attribute('aria-selected') != 'true': tab.click()  # open the panel, unless JupyterLab restored it open
    model = page.locator('.jp-workbench-model', has_text='credit-default')
    model.first.wait_for(timeout=60_000)
    assert 'champion' in model.first.inner_text()
    watch = model.first.locator('.jp-workbench-estimate').inner_text()  # what monitoring knows of the champion
    assert watch.startswith('estimated AUC 0.') or watch.startswith('never checked for drift'), watch
    page.locator('.jp-workbench-run').first.wait_for(timeout=30_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS/'jupyterlab-sidebar.png'))
    page.locator('.jp-workbench-alert', has_text='income drifted').first.wait_for(timeout=30_000)  # the open alert
    status = page.locator('.jp-workbench-status').first.inner_text()  # the status bar: the champion and the open alerts
    assert status.startswith('credit-default v') and ' alert' in status and ' 0 alerts' not in status, status
    cards = page.locator('.jp-LauncherCard[data-category="MLOps Workbench"]')
    cards.first.wait_for(timeout=60_000)  # the launcher draws after the sidebar on a loaded machine
    icons = [cards.nth(i).locator('svg').first.inner_html() for i in range(cards.count())]
    assert len(icons) == 6 and len(set(icons)) == 6, icons  # one icon a page: the cards tell their pages apart
    names = page.locator('.jp-workbench-run-name').all_inner_texts()  # whole names: never two alike "gradient_b…"
    assert all(not n.endswith('…') for n in names) and len(set(names)) == len(names), names
    page.locator('.jp-LauncherCard', has_text='Experiments').first.click()
    page.frame_locator('iframe').first.get_by_text('logistic-').first.wait_for(timeout=120_000)
    page.screenshot(path=str(ARTIFACTS/'jupyterlab-experiments.png'))
    runs = page.locator('.jp-workbench-run input[type=checkbox]')  # compare two runs ticked in the sidebar
    runs.nth(0).check(); runs.nth(1).check()
    page.locator('.jp-workbench-compare').first.click()
    page.frame_locator('iframe').last.get_by_text('Params and tags that differ').first.wait_for(timeout=120_000)
    page.screenshot(path=str(ARTIFACTS/'jupyterlab-compare.png'))
    page.close()
