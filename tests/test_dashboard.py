"Issue 7: the dashboard in a real headless Chromium (Debian's, driven by Playwright) on a seeded workspace."
import os, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

BIN = Path(sys.executable).parent
CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
ARTIFACTS = Path(os.environ.get('WORKBENCH_ARTIFACTS', Path(__file__).parent/'artifacts'))


@pytest.fixture(scope='module')
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get('CI'): pytest.fail(f'no Chromium at {CHROMIUM}: apt-get install -y chromium')
        pytest.skip('no Chromium here (apt-get install -y chromium)')
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=['--no-sandbox'])
        yield b
        b.close()


@pytest.fixture(scope='module')
def demo_ws(tmp_path_factory):
    "The `workbench demo` workspace (smaller): runs, a champion with its lineage, served traffic, drift."
    root = tmp_path_factory.mktemp('dash')/'ws'
    env = {k: v for k, v in os.environ.items() if not k.startswith('WORKBENCH_')} | {'WORKBENCH_HOME': str(root)}
    subprocess.run([str(BIN/'workbench'), 'demo', '--months', '6', '--rows-per-month', '1000', '--drift-month', '5'], env=env, check=True, capture_output=True)
    return root


@pytest.fixture(scope='module')
def dashboard(demo_ws):
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith('WORKBENCH_')} | {'WORKBENCH_ADMIN_TOKEN': 'let-me-in'}
    p = subprocess.Popen([str(BIN/'workbench'), '--workspace', str(demo_ws), 'dashboard', '--port', str(port)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f'http://127.0.0.1:{port}'
    for _ in range(200):
        try: urllib.request.urlopen(url + '/audit', timeout=2); break
        except Exception: time.sleep(0.25)
        assert p.poll() is None, p.stdout.read()
    yield url
    p.terminate(); p.wait(30)


def visit(browser, url, text, shot, timeout=20_000):
    page = browser.new_page(viewport={'width': 1400, 'height': 1000})
    page.goto(url)
    page.get_by_text(text, exact=False).first.wait_for(timeout=timeout)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS/f'{shot}.png'), full_page=True)
    return page


def test_every_page_shows_real_content(browser, dashboard):
    for path, text in [('/experiments', 'logistic-'), ('/registry', 'credit-default/2: champion'), ('/drift', 'income'),
                       ('/serving', 'requests'), ('/data', 'credit@'), ('/audit', 'audit chain intact')]:
        page = visit(browser, dashboard + path, text, path.strip('/'))
        assert 'Traceback' not in page.content()
        page.close()


def test_unknown_ids_give_a_message(browser, dashboard):
    page = visit(browser, dashboard + '/registry?version=credit-default/99', 'no model version', 'unknown-version')
    assert 'Traceback' not in page.content(); page.close()
    page = visit(browser, dashboard + '/experiments?runs=nope,nada', "no run 'nope'", 'unknown-runs')
    page.close()


def test_compare_two_runs_in_the_browser(browser, dashboard):
    page = visit(browser, dashboard + '/experiments', 'logistic-', 'experiments-before')
    boxes = page.locator('.tabulator-row input[type=checkbox]')
    boxes.nth(0).check(); boxes.nth(1).check()
    page.get_by_text('What differs').first.wait_for(timeout=20_000)
    page.screenshot(path=str(ARTIFACTS/'experiments-compared.png'), full_page=True)
    page.close()


def test_promote_through_the_ui(browser, dashboard, demo_ws):
    from workbench import registry
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    ws = open_workspace(demo_ws, load_settings(env={}))
    page = visit(browser, dashboard + '/registry?version=credit-default/1', 'credit-default/1:', 'registry-before')
    assert page.get_by_role('button', name='Promote').is_disabled()  # no token, no actions
    page.get_by_placeholder('WORKBENCH_ADMIN_TOKEN').fill('wrong')
    page.get_by_text('That is not the admin token').first.wait_for(timeout=10_000)
    page.get_by_placeholder('WORKBENCH_ADMIN_TOKEN').fill('let-me-in')
    page.get_by_placeholder('recorded in the audit log').fill('carla')
    page.get_by_role('button', name='Promote').click()
    page.get_by_text('promote credit-default/1: done').first.wait_for(timeout=20_000)
    page.screenshot(path=str(ARTIFACTS/'registry-promoted.png'), full_page=True)
    assert registry.get(ws, 'credit-default@champion').version == 1
    page.close()
