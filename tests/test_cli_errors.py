"No traceback reaches a user: every command and sub-command of `workbench`, given empty, missing and malformed input."
import os, re, signal, subprocess, time
from pathlib import Path
import click, pytest
from click.testing import CliRunner
from conftest import BIN
from workbench.cli import cli, _Group
from conftest import clean_env


def commands(group=cli, path=()):
    "Every leaf command of the CLI as (words, click command): a new command is covered without touching this file."
    for name, c in sorted(group.commands.items()):
        if isinstance(c, click.Group): yield from commands(c, path + (name,))
        else: yield path + (name,), c


COMMANDS = dict(commands())
CREATES = {('init',), ('demo',), ('data', 'commit'), ('features', 'apply')}  # commands that start a workspace
NEVER_RUN_BARE = {('demo',), ('dashboard',), ('init',)}  # with good input they run the lifecycle, serve, or succeed


@pytest.fixture(scope='module')
def shared(tmp_path_factory):
    "One workspace for the module: a dataset, a registered model, a binary file named .csv, a CSV with an unclosed quote."
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from workbench import data, demo, onnx, registry, tracking
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    root = tmp_path_factory.mktemp('errors')
    ours = {'WORKBENCH_HOME': str(root/'ws'), 'WORKBENCH_ACTOR': 'tester'}
    env = clean_env() | ours  # for the installed command
    in_process = {k: None for k in os.environ if k.startswith('WORKBENCH_')} | ours  # CliRunner's changes to this process's environment
    ws = open_workspace(root/'ws', load_settings(env={}))
    frame = demo.training_frame(demo.generate(months=2, rows_per_month=300), 2)
    v = data.commit(ws, 'credit', frame, 'two months', 'ana')
    features = ['loan_amount', 'interest_rate']
    with tracking.start_run(ws, 'errors', v.ref, features, 'defaulted', {'model': 'logistic'}) as run:
        pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame[features], frame.defaulted)
        registry.log_candidate(ws, run.run_id, onnx.export(pipe, frame[features][:100]))
    mv = registry.register(ws, run.run_id, 'errors', actor='ci-pipeline')
    (root/'binary.csv').write_bytes(bytes(range(256)) * 40)
    (root/'open.csv').write_text('id,name\n1,"Ana\n2,Ben\n3,Cy\n')
    frame.to_csv(root/'good.csv', index=False)
    return dict(root=root, env=env, in_process=in_process, ws=ws, model=mv.ref, rows=len(frame))


@pytest.fixture(scope='module')
def run(shared):
    "Invoke the CLI in this process, from the shared folder; returns the click Result."
    runner = CliRunner()
    def invoke(*args):
        old = os.getcwd(); os.chdir(shared['root'])
        try: return runner.invoke(cli, [str(a) for a in args], env=shared['in_process'], catch_exceptions=True)
        finally: os.chdir(old)
    return invoke


def check_error(r, code=1):
    "Exit `code`, no traceback, and (for our errors) one line `Error: <one sentence>` on stderr."
    out = r.stdout + r.stderr
    assert r.exception is None or isinstance(r.exception, SystemExit), f'uncaught {type(r.exception).__name__}: {r.exception}\n{out}'
    assert 'Traceback' not in out and r.exit_code == code, f'exit {r.exit_code}, wanted {code}:\n{out}'
    errors = [l for l in r.stderr.splitlines() if l.startswith('Error: ')]
    assert len(errors) == 1 and len(errors[0]) > len('Error: ') + 5, r.stderr
    if code == 1:
        assert not errors[0].startswith('Error: unexpected '), errors[0]  # the last resort for bugs: none of these inputs may reach it
        assert r.stderr.strip().splitlines()[-1] == errors[0], r.stderr
    return errors[0]


def malformed(words, shared) -> list:
    "Values for each argument of `words`: what a careless user types."
    bad = {'query': "select 'abc'::int", 'output': shared['root']/'no'/'such'/'folder'/'out.parquet'}
    files = {'source', 'file', 'input'}
    out = []
    for p in COMMANDS[words].params:
        if not isinstance(p, click.Argument): continue
        v = bad.get(p.name, shared['root']/'binary.csv' if p.name in files else 'no such@@thing~x')
        out += [v] * (2 if p.nargs == -1 else 1)
    return out


def empties(words) -> list:
    return [''] * sum(1 for p in COMMANDS[words].params if isinstance(p, click.Argument))


def required(words) -> bool:
    return any(p.required for p in COMMANDS[words].params if isinstance(p, click.Argument))


@pytest.mark.parametrize('words', [w for w in COMMANDS if required(w)], ids=' '.join)
def test_missing_arguments_are_usage_errors(run, words):
    r = run(*words)
    check_error(r, 2)
    assert 'Missing argument' in r.stderr


@pytest.mark.parametrize('words', [w for w in COMMANDS if required(w)], ids=' '.join)
def test_empty_arguments(run, words):
    check_error(run(*words, *empties(words)))


@pytest.mark.parametrize('words', [w for w in COMMANDS if required(w) or w in {('maintain',)}], ids=' '.join)
def test_malformed_arguments(run, shared, words):
    check_error(run(*words, *malformed(words, shared)))


@pytest.mark.parametrize('words', list(COMMANDS), ids=' '.join)
def test_unknown_option_is_a_usage_error(run, words):
    r = run(*words, '--no-such-option')
    check_error(r, 2)
    assert 'No such option' in r.stderr


@pytest.mark.parametrize('words', [w for w in COMMANDS if w not in CREATES | {('config',), ('deploy', 'simulate')}], ids=' '.join)  # those two need no workspace
def test_a_mistyped_workspace_is_not_created(run, shared, words):
    "Every command that only reads or needs state says there is no workspace, and creates nothing there."
    missing = shared['root']/'mistyped'
    args = empties(words) if words not in NEVER_RUN_BARE else []
    args = ['x' if a == '' else a for a in args]
    msg = check_error(run('-w', missing, *words, *args))
    assert 'no workspace at' in msg and 'workbench init' in msg and not missing.exists()


def test_commands_that_start_a_workspace_refuse_an_unwritable_place(run, shared):
    for words, args in [(('init',), []), (('data', 'commit'), ['credit', shared['root']/'good.csv'])]:
        msg = check_error(run('-w', '/proc/nows', *words, *args))
        assert 'cannot create the workspace at /proc/nows' in msg


@pytest.mark.parametrize('args, message', [
    (['demo', '--months', '0', '--data-only'], 'months must be a whole number'),
    (['data', 'commit', 'credit', 'open.csv'], 'line 2: a quoted value is never closed'),
    (['data', 'commit', 'credit', 'binary.csv'], 'could not read'),
    (['maintain', 'nosuch'], "no table 'nosuch'"),
    (['sql', "select 'abc'::int"], "Could not convert string 'abc'"),
    (['sql', ' '], 'the query is empty'),
    (['--settings', 'binary.csv', 'status'], 'binary.csv'),
    (['--set', 'drift.bins=many', 'status'], 'drift.bins must be a whole number'),
])
def test_named_errors(run, args, message):
    assert message in check_error(run(*args))


def test_an_unexpected_error_is_one_sentence_and_a_file(shared):
    "A bug still gives one sentence, naming the file that holds the traceback; WORKBENCH_DEBUG shows the traceback itself."
    @click.group(cls=_Group)
    def g(): pass
    @g.command()
    def boom(): {}['missing key']
    r = CliRunner().invoke(g, ['boom'], env={'WORKBENCH_DEBUG': None})
    msg = r.stderr.strip()
    assert r.exit_code == 1 and len(msg.splitlines()) == 1 and msg.startswith("Error: unexpected KeyError: 'missing key'; this is a bug"), r.stderr
    saved = Path(re.search(r'traceback is in (\S+)', msg)[1])
    assert "{}['missing key']" in saved.read_text() and 'Traceback' in saved.read_text()
    saved.unlink()
    r = CliRunner().invoke(g, ['boom'], env={'WORKBENCH_DEBUG': '1'})
    assert isinstance(r.exception, KeyError)  # raised as is, for the developer


def test_sql_show_tables_lists_the_workspace(run):
    r = run('sql', 'show tables', '--format', 'json')
    assert r.exit_code == 0 and {'audit', 'datasets'} <= {t['name'] for t in __import__('json').loads(r.stdout)}


def test_pipeline_help_counts_the_ci_steps(run):
    from workbench.pipelines import CI
    words = {1: 'one', 2: 'two', 3: 'three', 4: 'four', 5: 'five', 6: 'six', 7: 'seven'}
    help = ' '.join(run('pipeline', 'run', '--help').stdout.split())
    assert f'ci for all {words[len(CI)]} in turn' in help and all(n in help for n in CI)


def test_batch_rate_is_one_figure(run, shared, tmp_path):
    "The progress bar's rows/s and the summary's are the same number."
    r = run('batch', 'score', shared['model'], 'good.csv', tmp_path/'scores.parquet', '--batch-size', '100')
    assert r.exit_code == 0, r.stderr
    bar = re.findall(r'([\d,]+) rows/s\]', r.stderr)
    summary = re.search(r' at ([\d,]+) rows/s ', r.stdout)[1]
    assert bar and bar[-1] == summary, (r.stderr[-300:], r.stdout)
    assert f"scored {shared['rows']:,} rows" in r.stdout


# Through the installed `workbench` command, as the issue saw them: a few, since each starts a process.

def wb(shared, *args, timeout=120):
    return subprocess.run([str(BIN/'workbench'), *map(str, args)], cwd=shared['root'], env=shared['env'], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize('args, message', [
    (['sql', "select 'abc'::int"], "Could not convert string 'abc'"),
    (['-w', '/proc/nows', 'status'], 'no workspace at /proc/nows'),
    (['--settings', 'binary.csv', 'status'], 'binary.csv'),
    (['batch', 'score', 'MODEL', 'binary.csv', 'out.parquet'], 'binary.csv'),
], ids=['sql', 'workspace', 'settings', 'batch'])
def test_the_reported_cases_through_the_binary(shared, args, message):
    r = wb(shared, *[shared['model'] if a == 'MODEL' else a for a in args])
    assert r.returncode == 1 and 'Traceback' not in r.stderr + r.stdout, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith('Error: ') and message in r.stderr, r.stderr
    assert not (shared['root']/'out.parquet').exists()


def test_a_killed_batch_leaves_nothing_the_next_run_or_maintain_keeps(shared, tmp_path):
    "Kill `batch score` mid-write: its temporary file stays while it could still be in use, then the next run (or `maintain`) removes it."
    import pandas as pd
    out, big = tmp_path/'scores.parquet', tmp_path/'big.csv'
    pd.concat([pd.read_csv(shared['root']/'good.csv')] * 20).to_csv(big, index=False)  # one row a batch: many seconds of writing
    p = subprocess.Popen([str(BIN/'workbench'), 'batch', 'score', shared['model'], big, out, '--batch-size', '1', '--quiet'],
                         cwd=shared['root'], env=shared['env'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not list(tmp_path.glob('.tmp-*')) and time.time() < deadline and p.poll() is None: time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    left = list(tmp_path.glob('.tmp-*'))
    assert len(left) == 1 and not out.exists(), 'the run finished before it could be killed'
    r = wb(shared, 'batch', 'score', shared['model'], 'good.csv', tmp_path/'again.parquet', '--quiet')
    assert r.returncode == 0 and left[0].exists()  # a fresh file may belong to a live writer: it is kept
    old = time.time() - 3600
    os.utime(left[0], (old, old))  # an hour later, nobody holds it open
    assert wb(shared, 'batch', 'score', shared['model'], 'good.csv', tmp_path/'third.parquet', '--quiet').returncode == 0
    assert not left[0].exists() and (tmp_path/'third.parquet').exists() and (tmp_path/'again.parquet').exists()
    # maintain clears the folders past runs wrote into
    stale = tmp_path/'.tmp-0123456789abcdef0123456789abcdef-scores.parquet'
    stale.write_text('left by a killed run'); os.utime(stale, (old, old))
    assert wb(shared, 'maintain').returncode == 0 and not stale.exists() and (tmp_path/'third.parquet').exists()
