"Issue 25: the Registry page and a model version's page, read as a risk officer reads them, in a real headless Chromium."
import re
from conftest import ARTIFACTS, champion, downloaded, no_serious_violations, visit


def _ws(demo_ws):
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    return open_workspace(demo_ws, load_settings(env={}))


def test_registry_page_opens_with_the_champion(browser, dashboard, demo_ws):
    from workbench import registry
    ws, now = _ws(demo_ws), champion(demo_ws)
    mv = registry.get(ws, f'credit-default/{now}')
    page = visit(browser, dashboard + '/registry', f'credit-default/{now}: champion since', 'registry-after-25')
    shows = lambda pattern: page.get_by_text(re.compile(pattern)).count()  # Panel draws in shadow roots: get_by_text looks inside
    assert 'Traceback' not in page.content()
    # the answer first: who is champion, since when, promoted and approved by whom
    assert shows(rf'^credit-default/{now}: champion since \d{{4}}-\d\d-\d\d \d\d:\d\d UTC, (promoted|restored) by \S+; '
                 r'approved by demo-reviewer \(signed\)\.$') >= 1
    # versions as whole numbers everywhere, the alias history included
    assert shows(rf'^credit-default/{now}$') >= 3 and shows(r'credit-default/\d+\.0\b') == 0
    # parity read the same way in the table and in the detail, never rounded to 0.0
    parity = re.escape(f'{mv.parity:.1e}' if mv.parity else '0')
    assert shows(rf'^{parity} \(passed\)$') >= 1 and shows(rf'max \|ONNX − sklearn\| {parity}: passed') >= 1
    # the run and the data are real links, relative like the navigation, and so are the graph's boxes
    assert page.locator(f'a[href="run?id={mv.run_id}"]').count() >= 2  # the table, the summary, the graph
    assert page.locator(f'a[href="data?dataset={mv.dataset}"]').count() >= 2
    graph = page.locator('svg', has=page.locator('title', has_text=f'Lineage of credit-default/{now}'))
    assert graph.locator('a').count() >= 3 and 'registered as' in graph.text_content()
    # each button names what it acts on; without the token none acts
    promote = page.get_by_role('button', name=f'Promote credit-default/{now}')
    assert promote.is_disabled() and page.get_by_role('button', name=f'Approve credit-default/{now}').is_disabled()
    assert page.get_by_role('button', name=re.compile(r'^Roll back credit-default')).count() == 1
    # the version's signature, with types; and its technical file (the demo wrote the champion's)
    page.get_by_text('Signature', exact=True).first.click()  # a tab
    page.get_by_text('debt_to_income', exact=True).first.wait_for(timeout=10_000)
    assert shows('^double$') >= 1
    versions = downloaded(page, 'Download versions.csv').splitlines()
    assert versions[0] == 'version,aliases,gates,parity,approvals,trained on,run,registered by,registered'
    assert len(versions) == 1 + len(registry.versions(ws, 'credit-default'))
    card = downloaded(page, 'Technical file (MD)')
    assert card.startswith(f'# Technical file: credit-default/{now}')
    page.screenshot(path=str(ARTIFACTS/'registry-signature.png'), full_page=True)
    no_serious_violations(page, 'registry')
    page.close()
    page = visit(browser, dashboard + '/registry?version=credit-default/99', 'no model version', 'unknown-version')
    assert 'Traceback' not in page.content()
    page.get_by_text("no model version 'credit-default/99' here; open one of: credit-default/3, credit-default/2, credit-default/1").wait_for(timeout=5_000)
    page.close()


def test_promote_through_the_ui(browser, dashboard, demo_ws):
    from workbench import registry
    ws = _ws(demo_ws)
    other = 1 if champion(demo_ws) == 2 else 2  # the version the canary did not leave as champion
    page = visit(browser, dashboard + f'/registry?version=credit-default/{other}', f'credit-default/{other}:', 'registry-before')
    promote = page.get_by_role('button', name=f'Promote credit-default/{other}')
    assert promote.is_disabled()  # no token, no actions
    page.get_by_placeholder('WORKBENCH_ADMIN_TOKEN').fill('wrong')
    page.get_by_text('That is not the admin token').first.wait_for(timeout=10_000)
    page.get_by_placeholder('WORKBENCH_ADMIN_TOKEN').fill('let-me-in')
    page.get_by_placeholder('recorded in the audit log').fill('carla')
    promote.click()
    page.get_by_text(f'promote credit-default/{other}: done').first.wait_for(timeout=20_000)
    page.get_by_text(f'credit-default/{other}: champion since').first.wait_for(timeout=20_000)  # the answer follows
    assert page.get_by_text('promoted by carla').count() >= 1
    page.get_by_role('button', name=re.compile(rf'^Roll back credit-default: champion {other} → ')).wait_for(timeout=10_000)
    page.screenshot(path=str(ARTIFACTS/'registry-promoted.png'), full_page=True)
    assert registry.get(ws, 'credit-default@champion').version == other
    no_serious_violations(page, 'registry after a promotion')
    page.close()
