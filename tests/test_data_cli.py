"Versioned datasets through the CLI: identity of data, references, diff, and bad input that writes nothing; in a folder and on object storage."
import json
import duckdb, pandas as pd, pyarrow as pa, pyarrow.parquet as pq
import pytest
from conftest import clean_env


@pytest.fixture(params=['folder', 'object store'])
def env(request, tmp_path, monkeypatch):
    "The CLI's environment: a workspace in tmp_path, or under a prefix of the session's SeaweedFS bucket (issue 20)."
    where = str(tmp_path/'ws')
    if request.param == 'object store':
        store = request.getfixturevalue('seaweedfs')
        for k, v in store.items(): monkeypatch.setenv(k, v) if k.startswith('AWS_') else None
        monkeypatch.setenv('XDG_STATE_HOME', str(tmp_path/'state'))  # this machine's own state
        where = f"{store['WORKBENCH_HOME']}/data-cli/{tmp_path.name}"
    return clean_env(WORKBENCH_HOME=where, WORKBENCH_ACTOR='tester')


@pytest.fixture
def ws(env):
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    return open_workspace(env['WORKBENCH_HOME'], load_settings(env={}))


def frame(n=50):
    return pd.DataFrame({'id': range(n), 'income': [1000.5 + i for i in range(n)],
                         'region': ['Gozo' if i % 3 else 'Western' for i in range(n)],
                         'score': pd.array([None if i % 7 == 0 else 600 + i for i in range(n)], 'Int64')})


def versions(wb, name):
    return json.loads(wb('data', 'log', name, '--format', 'json').stdout)


def test_same_csv_twice_is_one_version(wb, tmp_path):
    frame().to_csv(tmp_path/'a.csv', index=False)
    first = wb('data', 'commit', 'credit', 'a.csv', '-m', 'first').stdout
    again = wb('data', 'commit', 'credit', 'a.csv').stdout
    assert first.startswith('committed credit@') and again.startswith('unchanged: credit@')
    assert first.split()[1].rstrip(':') == again.split()[1]
    assert len(versions(wb, 'credit')) == 1
    assert json.loads(wb('sql', "select count(*) as n from audit where action = 'dataset.commit'", '--format', 'json').stdout) == [{'n': 1}]


def test_pandas_and_duckdb_parquet_are_one_version(wb, tmp_path):
    df = frame()
    df.to_parquet(tmp_path/'pandas.parquet')
    duckdb.sql("copy (select * from df) to '" + str(tmp_path/'duck.parquet') + "' (format parquet)")
    created_by = lambda f: pq.ParquetFile(tmp_path/f).metadata.created_by
    assert 'parquet-cpp-arrow' in created_by('pandas.parquet') and 'DuckDB' in created_by('duck.parquet')  # two different writers
    a = wb('data', 'commit', 'credit', 'pandas.parquet').stdout.split()[1].rstrip(':')
    b = wb('data', 'commit', 'credit', 'duck.parquet').stdout
    assert b.startswith('unchanged') and a in b
    df.to_csv(tmp_path/'a.csv', index=False)
    assert wb('data', 'commit', 'credit', 'a.csv').stdout.startswith('unchanged')


def test_changed_cell_is_new_version_with_parent(wb, tmp_path):
    df = frame()
    df.to_csv(tmp_path/'a.csv', index=False)
    df.loc[17, 'region'] = 'Northern'
    df.to_csv(tmp_path/'b.csv', index=False)
    wb('data', 'commit', 'credit', 'a.csv'); wb('data', 'commit', 'credit', 'b.csv', '-m', 'fix region')
    log = versions(wb, 'credit')
    assert len(log) == 2 and log[0]['parent'] == log[1]['ref'].split('@')[1] and log[0]['message'] == 'fix region'
    out = wb('data', 'diff', 'credit~1', 'credit@latest').stdout
    assert '1 only in' in out and "new value 'Northern'" in out
    show = wb('data', 'show', log[1]['ref']).stdout
    assert '50 rows, 4 columns' in show and 'income' in show


def test_references(wb, tmp_path):
    for i in range(3):
        frame(10 + i).to_csv(tmp_path/f'{i}.csv', index=False)
        wb('data', 'commit', 'credit', f'{i}.csv')
    log = versions(wb, 'credit')
    oldest = log[-1]['ref']
    prefix = oldest.split('@')[1][:6]
    assert '10 rows' in wb('data', 'show', f'credit@{prefix}').stdout
    assert '10 rows' in wb('data', 'show', 'credit~2').stdout
    assert '12 rows' in wb('data', 'show', 'credit').stdout


@pytest.mark.parametrize('args, message', [
    (['data', 'show', 'nope'], "no dataset named 'nope'"),
    (['data', 'show', 'credit~5'], 'goes back 5'),
    (['data', 'show', 'credit@fffffffffff'], 'has no version whose id starts with'),
    (['data', 'show', 'credit@@x'], 'is not a dataset reference'),
    (['data', 'diff', 'credit', 'other'], "no dataset named 'other'"),
])
def test_bad_references(wb, tmp_path, args, message):
    frame().to_csv(tmp_path/'a.csv', index=False)
    wb('data', 'commit', 'credit', 'a.csv')
    r = wb(*args, check=False)
    assert r.returncode == 1 and message in r.stderr and 'Traceback' not in r.stderr


@pytest.mark.parametrize('env', ['folder'], indirect=True)  # ids and their prefixes: the same wherever they are kept
def test_ambiguous_prefix(ws):
    from workbench import data
    from workbench.config import WorkbenchError
    ids = []
    for i in range(40):  # 40 versions: some share their first hex digit
        ids.append(data.commit(ws, 'credit', frame(5 + i)).id)
    first = next(c for c in '0123456789abcdef' if sum(i.startswith(c) for i in ids) > 1)
    with pytest.raises(WorkbenchError, match='ambiguous'): data.resolve(ws, f'credit@{first}')


def _state(ws) -> list:
    "Every file under the workspace's datasets/, with its size."
    from pyarrow.fs import FileSelector, FileType
    fs, base = ws.storage()
    return sorted((i.path.removeprefix(base), i.size) for i in fs.get_file_info(FileSelector(f'{base}/datasets', recursive=True, allow_not_found=True))
                  if i.type == FileType.File)


@pytest.mark.parametrize('name, make, message', [
    ('credit', lambda p: None, 'no such file'),
    ('credit', lambda p: p.write_text(''), 'could not read'),
    ('credit', lambda p: p.write_text('a,b\n'), 'has no rows'),
    ('credit', lambda p: p.write_bytes(b'\x00\xff\xfe binary \x00' * 50), 'could not read'),
    ('Credit Data', lambda p: frame().to_csv(p, index=False), "dataset name 'Credit Data' is not valid"),
    ('credit', lambda p: p.write_text('id,name\n1,Ana\n2,"Ben\n3,Cy\n4,Di\n'), 'bad.csv line 3: a quoted value is never closed'),
    ('credit', lambda p: p.write_text('id,id\n1,2\n'), "column 'id' appears more than once"),
])
def test_bad_commits_write_nothing(wb, ws, tmp_path, name, make, message):
    frame().to_csv(tmp_path/'good.csv', index=False)
    wb('data', 'commit', 'credit', 'good.csv')
    before = (_state(ws), wb('sql', 'select count(*) from audit').stdout)
    make(tmp_path/'bad.csv')
    r = wb('data', 'commit', name, 'bad.csv', check=False)
    assert r.returncode == 1 and message in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert (_state(ws), wb('sql', 'select count(*) from audit').stdout) == before
    assert len(versions(wb, 'credit')) == 1


def test_unsupported_type_and_extension(wb, tmp_path):
    pq.write_table(pa.table({'id': [1, 2], 'tags': [['a'], ['b', 'c']]}), tmp_path/'nested.parquet')
    r = wb('data', 'commit', 'credit', 'nested.parquet', check=False)
    assert r.returncode == 1 and "column 'tags' has type list<element: string>" in r.stderr
    (tmp_path/'x.xlsx').write_text('nope')
    r = wb('data', 'commit', 'credit', 'x.xlsx', check=False)
    assert r.returncode == 1 and 'neither CSV' in r.stderr
    assert json.loads(wb('data', 'log', '--format', 'json').stdout) == []


def test_python_api_refusals_are_workbench_errors(ws):
    "What a DataFrame cannot be committed as says which column, in a WorkbenchError, and writes nothing."
    from workbench import data
    from workbench.config import WorkbenchError
    for df, message in [(pd.DataFrame([[1, 2]], columns=['a', 'a']), "column 'a' appears more than once"),
                        (pd.DataFrame({'id': [1, 2], 'z': [1 + 2j, 3j]}), "column 'z' has type complex128"),
                        (pa.table([[1], [2]], names=['b', 'b']), "column 'b' appears more than once")]:
        with pytest.raises(WorkbenchError, match=message): data.commit(ws, 'credit', df)
    assert data.log(ws).empty
    v = data.commit(ws, 'credit', pd.DataFrame({'id': [1, 2], 'note': ['two\nlines', 'one']}))  # a value may hold a line break
    assert data.load(ws, v.ref).note.tolist() == ['two\nlines', 'one']
