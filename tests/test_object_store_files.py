"""A workspace on a real SeaweedFS seen from two machines (two local state folders): suites, allowed signers, alerts,
executed notebooks and online features written on one are found on the other, read fresh, never from a stale copy."""
import json, threading
from datetime import datetime, timezone
import nbformat
import pandas as pd
import pytest
from workbench import alerts, approvals, data, features, pipelines, signatures, suites, validation
from workbench.config import load_settings
from workbench.errors import WorkbenchError
from workbench.workspace import open_workspace


@pytest.fixture
def machines(seaweedfs, tmp_path, monkeypatch, request):
    "Two handles on one workspace URL, each with its own local state folder, as on two machines."
    for k, v in seaweedfs.items(): monkeypatch.setenv(k, v)
    url = f"{seaweedfs['WORKBENCH_HOME']}/{request.node.name}"
    def machine(name:str, **settings):
        monkeypatch.setenv('XDG_STATE_HOME', str(tmp_path/name))
        (ini := tmp_path/name/'settings.ini').parent.mkdir()
        ini.write_text(f"[audit]\nanchor = {tmp_path/name/'anchors'}\n")  # this machine's own anchor
        return open_workspace(url, load_settings(ini, env={}, overrides=settings))
    a, b = machine('a', **{'alerts.sinks': 'jsonl'}), machine('b')
    assert a.uri == b.uri == url and a.root != b.root
    return a, b


def test_files_round_trip(machines):
    a, b = machines
    a.write_bytes('notes/n.txt', b'one'); a.write_bytes('notes/n.txt', b'two')
    assert b.read_bytes('notes/n.txt') == b'two' and b.exists('notes/n.txt') and not b.exists('notes/none.txt')
    assert b.files('notes') == ['n.txt'] and b.files('nothing') == []
    assert not (a.root/'notes').exists() and not (b.root/'notes').exists()  # on the store, not in either folder
    with pytest.raises(FileNotFoundError, match='no file notes/none.txt in s3://'): b.read_bytes('notes/none.txt')
    with pytest.raises(WorkbenchError, match='is not a path inside the workspace'): b.write_bytes('../x', b'')


def frame(n=200, shift=0.0):
    return pd.DataFrame({'id': range(n), 'amount': [float(i % 50) + shift for i in range(n)],
                         'label': [i % 2 for i in range(n)]})


def test_a_suite_saved_on_one_machine_is_used_on_the_other(machines):
    a, b = machines
    v = data.commit(a, 'credit', frame(), 'first', 'ana')
    s = suites.infer_suite(a, v.ref, keys=['id'], target='label')
    s.rows['min'] = 10_000  # the team's edit: this dataset must have many more rows
    where = suites.save_suite(a, s)
    assert where == f'{a.uri}/suites/credit.json' and not (a.root/'suites').exists()
    rep = validation.validate(b, v.ref)
    assert rep.suite == 'credit' and not rep.passed and rep.note == ''  # b used a's suite, inferred none
    assert rep.failures.message.tolist() == ['rows: 200 < 10000'] and not (b.root/'suites').exists()
    s.rows['min'] = 1  # changed again on a: b reads it fresh
    suites.save_suite(a, s)
    assert validation.validate(b, v.ref).passed
    assert suites.has_suite(b, 'credit') and suites.roles(b, 'credit')['keys'] == ['id']
    with pytest.raises(WorkbenchError, match=r"no suite named 'nope' in s3://.*suites here: credit"):
        suites.load_suite(b, 'nope')


def test_an_approver_listed_on_one_machine_is_accepted_on_the_other(machines, tmp_path):
    a, b = machines
    body = b'{"model":"credit-default/1"}'
    with pytest.raises(WorkbenchError, match='cannot read the allowed signers file s3://'): approvals.allowed_signers(b)
    bea = signatures.generate_key(tmp_path/'keys'/'bea')
    assert approvals.add_signer(a, 'bea@bank.mt', bea) == f'{a.uri}/allowed_signers'
    sig = approvals.sign(body, tmp_path/'keys'/'bea')
    assert approvals.verify(b, body, sig)[0] == 'bea@bank.mt'
    cy = signatures.generate_key(tmp_path/'keys'/'cy')
    with pytest.raises(WorkbenchError, match='not in the allowed signers file'):
        approvals.verify(a, body, approvals.sign(body, tmp_path/'keys'/'cy'))
    approvals.add_signer(b, 'cy@bank.mt', cy)  # listed on b: a accepts it at once (no stale copy of the file)
    assert approvals.verify(a, body, approvals.sign(body, tmp_path/'keys'/'cy'))[0] == 'cy@bank.mt'
    assert [s.principals for s in approvals.allowed_signers(a)] == [('bea@bank.mt',), ('cy@bank.mt',)]
    assert not (a.root/'allowed_signers').exists() and not (b.root/'allowed_signers').exists()


def test_an_alert_sent_on_one_machine_is_listed_on_the_other(machines):
    a, b = machines
    assert alerts.history(b) == []
    for psi in (0.31, 0.42):
        sent = alerts.send(a, 'drift', 'credit-default/1', f'PSI {psi} on income', {'psi': psi}, source='monitor')
        assert sent['failed'] == []
    got = alerts.history(b)
    assert [x['details']['psi'] for x in got] == [0.31, 0.42] and got[0]['source'] == 'monitor'
    assert [x['message'] for x in alerts.history(b, 1)] == ['PSI 0.42 on income']
    assert len(b.files('alerts')) == 2 and not (a.root/'alerts.jsonl').exists()


NOTEBOOK = [('parameters', 'workspace: str = ""  # the workspace\nresults_path: str = ""  # where results go'),
            (None, 'from workbench.pipelines import finish\nprint("hello from", workspace)\n'
                   'finish(results_path, "ok", "said hello", answer=42)')]


def test_an_executed_pipeline_notebook_is_kept_on_the_store(machines, tmp_path):
    a, b = machines
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src, metadata={'tags': [t] if t else []})
                                         for t, src in NOTEBOOK])
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    nbformat.write(nb, tmp_path/'hello.ipynb')
    r = pipelines.run(a, str(tmp_path/'hello.ipynb'), actor='ana')
    assert r.ok and r.results['answer'] == 42, r.error
    name = f'{r.run_id}-hello.ipynb'
    assert r.notebook == f'{a.uri}/pipelines/{name}'
    kept = nbformat.reads(b.read_bytes(f'pipelines/{name}').decode(), 4)  # read from the store by the other machine
    assert any('hello from ' + a.uri in o.get('text', '') for c in kept.cells for o in c.get('outputs', []))
    assert json.loads(b.read_bytes(f'pipelines/{r.run_id}-hello.json'))['message'] == 'said hello'
    assert pipelines.history(b).notebook.tolist() == [r.notebook]


def test_online_features_written_on_one_machine_are_read_on_the_other(machines):
    a, b = machines
    t = lambda d: datetime(2025, 1, d, tzinfo=timezone.utc)
    data.commit(a, 'payments', pd.DataFrame({'customer': ['x', 'y', 'x'], 'at': [t(1), t(2), t(3)],
                                             'amount': [10.0, 20.0, 30.0]}), 'payments', 'ana')
    view = features.FeatureView('spend', 'customer', 'at', 'payments@latest', {'amount': 'amount'}, ttl='30d')
    assert features.apply(a, view).status.tolist() == ['created']
    m = features.materialize(a, as_of=t(4))
    assert m.path[0].startswith('online/spend/') and b.exists(m.path[0])
    on = features.get_online_features(b, [{'customer': 'x'}, {'customer': 'y'}, {'customer': 'z'}], ['spend'], at=t(5))
    assert on.amount.tolist()[:2] == [30.0, 20.0] and pd.isna(on.amount[2])
    assert features.check_skew(b).differing.tolist() == [0]


def test_feature_view_versions_from_two_machines_at_once_never_collide(machines):
    "Each machine's lock is its own: only the compare-and-swap on the table version keeps versions unique."
    a, b = machines
    data.commit(a, 'payments', pd.DataFrame({'customer': ['x'], 'at': [datetime(2025, 1, 1, tzinfo=timezone.utc)],
                                             'amount': [1.0]}), 'payments', 'ana')
    errors = []
    def register(ws, who):
        try:
            for i in range(3):
                v = features.FeatureView('spend', 'customer', 'at', 'payments@latest', {'amount': f'amount * {i + 2}'},
                                         description=f'{who} {i}')
                features.apply(ws, v, actor=who)
        except Exception as e: errors.append(e)
    threads = [threading.Thread(target=register, args=(ws, who)) for ws, who in ((a, 'ana'), (b, 'bob'))]
    for th in threads: th.start()
    for th in threads: th.join(120)
    assert not errors, errors
    rows = b.sql('select version, actor from feature_views order by version').fetchall()
    assert [r[0] for r in rows] == list(range(1, 7)) and sorted(r[1] for r in rows) == ['ana'] * 3 + ['bob'] * 3
