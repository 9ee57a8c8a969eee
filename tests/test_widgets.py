"Issue 25: the notebook widgets show what the dashboard shows, readably, and render in exported HTML with no network."
import re, subprocess
from conftest import ARTIFACTS, BIN, clean_env


def _ws(demo_ws):
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    return open_workspace(demo_ws, load_settings(env={}))


def _texts(svg:str) -> list:
    "The text drawn in an SVG chart."
    return re.findall(r'>([^<>]+)</text>', svg)


def test_widgets_show_what_the_dashboard_shows(demo_ws):
    from workbench import views, widgets
    ws = _ws(demo_ws)
    runs = views.runs(ws)
    ids, names = runs.run_id[:2].tolist(), runs.run_name[:2].tolist()
    head, differs, _ = (c.value for c in widgets.compare_runs(ws, ids).children[:3])
    want = views.comparison(ws, ids)['metrics']
    drawn = _texts(head)
    assert set(want.key) <= set(drawn)  # a chart per metric, titled with it
    assert all(n in drawn for n in names) and not any(i in head for i in ids)  # run names in the legend, not ids
    assert all(widgets._num(v) in drawn for v in want.value)  # every run's value written on its bar
    assert not re.search(r'\de-1[0-9]', head + differs) and all(n in differs for n in names)  # no float noise

    reg = widgets.registry_view(ws)
    table, pick, detail = reg.children[0].value, reg.children[1], reg.children[2].value
    champ = views.models(ws)
    champ = champ[champ.aliases.str.contains('champion')].iloc[0]
    assert f'<b>credit-default/{champ.version}</b> is the champion since' in table
    newest = f"credit-default/{views.models(ws).version.max()}"  # the demo's optimised candidate
    assert pick.value == newest and f'<h4>{newest}</h4>' in detail
    assert 'NaN' not in table + detail and not re.search(r'>\d+\.0<', table + detail)  # versions whole, nothing as NaN

    drift = widgets.drift_view(ws, 'credit-default')
    heat, cell = drift.children[0].value, drift.children[2].value
    version = int(ws.sql("select max(version) from drift where model = 'credit-default'").fetchall()[0][0])
    assert views.drift_headline(ws, 'credit-default', version) in heat  # e.g. '2 of 15 features drifted since 2025-10: …'
    drawn = _texts(heat)
    assert set(views.drift_heatmap(ws, 'credit-default').index) <= set(drawn)  # every feature labelled, product too
    labels = views.drift_windows(ws, 'credit-default', version).label  # the windows by their dates, a long span on two lines
    assert all(any(t.startswith(l.split(' – ')[0]) for t in drawn) for l in labels), (list(labels), drawn)
    assert '0.2: threshold' in drawn and 'psi: 0.2 or more has drifted (outlined)' in drawn
    top = views.drift_cells(ws, 'credit-default', version).sort_values('value').iloc[-1]
    assert f'<h4>{top.feature} in {top.label}</h4>' in cell and 'population stability index' in cell  # the most drifted cell, opened


NOTEBOOK = """from workbench.config import load_settings
from workbench.workspace import open_workspace
from workbench import views, widgets
ws = open_workspace({ws!r}, load_settings(env={{}}))
ids = views.runs(ws).run_id[:2].tolist()
""", "widgets.compare_runs(ws, ids)", "widgets.registry_view(ws)", "widgets.drift_view(ws, 'credit-default')"


def test_widgets_render_in_exported_html_offline(demo_ws, browser, tmp_path):
    from workbench import views
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(NOTEBOOK[0].format(ws=str(demo_ws))),
                                         *map(nbformat.v4.new_code_cell, NOTEBOOK[1:])])
    nbformat.write(nb, tmp_path/'widgets.ipynb')
    r = subprocess.run([str(BIN/'jupyter'), 'nbconvert', '--to', 'html', '--execute', 'widgets.ipynb'], cwd=tmp_path,
                       env=clean_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    page = browser.new_page(viewport={'width': 1400, 'height': 1000})
    asked = []
    page.route('**/*', lambda route: route.continue_() if route.request.url.startswith('file:')
               else (asked.append(route.request.url), route.abort()))
    page.goto((tmp_path/'widgets.html').as_uri())
    page.wait_for_load_state('load')
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS/'widgets-offline.png'), full_page=True)
    assert any('cdn' in u or 'unpkg' in u for u in asked), asked  # the export did try the network for the live widgets
    charts = page.locator('svg[role=img]')
    assert charts.count() >= 3  # the metrics, the heatmap, the most drifted cell's bins
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box and box['width'] > 200 and box['height'] > 100, charts.nth(i).get_attribute('aria-label')
    ws = _ws(demo_ws)
    names = views.runs(ws).run_name[:2].tolist()
    for text in [*names, 'product', 'income', 'What differs', 'is the champion', 'features drifted since', 'Every statistic']:
        assert page.get_by_text(text).first.is_visible(), text
    assert page.locator('table.wb-table').count() >= 5
    page.close()
