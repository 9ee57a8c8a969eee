"Issue 25: the Serving and Data pages read without help, in a real headless Chromium, on the demo's workspace."
import csv, io, re
from conftest import ARTIFACTS, canary_promoted, downloaded, no_serious_violations, visit

SOURCES = """() => { const out = [];  // every chart's data and x range, as Bokeh holds them in the page
  for (const doc of window.Bokeh.documents) for (const m of doc.all_models) {
    const kind = m.type || m.constructor.name;
    if (kind == 'ColumnDataSource') {
      const d = m.data, get = k => d instanceof Map ? d.get(k) : d[k], cols = d instanceof Map ? [...d.keys()] : Object.keys(d);
      out.push({cols: cols, variant: cols.includes('variant') ? Array.from(get('variant')) : [],
                nan: cols.includes('requests_per_s') ? Array.from(get('requests_per_s')).filter(Number.isNaN).length : 0});
    }
    if (kind == 'Range1d') out.push({range: [m.start, m.end]});
  } return out; }"""


TEXT = """() => { const walk = n => {  // the page's text, inside Panel's shadow roots too
    if (['SCRIPT', 'STYLE'].includes(n.nodeName)) return '';
    let t = n.shadowRoot ? walk(n.shadowRoot) : '';
    for (const c of n.childNodes) t += c.nodeType == 3 ? c.textContent : walk(c);
    return t + ' '; };
  return walk(document.body); }"""


def rows(text:str) -> list: return list(csv.DictReader(io.StringIO(text)))


def test_serving_page(browser, dashboard, demo_ws):
    page = visit(browser, dashboard + '/serving', 'in the whole log', 'serving-traffic')
    said = page.locator('h3').first.inner_text()
    outcome = 'promoted' if canary_promoted(demo_ws) else 'rolled back'
    assert re.match(r'credit-default in the whole log \(\d{4}-\d\d-\d\d \d\d:\d\d to [\d: -]+ UTC\): champion v1 served ([\d,]+) '
                    r'requests, p99 [\d.]+ ms, no errors; canary v2 at 25% served [\d,]+ requests, p99 [\d.]+ ms, no errors, '
                    f'and was {outcome} ', said), said
    served = int(re.search(r'champion v1 served ([\d,]+)', said)[1].replace(',', ''))
    charts = page.evaluate(SOURCES)
    # the demo's traffic pauses between the champion's first requests and the canary's: the line breaks there
    assert any(c.get('nan') for c in charts), charts
    no_serious_violations(page, 'serving: traffic')

    page.get_by_text('Canary', exact=True).first.click()
    decisions = rows(downloaded(page, 'Download canary-decisions.csv'))
    assert [(d['action'], d['share']) for d in decisions][-1] == (f"canary.{'promote' if outcome == 'promoted' else 'rollback'}",
                                                                   '25% → 100%' if outcome == 'promoted' else '25% → 0%')
    page.screenshot(path=str(ARTIFACTS/'serving-canary.png'), full_page=True)
    no_serious_violations(page, 'serving: canary')

    page.get_by_text('Scores', exact=True).first.click()
    shares = rows(downloaded(page, 'Download scores.csv'))
    for v in ('champion v1', 'canary v2'):  # shares of each version's rows, whatever its volume
        assert abs(sum(float(r[f'{v}: % of its rows']) for r in shares) - 100) < 0.01
    page.screenshot(path=str(ARTIFACTS/'serving-scores.png'), full_page=True)

    page.get_by_text('Figures per step', exact=True).first.click()
    steps = rows(downloaded(page, 'Download serving-per-step.csv'))
    assert sum(int(r['requests']) for r in steps if r['variant'] == 'champion v1') == served  # the headline's figure
    assert {'time (UTC)', 'requests per second', 'errors (% of requests)', 'p99 (ms)', 'share of rows (%)'} <= set(steps[0])
    no_serious_violations(page, 'serving: figures per step')

    page.get_by_text('Traffic', exact=True).first.click()
    page.get_by_label('Time range').select_option('the last 30 days')  # the demo served its traffic minutes ago
    page.get_by_text('credit-default in the last 30 days').first.wait_for(timeout=20_000)
    assert f'champion v1 served {served:,} requests' in page.locator('h3').first.inner_text()
    page.get_by_label('Step').select_option('7 days')  # one point per version: the axis still spans weeks, not microseconds
    page.wait_for_function("""() => [...window.Bokeh.documents].some(d => [...d.all_models].some(m => (m.type || m.constructor.name) == 'Range1d' && m.end - m.start >= 7 * 86400e3))""",
        timeout=20_000)
    week = page.evaluate(SOURCES)
    colors = page.evaluate("""() => { const out = {};
      for (const doc of window.Bokeh.documents) for (const m of doc.all_models)
        if ((m.type || m.constructor.name) == 'GlyphRenderer' && m.glyph.line_color && m.data_source.data) {
          const d = m.data_source.data, v = d instanceof Map ? d.get('variant') : d['variant'];
          const c = m.glyph.line_color;
          if (v && v.length) (out[v[0]] = out[v[0]] || new Set()).add(typeof c == 'object' ? c.value : c); }
      return Object.fromEntries(Object.entries(out).map(([k, s]) => [k, [...s]])); }""")
    assert colors['champion v1'] == ['#0072B2'] and colors['canary v2'] == ['#E69F00'], colors  # at every step, the same colour
    assert any('range' in c and c['range'][1] - c['range'][0] >= 7 * 86400e3 for c in week)
    page.screenshot(path=str(ARTIFACTS/'serving-7-days.png'), full_page=True)
    page.close()


def test_data_page(browser, dashboard):
    page = visit(browser, dashboard + '/data', 'checks of suite credit', 'data')
    said = page.locator('h3').first.inner_text()
    assert re.fullmatch(r'credit@[0-9a-f]{12} passes all \d+ checks of suite credit; 7 versions of 3 datasets '
                        r'\(applications, credit, labels\)\.', said), said
    text = page.evaluate(TEXT)
    assert '4,000 → 6,000 rows (+2,000)' in text and '29,297' in text and 'e+0' not in text  # readable numbers
    assert "new value 'bnpl'" in text and page.locator('pre, .codehilite').count() == 0  # text, not a code block
    assert not re.search(r'[0-9a-f]{64}', text)  # short ids only
    checks = rows(downloaded(page, 'Download validation-runs.csv'))
    assert [(c['checks'], c['failed']) for c in checks] == [(checks[0]['checks'], '0')] * 2
    moved = rows(downloaded(page, 'Download diff-moved.csv'))
    assert ('credit_score', 'missing (% of rows)', '1.8', '17.5') in [(m['column'], m['statistic'], m['before'], m['after']) for m in moved]
    assert "product,new value 'bnpl',,,moved" in downloaded(page, 'Download diff-moved.csv')
    no_serious_violations(page, 'data')
    page.get_by_text('Every check, failures first', exact=True).first.click()
    every = rows(downloaded(page, 'Download validation-checks.csv'))
    assert len(every) == 2 * int(checks[0]['checks']) and {e['result'] for e in every} == {'pass'}
    page.screenshot(path=str(ARTIFACTS/'data-checks.png'), full_page=True)
    credit = [r['ref'] for r in rows(downloaded(page, 'Download datasets.csv')) if r['ref'].startswith('credit@')]  # newest first
    page.goto(dashboard + f'/data?dataset={credit[1]}')  # as the Registry's and the run page's links open it
    page.get_by_text('3,000 → 4,000 rows (+1,000)').first.wait_for(timeout=20_000)  # against its predecessor
    page.goto(dashboard + '/data?dataset=credit@nope')
    page.get_by_text("no dataset version 'credit@nope' here; open one of: ").first.wait_for(timeout=20_000)
    page.close()
