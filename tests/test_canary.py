"Issue 5: a canary on a running server rolls a bad challenger back and promotes a good one, by itself; the deploy pipeline does the same end to end."
import re, time
from pathlib import Path
import numpy as np, pytest
from hypothesis import given, settings as hsettings, strategies as st
from sklearn.linear_model import LogisticRegression
from conftest import BIN, approve, clean_env, free_port, started
from test_registry import CAT, NUM, candidate
from workbench import audit, canary, data, demo, pipelines, registry, traffic
from workbench.config import load_settings
from workbench.workspace import open_workspace

# a quick canary: judged and promoted after 300 requests (fewer make the divergence mostly sampling noise); the registry is followed every half second
CANARY = {'canary.promote_after': '300', 'canary.min_requests': '300', 'serving.reload_seconds': '0.5', 'canary.share': '0.5'}


@pytest.fixture(scope='module')
def lifecycle(tmp_path_factory):
    # this team's gates look at ranking, not fairness, so a miscalibrated model can pass them: the canary catches it
    lenient = {'gates.max_fairness_gap': '1', 'gates.max_equal_opportunity_gap': '1'}
    ws = open_workspace(tmp_path_factory.mktemp('canary')/'ws', load_settings(env={}, overrides=CANARY | lenient))
    credit = data.commit(ws, 'credit', demo.training_frame(demo.generate(months=4, rows_per_month=800), 4), 'four months', 'ana')
    champion, _ = candidate(ws, credit, LogisticRegression(max_iter=500), NUM + CAT)
    approve(ws, champion.ref, 'bea'); registry.promote(ws, champion.ref, 'bea', 'first champion')
    return ws, credit


@pytest.fixture
def server(lifecycle, tmp_path):
    ws, _ = lifecycle
    port = free_port()
    sets = [a for k, v in CANARY.items() for a in ('--set', f'{k}={v}')]
    url = f'http://127.0.0.1:{port}'
    with started([BIN/'workbench', '--workspace', ws.root, *sets, 'serve', 'credit-default@champion', '--canary', 'credit-default@challenger:50',
                  '--port', port], url + '/health', log=tmp_path/'server.log', env=clean_env()):
        yield url


def status(url): return traffic.Client(url).request('GET', '/status')[2]


def wait_for(cond, what, timeout=20):
    t = time.time()
    while not cond():
        assert time.time() - t < timeout, f'timed out waiting for {what}'
        time.sleep(0.1)


def run_canary(ws, url, credit, version):
    "Send credit rows until the server has decided on the challenger; returns the tally of statuses and variants."
    wait_for(lambda: (status(url)['challenger'] or {}).get('version') == version, f'the server to pick up challenger {version}')
    rows = data.load(ws, credit.ref)
    return traffic.send(url, rows[NUM + CAT], rows.application_id, until=lambda t: status(url)['challenger'] is None, check_every=50)


def test_bad_challenger_is_rolled_back_and_good_one_promoted(lifecycle, server):
    ws, credit = lifecycle
    # over-weighting the defaults ranks as well (it passes every gate) but gives far higher probabilities than the champion
    bad, _ = candidate(ws, credit, LogisticRegression(max_iter=500, class_weight='balanced'), NUM + CAT)
    approve(ws, bad.ref, 'bea')  # approved, so only the canary can stop it
    registry.set_challenger(ws, bad.ref, 'ci-pipeline')
    tally = run_canary(ws, server, credit, bad.version)
    assert set(k for k in tally if isinstance(k, int)) == {200} and tally['canary'] >= 100, tally
    # the server stops routing to the challenger first, then records, clears the alias and alerts: wait for the last step
    wait_for(lambda: len(audit.log(ws, 1, action='alert.canary_rollback', subject=bad.ref)), 'the rollback alert')
    e = audit.log(ws, action='canary.rollback', subject=bad.ref).iloc[0]
    assert e.actor == 'canary' and 'far from the champion' in e.reason and 'canary.max_disagreement' in e.reason
    assert 'challenger' not in registry.get(ws, bad.ref).aliases and registry.champion(ws, 'credit-default').version == 1
    assert audit.log(ws, 1, action='alert.canary_rollback', subject=bad.ref).reason.iloc[0].startswith(f'canary {bad.ref} rolled back')

    champ = registry.champion(ws, 'credit-default')
    good, _ = candidate(ws, credit, LogisticRegression(max_iter=500, C=0.5), NUM + CAT)
    approve(ws, good.ref, 'bea')
    registry.set_challenger(ws, good.ref, 'ci-pipeline')
    tally = run_canary(ws, server, credit, good.version)
    assert set(k for k in tally if isinstance(k, int)) == {200}, tally
    promoted = audit.log(ws, action='model.promote', subject='credit-default').iloc[0]
    assert promoted.actor == 'canary' and promoted.reason.startswith('canary: healthy after') and '"champion": %d' % good.version in promoted.after
    assert audit.log(ws, 1, action='canary.promote', subject=good.ref).shape[0] == 1
    assert registry.champion(ws, 'credit-default').version == good.version != champ.version
    wait_for(lambda: status(server)['champion']['version'] == good.version, 'the server to serve the new champion')
    assert audit.verify(ws).ok


def test_deploy_pipeline_takes_a_challenger_to_champion(lifecycle):
    ws, credit = lifecycle
    # close to the champion (C=0.5): this test is about the pipeline; C=2.0 gave a divergence at the guard's limit
    # (PSI 0.134 less 0.033 of noise against 0.1), so the outcome was a coin toss. The guard has its own test above.
    new, _ = candidate(ws, credit, LogisticRegression(max_iter=500, C=0.6), NUM + CAT)
    approve(ws, new.ref, 'bea')
    r = pipelines.run(ws, 'deploy', {'model_version': new.ref, 'share': 0.5}, actor='ci-pipeline')
    assert r.status == 'ok', r.message
    assert r.results['outcome'] == 'promoted' and r.results['champion'] == new.ref and r.results['errors'] == 0
    assert r.results['decision'] == 'promote' and r.results['reason'].startswith('healthy after')  # the verdict is the decision it shows
    assert figures_decision(r.notebook) == 'promote'
    assert registry.champion(ws, 'credit-default').version == new.version
    assert 'integration test passed' in Path(r.notebook).read_text()
    again = pipelines.run(ws, 'deploy', {'model_version': new.ref})  # the champion already: nothing to do, not a failure
    assert again.status == 'ok' and again.results['outcome'] == 'champion already'


def figures_decision(notebook) -> str:
    "The decision in the challenger's row of the executed deploy notebook's figures table."
    import nbformat
    cell = next(c for c in nbformat.read(notebook, 4).cells if "challenger_row" in c.source)
    html = next(o['data']['text/html'] for o in cell.outputs if 'text/html' in o.get('data', {}))
    head, *rows = re.findall(r'<tr[^>]*>(.*?)</tr>', html, re.S)
    columns = re.findall(r'<th[^>]*>(.*?)</th>', head)[1:]  # the first is the index's
    return dict(zip(columns, re.findall(r'<td[^>]*>(.*?)</td>', rows[1])))['decision']


def test_deploy_pipeline_verdict_is_the_decision_it_shows(lifecycle):
    "A challenger the canary rolls back: the pipeline fails with that decision, and its figures table shows the same one."
    ws, credit = lifecycle
    bad, _ = candidate(ws, credit, LogisticRegression(max_iter=500, class_weight='balanced'), NUM + CAT)
    approve(ws, bad.ref, 'bea')
    r = pipelines.run(ws, 'deploy', {'model_version': bad.ref, 'share': 0.5}, actor='ci-pipeline')
    assert r.status == 'failed' and r.results['outcome'] == 'rolled back' and r.results['decision'] == 'rollback', r.message
    assert 'canary.max_disagreement' in r.results['reason'] and r.message.endswith(r.results['reason'])
    assert figures_decision(r.notebook) == 'rollback' and 'challenger' not in registry.get(ws, bad.ref).aliases


def test_shadow_scores_every_request_but_only_logs_its_answer(lifecycle, tmp_path):
    "In shadow mode the champion answers every request; the challenger scores each one too, and its answers only reach the log."
    from starlette.testclient import TestClient
    from workbench import releases, serving
    ws, credit = lifecycle
    shadow, _ = candidate(ws, credit, LogisticRegression(max_iter=500, C=0.1), NUM + CAT)
    registry.set_challenger(ws, shadow.ref, 'ci-pipeline')
    champ = registry.champion(ws, 'credit-default')
    server = releases.from_registry(ws, 'credit-default@champion', shadow='credit-default@challenger')
    rows = data.load(ws, credit.ref).tail(40)
    with TestClient(serving.create_app(server)) as http:
        for i in range(40):
            r = http.post('/invocations', json={'dataframe_split': {'columns': NUM + CAT, 'data': traffic._records(rows[NUM + CAT].iloc[[i]])}}, headers={'X-Request-ID': f'shadow-{i}'})
            assert r.status_code == 200 and r.headers['x-variant'] == 'champion' and r.headers['x-model-version'] == champ.ref
    logged = ws.sql("select variant, version, count(distinct request_id) as n from predictions where request_id like 'shadow-%' group by all order by 1").fetchall()
    assert logged == [('champion', champ.version, 40), ('shadow', shadow.version, 40)]
    assert server.status()['challenger']['requests'] == 40
    registry.clear_challenger(ws, 'credit-default', shadow.version, 'ci-pipeline', 'shadow test done')


# The canary's judgement as a property (issue 17, item 3): customers with one application each send requests with their
# id as the sticky key, so the canary sees only the customers routed to it, however many requests they send. A challenger
# that answers like the champion is never rolled back, and is promoted once canary.MIN_UNITS customers reach it; one that
# is clearly worse (its scores shuffled over the customers, inverted, or shifted by 3 on the logit scale: odds times 20)
# is never promoted, and is rolled back once enough customers reach it to tell (TELLS: from there a 99% sample of them
# shows its difference above canary.max_disagreement for any beta-distributed champion); with fewer, the canary waits
# and says why, or already rolls back.
DEFAULTS = load_settings(env={})
logit = lambda p: np.log(p / (1 - p))
WORSE = {'shuffled': lambda s, r: r.permutation(s), 'inverted': lambda s, r: 1 - s, 'shifted': lambda s, r: 1 / (1 + np.exp(-logit(s) - 3))}
TELLS = 100


def canary_run(challenger, entities, share, seed, a, b, canary_requests=1500, champion_requests=5000):
    "Judge a canary at the default settings every 50 of its requests; returns (customers it saw, every decision)."
    r = np.random.default_rng(seed)
    champ_s = np.clip(r.beta(a, b, entities), 1e-6, 1 - 1e-6)  # the champion's score of each customer's application
    chall_s = challenger(champ_s, r)
    keys = [f'customer-{seed}-{e}' for e in range(entities)]
    routed = np.array([canary.to_challenger(share, k) for k in keys])
    champ, chall = canary.Variant('champion', 'm', 1), canary.Variant('canary', 'm', 2)
    for e in (r.choice(np.flatnonzero(~routed), champion_requests) if (~routed).any() else []): champ.record(1.0, [champ_s[e]])
    decisions = []
    for i, e in enumerate(r.choice(np.flatnonzero(routed), canary_requests) if routed.any() else []):
        chall.record(1.0, [chall_s[e]]); chall.pair([champ_s[e]], [chall_s[e]], keys[e])  # as Server._pair does
        if (i + 1) % 50 == 0 and i + 1 >= DEFAULTS['canary.min_requests']:
            decisions.append(canary.judge(champ, chall, DEFAULTS))
            if decisions[-1].action != 'wait': break
    return int(routed.sum()), decisions


canaries = dict(entities=st.integers(20, 5000), share=st.floats(0.05, 0.5), seed=st.integers(0, 2**32 - 1),
                a=st.floats(0.5, 5), b=st.floats(0.5, 5))  # the champion's scores: any beta distribution


@hsettings(max_examples=60, deadline=None, derandomize=True)
@given(**canaries)
def test_a_challenger_equal_to_the_champion_is_never_rolled_back(entities, share, seed, a, b):
    units, decisions = canary_run(lambda s, r: s.copy(), entities, share, seed, a, b)
    assert all(d.action != 'rollback' for d in decisions), (units, decisions[-1])
    if units >= canary.MIN_UNITS: assert decisions[-1].action == 'promote' and decisions[-1].metrics['disagreement'] == 0, (units, decisions[-1])
    elif decisions: assert decisions[-1].action == 'wait' and 'inconclusive' in decisions[-1].reason, (units, decisions[-1])


@hsettings(max_examples=90, deadline=None, derandomize=True)
@given(kind=st.sampled_from(sorted(WORSE)), **canaries)
def test_a_clearly_worse_challenger_is_rolled_back_never_promoted(kind, entities, share, seed, a, b):
    units, decisions = canary_run(WORSE[kind], entities, share, seed, a, b)
    assert not any(d.action == 'promote' for d in decisions), (kind, units, decisions[-1])
    if units >= TELLS: assert decisions[-1].action == 'rollback' and 'canary.max_disagreement' in decisions[-1].reason, (kind, units, decisions[-1])
    elif decisions and decisions[-1].action == 'wait': assert 'inconclusive' in decisions[-1].reason and 'canary.share' in decisions[-1].reason


def test_the_issue_case_570_customers_identical_challenger():
    "The case of the issue: 570 customers, a 10% share, a challenger identical to the champion; it was rolled back on PSI 0.121."
    units, decisions = canary_run(lambda s, r: s.copy(), 570, 0.1, 17, 2, 5)
    assert 30 < units < 90 and decisions[-1].action == 'promote' and decisions[-1].metrics['divergence'] == 0
