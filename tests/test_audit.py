"The audit chain: tampering of any kind is found and named, by the API and by `workbench audit verify`."
import pyarrow as pa, pyarrow.parquet as pq
import pytest
from workbench import audit


def audit_files(ws) -> list:
    "The audit table's data files, as paths in the workspace."
    return ['tables/audit/' + u.split('/tables/audit/', 1)[1] for u in ws.delta('audit').file_uris()]


def read_parquet(ws, f) -> pa.Table: return pq.read_table(pa.BufferReader(ws.read_bytes(f)))


@pytest.fixture(params=['folder', 'object store'])
def chain(request, ws, env, tmp_path, monkeypatch):
    "Five events, in a workspace in a folder and in one on the object store (whose files an insider can rewrite too)."
    if request.param == 'object store':
        store = request.getfixturevalue('seaweedfs')
        on_store = store | dict(WORKBENCH_HOME=f"{store['WORKBENCH_HOME']}/audit-{request.node.name.replace('[', '-').rstrip(']')}",
                                XDG_STATE_HOME=str(tmp_path/'state'))
        for k, v in on_store.items(): monkeypatch.setenv(k, v)
        env.update(on_store)  # and the `workbench` command
        from workbench.config import load_settings
        from workbench.workspace import open_workspace
        ws = open_workspace(None, load_settings(env={}))
    for i in range(1, 6):
        audit.record(ws, 'test.event', f'thing/{i}', before={'i': i - 1}, after={'i': i}, reason=f'reason number {i}', actor='ana')
    assert audit.verify(ws).ok
    return ws


def rewrite_event(ws, seq, change):
    "Rewrite the data file holding event `seq`, with `change(row) -> row or None` applied to it."
    for f in audit_files(ws):
        t = read_parquet(ws, f)
        rows = t.to_pylist()
        if any(r['seq'] == seq for r in rows):
            new = [r2 for r in rows if (r2 := change(r) if r['seq'] == seq else r) is not None]
            out = pa.BufferOutputStream()
            pq.write_table(t.from_pylist(new, schema=t.schema), out, compression='none')
            ws.write_bytes(f, out.getvalue().to_pybytes())
            return
    raise AssertionError(f'event {seq} not found')


def test_one_byte_edited_in_the_file_is_named(chain, wb):
    needle = b'reason number 3'
    f = next(f for f in audit_files(chain) if needle in chain.read_bytes(f))
    b = chain.read_bytes(f)
    pos = b.index(needle) + len(needle) - 1
    chain.write_bytes(f, b[:pos] + b'8' + b[pos + 1:])  # one byte, edited
    v = audit.verify(chain)
    assert (v.ok, v.bad_seq) == (False, 3) and 'altered' in v.problem
    r = wb('audit', 'verify', check=False)
    assert r.returncode == 1 and 'BROKEN at event 3' in r.stdout


@pytest.mark.parametrize('field, value', [('actor', 'eve'), ('after', '{"i": 99}'), ('action', 'test.evenT')])
def test_altered_field_is_named(chain, field, value):
    rewrite_event(chain, 4, lambda r: {**r, field: value})
    v = audit.verify(chain)
    assert (v.ok, v.bad_seq) == (False, 4) and 'altered' in v.problem


def test_deleted_event_is_named(chain):
    rewrite_event(chain, 2, lambda r: None)
    v = audit.verify(chain)
    assert (v.ok, v.bad_seq) == (False, 2) and 'missing' in v.problem


def test_inserted_event_is_named(chain):
    from workbench.audit import event_hash
    def forge(r):  # a well-formed event that claims to follow event 2, spliced in as a second event 3
        e = {**r, 'reason': 'forged'}; e['hash'] = event_hash(e); return e
    evs = chain.sql('select * from audit where seq = 3').to_arrow_table().to_pylist()
    chain.append('audit', [forge(evs[0])])
    v = audit.verify(chain)
    assert (v.ok, v.bad_seq) == (False, 3) and 'twice' in v.problem


def test_rehashed_edit_breaks_the_next_link(chain):
    from workbench.audit import event_hash
    def edit(r): e = {**r, 'reason': 'nothing to see'}; e['hash'] = event_hash(e); return e
    rewrite_event(chain, 2, edit)  # the forger recomputes the edited event's own hash...
    v = audit.verify(chain)
    assert (v.ok, v.bad_seq) == (False, 3) and 'spliced' in v.problem  # ...but the next event still points at the old one


def test_damaged_file_is_reported_not_raised(chain):
    f = next(f for f in audit_files(chain) if read_parquet(chain, f).column('seq').to_pylist() == [2])
    chain.write_bytes(f, b'garbage' * 10)
    v = audit.verify(chain)
    assert not v.ok and 'unreadable audit file' in v.problem and v.bad_seq == 2 and 'missing' in v.problem


def test_log_filters_and_cli(chain, wb):
    assert audit.log(chain, subject='thing/').seq.tolist() == [5, 4, 3, 2, 1]
    out = wb('audit', 'log', '-n', '2').stdout
    assert 'thing/5' in out and 'thing/4' in out and 'thing/3' not in out
    assert 'intact: 5 events' in wb('audit', 'verify').stdout
