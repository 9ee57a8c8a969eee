"Issue 7: the dashboard in a real headless Chromium (Debian's, driven by Playwright) on a seeded workspace."
import pytest
from conftest import ARTIFACTS, BIN, clean_env, free_port, started
from playwright.sync_api import expect


@pytest.fixture(scope='module')
def dashboard(demo_ws, tmp_path_factory):
    url = f'http://127.0.0.1:{free_port()}'
    with started([BIN/'workbench', '--workspace', demo_ws, 'dashboard', '--port', url.rsplit(':', 1)[1]], url + '/audit', timeout=50,
                 log=tmp_path_factory.mktemp('dashboard')/'dashboard.log', env=clean_env(WORKBENCH_ADMIN_TOKEN='let-me-in')):
        yield url


def visit(browser, url, text, shot, timeout=20_000):
    page = browser.new_page(viewport={'width': 1400, 'height': 1000})
    page.goto(url)
    page.get_by_text(text, exact=False).first.wait_for(timeout=timeout)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS/f'{shot}.png'), full_page=True)
    return page


def test_every_page_shows_real_content(browser, dashboard):
    for path, text in [('/experiments', 'logistic-'), ('/registry', 'credit-default/2: champion'), ('/drift', 'income'),
                       ('/serving', 'Traffic'), ('/data', 'credit@'), ('/audit', 'audit chain intact')]:
        page = visit(browser, dashboard + path, text, path.strip('/'))
        assert 'Traceback' not in page.content()
        if path == '/serving':  # the canary's decision, on its tab
            page.get_by_text('Canary', exact=True).first.click()
            page.get_by_text('canary.promote').first.wait_for(timeout=20_000)
            page.screenshot(path=str(ARTIFACTS/'serving-canary.png'), full_page=True)
        page.close()


def test_unknown_ids_give_a_message(browser, dashboard):
    page = visit(browser, dashboard + '/registry?version=credit-default/99', 'no model version', 'unknown-version')
    assert 'Traceback' not in page.content(); page.close()
    page = visit(browser, dashboard + '/experiments?runs=nope,nada', "no run 'nope'", 'unknown-runs')
    page.close()


def test_compare_two_runs_in_the_browser(browser, dashboard):
    page = visit(browser, dashboard + '/experiments', 'logistic-', 'experiments-before')
    rows = page.locator('.tabulator-row')
    ids = [rows.nth(i).locator('[tabulator-field=run_id]').inner_text() for i in (0, 1)]
    for i in (0, 1): rows.nth(i).locator('input[type=checkbox]').check()
    page.get_by_text('What differs').first.wait_for(timeout=20_000)
    for heading, exact in (('Metrics', True), ('Params against', False), ('Metric history', True)): page.get_by_text(heading, exact=exact).first.wait_for(timeout=20_000)
    page.screenshot(path=str(ARTIFACTS/'experiments-compared.png'), full_page=True)
    differs = page.locator('.tabulator').last.inner_text()
    assert all(i in differs for i in ids)
    page.close()


def test_bad_filter_gives_a_message(browser, dashboard):
    page = visit(browser, dashboard + '/experiments', 'logistic-', 'filter-before')
    box = page.get_by_placeholder("metrics.holdout_auc > 0.7")
    box.fill('metrics.auc >'); box.press('Enter')
    page.get_by_text("bad filter 'metrics.auc >'").first.wait_for(timeout=20_000)
    box.fill('metrics.nonsense > 0.5'); box.press('Enter')
    page.get_by_text("no run has metric 'nonsense'").first.wait_for(timeout=20_000)
    box.fill('metrics.holdout_auc > 0.99'); box.press('Enter')
    page.get_by_text('0 of 4 runs').first.wait_for(timeout=20_000)
    box.fill("attributes.run_name LIKE 'logistic%'"); box.press('Enter')
    page.get_by_text('2 of 4 runs').first.wait_for(timeout=20_000)
    expect(page.locator('.tabulator-row')).to_have_count(2, timeout=20_000)  # the table redraws after the count: wait for it
    page.screenshot(path=str(ARTIFACTS/'filter-messages.png'), full_page=True)
    assert 'Traceback' not in page.content(); page.close()


def test_drift_page_shows_the_injected_drift(browser, dashboard):
    page = visit(browser, dashboard + '/drift', 'Largest values', 'drift')
    top = page.locator('.tabulator').first.locator('.tabulator-row')
    assert {top.nth(i).locator('[tabulator-field=feature]').inner_text() for i in range(2)} <= {'income', 'product'}
    page.get_by_text('AUC by window: estimated from the scores').wait_for(timeout=20_000)  # issue 23: before the labels
    estimated = page.locator('.tabulator-row [tabulator-field=estimated_auc]')
    assert estimated.count() >= 3 and all(0.5 < float(estimated.nth(i).inner_text()) < 1 for i in range(3))
    box = page.locator('canvas').first.bounding_box()
    page.mouse.click(box['x'] + box['width'] / 2, box['y'] + box['height'] / 2)  # a cell of the heatmap
    page.get_by_text(' in window ').first.wait_for(timeout=20_000)
    page.screenshot(path=str(ARTIFACTS/'drift-cell.png'), full_page=True)
    page.close()


def test_widgets_show_what_the_dashboard_shows(demo_ws):
    from workbench import views, widgets
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    ws = open_workspace(demo_ws, load_settings(env={}))
    ids = views.runs(ws).run_id[:2].tolist()
    bars = widgets.compare_runs(ws, ids).children[2].outputs[0]['data']['application/vnd.plotly.v1+json']['data']
    want = views.comparison(ws, ids)['metrics']
    assert sorted(v for d in bars for v in d['y']) == sorted(want.value)
    reg = widgets.registry_view(ws)
    assert 'champion' in reg.children[0].value and reg.children[1].value == 'credit-default/2'
    assert 'credit-default/2' in reg.children[2].children[0].value
    drift = widgets.drift_view(ws, 'credit-default')
    heat = drift.children[0].outputs[0]['data']['application/vnd.plotly.v1+json']['data'][0]
    grid = views.drift_heatmap(ws, 'credit-default')
    assert heat['y'] == list(grid.index) and heat['x'] == list(grid.columns)
    assert 'psi' in drift.children[2].children[1].value


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
