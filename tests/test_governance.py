"Issue 19: each governance rule tried as an insider would, on a real workspace: every attempt is refused or reported, naming what happened."
import json, subprocess, sys
import pyarrow as pa, pytest
from deltalake import DeltaTable
from sklearn.linear_model import LogisticRegression
from conftest import BIN, approve, approver_key, clean_env
from test_registry import NUM, CAT, candidate
from workbench import approvals, audit, data, demo, governance, registry, signatures
from workbench.config import load_settings
from workbench.workspace import open_workspace


@pytest.fixture
def team(tmp_path):
    "A workspace with a settings.ini (its own anchor), data, a champion approved by bea and a second version registered by ci-pipeline."
    (tmp_path/'settings.ini').write_text(f'[audit]\nanchor = {tmp_path}/anchors\n')
    ws = open_workspace(tmp_path/'ws', load_settings(tmp_path/'settings.ini', env={}), create=True)
    credit = data.commit(ws, 'credit', demo.training_frame(demo.generate(months=4, rows_per_month=800), 4), 'four months', 'ana')
    first, _ = candidate(ws, credit, LogisticRegression(max_iter=500), NUM + CAT)
    approve(ws, first.ref, 'bea'); registry.promote(ws, first.ref, 'bea', 'first champion')
    second, _ = candidate(ws, credit, LogisticRegression(max_iter=500, C=0.5), NUM + CAT)
    for who in ('ci-pipeline', 'carla'): approver_key(ws, who)  # listed in the team's allowed signers too
    def wb(*args, env=None):
        return subprocess.run([str(BIN/'workbench'), *map(str, args)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              env=clean_env(WORKBENCH_HOME=str(ws.root), **(env or {})))
    return ws, second, wb


def test_typed_names_gain_nothing(team):
    ws, mv, wb = team
    # the registrant (ci-pipeline) under another name, case or spacing
    for name in ('CI-Pipeline', 'ci-pipeline ', None):
        with pytest.raises(registry.PolicyError, match='registered .* cannot approve'):
            registry.approve(ws, mv.ref, name, key=approver_key(ws, 'ci-pipeline'))
    with pytest.raises(registry.PolicyError, match="the signature is ci-pipeline's, not alice's"):
        registry.approve(ws, mv.ref, 'alice', key=approver_key(ws, 'ci-pipeline'))
    for blank in (' ', ''):
        with pytest.raises(registry.WorkbenchError, match="a person's name is needed"):
            registry.approve(ws, mv.ref, blank, key=approver_key(ws, 'carla'))
    r = wb('registry', 'approve', mv.ref, '--as', 'alice')  # a name and no key
    assert r.returncode == 1 and 'approvals are signed' in r.stderr and 'Traceback' not in r.stderr
    r = wb('registry', 'approve', mv.ref, '--key', approver_key(ws, 'ci-pipeline'), env={'WORKBENCH_ACTOR': 'bob'})
    assert r.returncode == 1 and 'ci-pipeline registered' in r.stderr
    assert registry.get(ws, mv.ref).approvals == []
    # a key the team never listed, and a signature of another version's payload
    signatures.generate_key(ws.root.parent/'mallory')
    with pytest.raises(registry.WorkbenchError, match='is not in the allowed signers file'):
        registry.approve(ws, mv.ref, key=ws.root.parent/'mallory')
    other = approvals.sign(registry.approval_payload(ws, f'{mv.name}/1'), approver_key(ws, 'carla'))
    with pytest.raises(registry.WorkbenchError, match='does not match what was signed'):
        registry.approve(ws, mv.ref, signature=other)
    # the same through ssh-keygen, as a key held by an agent would sign
    p = ws.root.parent/'payload'
    p.write_bytes(wb('registry', 'approve', mv.ref, '--payload').stdout.encode())
    subprocess.run(['ssh-keygen', '-q', '-Y', 'sign', '-f', approver_key(ws, 'carla'), '-n', approvals.NAMESPACE, p], check=True, capture_output=True)
    r = wb('registry', 'approve', mv.ref, '--signature', f'{p}.sig', '-m', 'signed with ssh-keygen')
    assert r.returncode == 0 and 'approvals: carla' in r.stdout, r.stderr
    assert 'credit-default/2 is now the champion' in wb('registry', 'promote', mv.ref).stdout
    promoted = json.loads(audit.log(ws, 1, action='model.promote').after[0])
    assert promoted['policy']['min_approvals'] == 1 and promoted['policy']['signed_approvals'] is True


def test_the_rules_cannot_be_switched_off_per_command(team):
    ws, mv, wb = team
    for args, env in [(['--set', 'promotion.require_approval=false'], {}), (['--set', 'promotion.min_approvals=-1'], {}),
                      ([], {'WORKBENCH_PROMOTION_MIN_APPROVALS': '0'}), ([], {'WORKBENCH_AUDIT_ANCHOR': '/tmp/elsewhere'})]:
        r = wb(*args, 'registry', 'promote', mv.ref, env=env)
        assert r.returncode == 1 and 'is a governance rule: change it in settings.ini' in r.stderr, (args, env, r.stderr)
    assert registry.champion(ws, mv.name).version == 1


def _forge(ws, **fields):
    "Append an event straight into the audit table, its hash recomputed, as someone who can write the table would."
    seq, prev, _ = audit._head(ws, ws.delta('audit'))
    e = dict(seq=seq + 1, time=audit.datetime.now(audit.timezone.utc), before=None, reason='', prev_hash=prev, **fields)
    e['hash'] = audit.event_hash(e)
    ws.append('audit', pa.Table.from_pylist([e], schema=audit.SCHEMA))
    return e


def test_forged_events_and_cut_tails_are_found(team):
    ws, mv, wb = team
    # a forged approval by mallory, then one claiming to be bea's with bea's signature of version 1
    _forge(ws, actor='mallory', action='model.approve', subject=mv.ref, after=json.dumps({'approver': 'mallory'}))
    v1 = json.loads(audit.log(ws, action='model.approve', subject=f'{mv.name}/1').after.iloc[-1])
    _forge(ws, actor='bea', action='model.approve', subject=mv.ref, after=json.dumps(v1))
    assert registry.get(ws, mv.ref).approvals == []
    with pytest.raises(registry.PolicyError, match='has 0 of the 1 approvals required'): registry.promote(ws, mv.ref)
    found = governance.check(ws)
    assert any("mallory's approval of credit-default/2 does not count: it is not signed" in f for f in found), found
    assert any("bea's approval of credit-default/2 does not count: its signature is for another version" in f for f in found), found
    r = wb('audit', 'verify')
    assert r.returncode == 1 and 'it is not signed' in r.stdout
    # the forged events rewritten away, and the newest real events cut: the anchor remembers the head
    n = audit.verify(ws).events
    DeltaTable(str(ws.table_path('audit'))).delete(f'seq > {n - 4}')
    v = audit.verify(ws)
    assert not v.ok and 'the newest events were deleted' in v.problem, v
    r = wb('status')
    assert r.returncode == 1 and 'audit chain BROKEN' in r.stdout


def test_a_kill_between_a_change_and_its_event_is_finished(team):
    ws, mv, wb = team
    killed = """
import os, signal, sys
from workbench import audit, data, registry
from workbench.config import load_settings
from workbench.workspace import open_workspace
ws = open_workspace(sys.argv[1], load_settings(sys.argv[2], env={}))
die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
if sys.argv[3] == 'data': audit.record = die; data.commit(ws, 'credit', data.load(ws, 'credit').head(500), 'a sample')
else: registry._set_alias = die; registry.set_challenger(ws, sys.argv[4], 'carla', 'killed halfway')
"""
    for what in ('data', 'alias'):
        r = subprocess.run([sys.executable, '-c', killed, ws.root, ws.root.parent/'settings.ini', what, mv.ref], capture_output=True, timeout=300)
        assert r.returncode == -9, r.stderr
    found = governance.check(ws)
    assert len(found) == 2 and 'the challenger move of credit-default to version 2 was recorded but not made' in found[0], found
    assert 'has no dataset.commit audit event' in found[1], found
    r = wb('status')
    assert r.returncode == 1 and 'has no dataset.commit audit event' in r.stdout
    registry.clear_challenger(ws, mv.name, mv.version, 'carla', 'canary abandoned')  # the next action finishes the move first
    assert [h.action for h in registry.history(ws, mv.name).itertuples()][-2:] == ['model.challenger', 'model.challenger']
    data.commit(ws, 'credit', data.load(ws, 'credit'), 'the same data')  # the next commit records the late event
    assert governance.check(ws) == [] and wb('status').returncode == 0


def test_an_alias_moved_in_mlflow_is_reported_everywhere(team):
    ws, mv, wb = team
    registry.client(ws).set_registered_model_alias(mv.name, 'champion', str(mv.version))  # behind the workbench's back
    expect = f'the champion alias of {mv.name} points to version {mv.version} but the audit log says version 1'
    for args in (['registry', 'show', f'{mv.name}@champion'], ['registry', 'list']):
        r = wb(*args)
        assert r.returncode == 0 and expect in r.stderr, (args, r.stderr)
    for args in (['status'], ['audit', 'verify']):
        r = wb(*args)
        assert r.returncode == 1 and expect in r.stdout, (args, r.stdout)
    with pytest.raises(registry.PolicyError, match='moved outside the workbench'): registry.champion(ws, mv.name)
    r = wb('serve', f'{mv.name}@champion', '--port', '1')
    assert r.returncode == 1 and 'moved outside the workbench' in r.stderr
