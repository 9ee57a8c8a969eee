"The audit chain: tampering of any kind is found and named, by the API and by `workbench audit verify`."
from pathlib import Path
import pyarrow.parquet as pq
import pytest
from workbench import audit


def audit_files(ws):
    from deltalake import DeltaTable
    return [Path(u.removeprefix('file://')) for u in DeltaTable(str(ws.table_path('audit'))).file_uris()]


@pytest.fixture
def chain(ws):
    for i in range(1, 6):
        audit.record(ws, 'test.event', f'thing/{i}', before={'i': i - 1}, after={'i': i}, reason=f'reason number {i}', actor='ana')
    assert audit.verify(ws).ok
    return ws


def rewrite_event(ws, seq, change):
    "Rewrite the data file holding event `seq`, with `change(row) -> row or None` applied to it."
    for f in audit_files(ws):
        t = pq.read_table(f)
        rows = t.to_pylist()
        if any(r['seq'] == seq for r in rows):
            new = [r2 for r in rows if (r2 := change(r) if r['seq'] == seq else r) is not None]
            pq.write_table(t.from_pylist(new, schema=t.schema), f, compression='none')
            return
    raise AssertionError(f'event {seq} not found')


def test_one_byte_edited_in_the_file_is_named(chain, wb):
    needle = b'reason number 3'
    f = next(f for f in audit_files(chain) if needle in f.read_bytes())
    b = f.read_bytes()
    pos = b.index(needle) + len(needle) - 1
    f.write_bytes(b[:pos] + b'8' + b[pos + 1:])  # one byte, edited in place
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
    f = next(f for f in audit_files(chain) if pq.read_table(f).column('seq').to_pylist() == [2])
    f.write_bytes(b'garbage' * 10)
    v = audit.verify(chain)
    assert not v.ok and 'unreadable audit file' in v.problem and v.bad_seq == 2 and 'missing' in v.problem


def test_log_filters_and_cli(chain, wb):
    assert audit.log(chain, subject='thing/').seq.tolist() == [5, 4, 3, 2, 1]
    out = wb('audit', 'log', '-n', '2').stdout
    assert 'thing/5' in out and 'thing/4' in out and 'thing/3' not in out
    assert 'intact: 5 events' in wb('audit', 'verify').stdout
