"Issue 25: the Experiments page and a run's page, read in a real headless Chromium as a stakeholder would."
import csv, io, re
from conftest import ARTIFACTS, downloaded, no_serious_violations, visit
from urllib.parse import unquote
from playwright.sync_api import expect


def _runs(demo_ws):
    "The demo's runs (newest first) and its champion's run id."
    from workbench import registry, views
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    ws = open_workspace(demo_ws, load_settings(env={}))
    return views.runs(ws), registry.get(ws, 'credit-default@champion')


def test_experiments_page_lists_filters_and_exports(browser, dashboard, demo_ws):
    runs, _ = _runs(demo_ws)
    page = visit(browser, dashboard + '/experiments', 'runs in 1 experiment', 'experiments-after-25')
    headline = page.get_by_text('runs in 1 experiment').first.inner_text()
    assert re.fullmatch(rf'{len(runs)} runs in 1 experiment; the best holdout_auc is 0\.\d{{3,4}}, by [\w/.-]+', headline), headline
    table = page.locator('table').first
    heads = table.locator('th').all_inner_texts()
    assert heads[:5] == ['run', 'experiment', 'status', 'started', 'dataset'] and 'holdout_auc' in heads, heads  # whole names
    assert table.bounding_box()['x'] + table.bounding_box()['width'] <= 1400, 'columns run off the screen'
    link = table.locator('a', has_text=runs.run_name[0]).first
    assert link.get_attribute('href') == f'run?id={runs.run_id[0]}'
    no_serious_violations(page, 'experiments')
    rows = list(csv.reader(io.StringIO(downloaded(page, 'Download runs.csv'))))
    assert len(rows) == len(runs) + 1 and {'run_name', 'metrics.holdout_auc', 'params.model'} <= set(rows[0]), rows[0]
    box = page.get_by_placeholder('metrics.holdout_auc > 0.7')
    box.fill(box.get_attribute('placeholder')); box.press('Enter')  # the example works on the demo
    page.get_by_text(re.compile(rf'^[1-9] of {len(runs)} runs$')).first.wait_for(timeout=20_000)
    box.fill('metrics.auc >'); box.press('Enter')
    page.get_by_text("bad filter 'metrics.auc >'").first.wait_for(timeout=20_000)
    expect(table.locator('tbody tr')).to_have_count(0, timeout=20_000)  # no stale rows under the error
    box.fill('metrics.nonsense > 0.5'); box.press('Enter')
    page.get_by_text("no run has metric 'nonsense'").first.wait_for(timeout=20_000)
    page.screenshot(path=str(ARTIFACTS/'filter-messages.png'), full_page=True)
    box.fill("attributes.run_name LIKE 'logistic%'"); box.press('Enter')
    page.get_by_text(re.compile(rf'^2 of {len(runs)} runs')).first.wait_for(timeout=20_000)
    expect(table.locator('tbody tr')).to_have_count(2, timeout=20_000)
    assert 'Traceback' not in page.content(); page.close()


def test_compare_two_runs_opened_by_url(browser, dashboard, demo_ws):
    runs, _ = _runs(demo_ws)
    (a, b), (na, nb) = runs.run_id[:2], runs.run_name[:2]
    page = visit(browser, dashboard + f'/experiments?runs={a},{b}', 'is best', 'experiments-compared-after-25')
    for name in (na, nb): expect(page.get_by_label(name, exact=True)).to_be_checked()  # the address, ticked
    verdict = page.get_by_text('is best').first.inner_text()
    box = page.locator('select:has(option[value="holdout_brier"])').first  # the metric compared on
    metric = box.input_value()  # the box and what is compared agree
    assert verdict.startswith(f'On {metric} (higher is better) ') and na in verdict and nb in verdict, (metric, verdict)
    side = page.locator('table', has=page.locator('th', has_text=f'{nb} − {na}')).first
    assert side.locator('th').all_inner_texts() == ['metric', na, nb, f'{nb} − {na}']  # run names, not ids
    cells = side.locator('td').all_inner_texts()
    digits = lambda c: len(re.sub(r'^[+-]?0*\.?0*|e[+-]\d+$|[.,]', '', c))  # significant digits shown
    numbers = [c for i, c in enumerate(cells) if i % 4]
    assert numbers and all(digits(c) <= 4 for c in numbers), numbers  # no float noise: 4 significant digits at most
    for heading in ('Metrics, each on its own axis', 'Params and tags that differ'): page.get_by_text(heading).first.wait_for()
    no_serious_violations(page, 'comparison')
    rows = list(csv.reader(io.StringIO(downloaded(page, 'Download comparison.csv'))))
    assert rows[0] == ['kind', 'key', na, nb, f'{nb} − {na}'] and any(r[:2] == ['metric', 'holdout_auc'] for r in rows), rows[:3]
    page.get_by_label(runs.run_name[2], exact=True).check()  # a third run: the address follows
    page.wait_for_url(lambda url: unquote(url).endswith(f'?runs={a},{b},{runs.run_id[2]}'), timeout=20_000)
    page.close()
    page = visit(browser, dashboard + '/experiments?runs=nope,nada', "no run 'nope'", 'unknown-runs')
    assert 'Traceback' not in page.content(); page.close()


def test_run_page_renders_its_artifacts(browser, dashboard, demo_ws):
    import onnx
    _, mv = _runs(demo_ws)
    page = visit(browser, dashboard + f'/run?id={mv.run_id}', 'registered as', 'run-page-25')
    said = page.get_by_text('registered as').first
    assert said.locator('a', has_text=mv.ref).get_attribute('href') == f'registry?version={mv.ref}'
    assert said.locator('a', has_text=mv.dataset).get_attribute('href').startswith('data?dataset=credit')
    page.get_by_text('holdout_auc', exact=True).first.wait_for()
    no_serious_violations(page, 'run page')
    page.get_by_text('Gate report', exact=True).first.click()
    page.get_by_text(re.compile(r'^Gates passed: \d of \d passed$')).first.wait_for(timeout=20_000)
    page.get_by_text('Model (ONNX)', exact=True).first.click()
    page.get_by_text(re.compile(r'^model\.onnx, [\d.]+ kB: 14 inputs, 2 outputs')).first.wait_for(timeout=20_000)
    with page.expect_download(timeout=20_000) as d: page.get_by_text('Download model.onnx', exact=True).first.click()
    model = onnx.load_from_string(open(d.value.path(), 'rb').read())
    assert 'income' in [i.name for i in model.graph.input]
    page.get_by_text('Notebooks', exact=True).first.click()
    notebook = page.frame_locator('iframe').first
    notebook.get_by_text('Hold a trained candidate to the quality gates').first.wait_for(timeout=30_000)  # executed, rendered, its plots inline
    assert notebook.locator('img').count() >= 1
    page.screenshot(path=str(ARTIFACTS/'run-page-notebook-25.png'), full_page=True)
    page.get_by_text('Artifacts', exact=True).first.click()
    page.get_by_text('gate_report.json').first.wait_for(timeout=20_000)
    assert 'gate report' in downloaded(page, 'Download artifacts.csv')
    page.close()
