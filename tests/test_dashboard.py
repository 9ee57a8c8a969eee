"Issue 7: the dashboard in a real headless Chromium (Debian's, driven by Playwright) on a seeded workspace."
import re
from conftest import ARTIFACTS, BIN, canary_promoted, champion, clean_env, downloaded, no_serious_violations, visit
from playwright.sync_api import expect


def test_every_page_shows_real_content(browser, dashboard, demo_ws):
    now = champion(demo_ws)
    for path, text in [('/experiments', 'logistic-'), ('/registry', f'credit-default/{now}: champion'), ('/drift', 'income'),
                       ('/serving', 'Traffic'), ('/data', 'credit@'), ('/audit', 'chain verified')]:
        page = visit(browser, dashboard + path, text, path.strip('/'))
        assert 'Traceback' not in page.content()
        if path == '/serving':  # the canary's decision, on its tab
            page.get_by_text('Canary', exact=True).first.click()
            page.get_by_text('canary.promote' if canary_promoted(demo_ws) else 'canary.rollback').first.wait_for(timeout=20_000)
            page.screenshot(path=str(ARTIFACTS/'serving-canary.png'), full_page=True)
        page.close()


def test_drift_page_opens_with_its_answer(browser, dashboard):
    page = visit(browser, dashboard + '/drift', 'features drifted since', 'drift-page', timeout=40_000)
    headline = page.get_by_text('features drifted since').first.inner_text()
    assert re.fullmatch(r'\d+ of 15 features drifted since .+: [a-z_, ]+', headline), headline
    assert {'income', 'product'} <= set(headline.split(': ')[-1].split(', ')), headline
    page.get_by_text('PSI (population stability index) says how far').first.wait_for()  # PSI in one line
    # the heatmap by keyboard: the window and the feature are picked in two boxes; the new category by its name
    page.locator('select:has(option[value="product"])').select_option('product')
    page.get_by_text('new: bnpl').first.wait_for(timeout=20_000)
    says = page.get_by_text(re.compile(r'^p-value (< 0\.0001|[\d.e-]+) (<|≥) 0\.01: (drifted|no drift)$')).first
    says.wait_for(timeout=20_000)  # the statistics in words
    # the estimate beside the realized AUC per window (issue 23), fairness in production, every table as CSV
    page.get_by_text('Performance by window').first.wait_for()
    auc = downloaded(page, 'Download auc-by-window.csv').splitlines()
    assert auc[0].startswith('window,label,rows,estimated_auc,lower,upper,alert,realized_auc') and len(auc) >= 4, auc
    assert all(0.5 < float(row.split(',')[3]) < 1 for row in auc[1:])
    page.get_by_text('Fairness in production').first.wait_for()
    assert 'approval_gap' in downloaded(page, 'Download fairness-in-production.csv')
    page.get_by_text('The heatmap as a table').first.click()
    grid = downloaded(page, 'Download psi-by-window.csv').splitlines()
    assert len(grid) == 16 and grid[0].startswith('feature,'), grid[:2]  # 15 features, a column per window
    page.get_by_text('The cell', exact=True).first.click()
    box = page.locator('canvas').first.bounding_box()  # a click on the heatmap opens that cell
    page.mouse.click(box['x'] + box['width'] / 2, box['y'] + box['height'] / 2)
    page.get_by_text('Every statistic').first.wait_for(timeout=20_000)
    page.screenshot(path=str(ARTIFACTS/'drift-cell.png'), full_page=True)
    no_serious_violations(page, 'drift')
    assert 'Traceback' not in page.content()
    page.close()


def test_drift_page_links_the_evidently_report(browser, dashboard, demo_ws):
    import subprocess, urllib.request
    r = subprocess.run([BIN/'workbench', '--workspace', demo_ws, 'monitor', 'report', 'credit-default/1'],
                       env=clean_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    page = visit(browser, dashboard + '/drift', "Evidently's reports", 'drift-report-link', timeout=40_000)
    link = page.locator('a[href^="reports/"]').first
    link.wait_for(timeout=20_000)
    with urllib.request.urlopen(f"{dashboard}/{link.get_attribute('href')}", timeout=30) as got:
        assert got.status == 200 and b'root_metric' in got.read()  # Evidently's page
    page.close()


def test_audit_page_reads_for_an_auditor(browser, dashboard):
    page = visit(browser, dashboard + '/audit', 'chain verified', 'audit-page')
    said = page.get_by_text('chain verified').first.inner_text()
    assert re.fullmatch(r'[\d,]+ events, chain verified; last change \d{4}-\d\d-\d\d \d\d:\d\d UTC: \S+ of \S+ by \S+', said), said
    total = int(said.split()[0].replace(',', ''))
    assert page.locator('th').all_inner_texts()[:7] == ['seq', 'time', 'actor', 'action', 'subject', 'reason', 'change']
    assert page.get_by_text(re.compile(r'^champion: none → 1')).count() >= 1  # before → after, not JSON
    page.locator('select:has(option[value="model.promote"])').select_option('model.promote')
    page.get_by_text(re.compile(rf'^\d+ of {total} events')).first.wait_for(timeout=20_000)
    assert set(page.locator('td:nth-child(4)').all_inner_texts()) == {'model.promote'}
    csv = downloaded(page, 'Download audit.csv').splitlines()
    assert csv[0] == 'seq,time,actor,action,subject,reason,change' and all(',model.promote,' in r for r in csv[1:] if r[:1].isdigit())
    page.locator('select:has(option[value="model.promote"])').select_option('all')
    page.get_by_text(f'{total} of {total} events').first.wait_for(timeout=20_000)
    page.get_by_placeholder('who, what, which model, why').fill('drifted in window')
    expect(page.locator('td:nth-child(4)').first).to_have_text('alert.drift', timeout=20_000)
    assert set(page.locator('td:nth-child(4)').all_inner_texts()) == {'alert.drift'}
    page.screenshot(path=str(ARTIFACTS/'audit-searched.png'), full_page=True)
    no_serious_violations(page, 'audit')
    page.close()


def test_dark_where_the_browser_prefers_it(browser, dashboard):
    background = lambda page: page.locator('td').first.evaluate('e => getComputedStyle(e).backgroundColor')  # the theme's
    page = browser.new_page(color_scheme='dark', viewport={'width': 1400, 'height': 1000})
    page.goto(dashboard + '/audit')  # the page reloads itself dark once the browser says what it prefers
    page.wait_for_url(re.compile(r'/audit\?theme=dark$'), timeout=30_000)
    page.get_by_text('chain verified').first.wait_for(timeout=20_000)
    assert background(page) == 'rgb(33, 37, 41)', background(page)  # Panel's dark theme
    no_serious_violations(page, 'audit, dark')
    assert page.locator('a:text("Drift")').get_attribute('href') == 'drift?theme=dark'  # the next page is dark at once
    page.goto(dashboard + '/drift?theme=dark')
    page.get_by_text('features drifted since').first.wait_for(timeout=40_000)
    page.screenshot(path=str(ARTIFACTS/'drift-dark.png'), full_page=True)
    no_serious_violations(page, 'drift, dark')
    page.goto(dashboard + '/audit?theme=blue')
    page.get_by_text("theme 'blue' is not one we have: use ?theme=light or ?theme=dark").first.wait_for(timeout=20_000)
    page.close()
    page = browser.new_page(color_scheme='light')
    page.goto(dashboard + '/audit')
    page.get_by_text('chain verified').first.wait_for(timeout=20_000)
    page.wait_for_timeout(1000)
    assert page.url.endswith('/audit') and background(page) == 'rgb(255, 255, 255)', (page.url, background(page))
