"The `workbench` command as a user meets it: help, init, settings, demo, sql, status and its errors."
import json, re, subprocess, time
from conftest import BIN


def test_help_is_instant(tmp_path):
    subprocess.run([str(BIN/'workbench'), '--help'], capture_output=True)  # warm the file cache
    t0 = time.perf_counter()
    r = subprocess.run([str(BIN/'workbench'), '--help'], capture_output=True, text=True)
    took = time.perf_counter() - t0
    assert r.returncode == 0 and 'data' in r.stdout and 'audit' in r.stdout
    assert took < 0.5, f'workbench --help took {took:.2f} s'


def test_init_writes_settings_and_workspace(wb, tmp_path):
    out = wb('init').stdout
    assert (tmp_path/'settings.ini').is_file() and (tmp_path/'ws'/'tables'/'audit').is_dir()
    assert f"sqlite:///{tmp_path/'ws'/'mlflow.db'}" in out
    text = (tmp_path/'settings.ini').read_text()
    assert '[gates]' in text and '[drift]' in text and '[canary]' in text and '[alerts]' in text and '[promotion]' in text
    wb('init')  # again: nothing breaks, the file is kept
    assert (tmp_path/'settings.ini').read_text() == text


def test_settings_precedence(wb, tmp_path, env):
    (tmp_path/'settings.ini').write_text('[workspace]\npath = ws\n[drift]\npsi_threshold = 0.3\nbins = 12\n')
    env['WORKBENCH_DRIFT_BINS'] = '15'
    out = wb('--set', 'canary.share=0.25', 'config').stdout
    line = lambda key: next(l for l in out.splitlines() if l.split()[0] == key).split()
    assert line('drift.psi_threshold')[1:] == ['0.3', str(tmp_path/'settings.ini')]
    assert line('drift.bins')[1:] == ['15', 'WORKBENCH_DRIFT_BINS']
    assert line('canary.share')[1:] == ['0.25', 'flag'] and line('gates.min_auc')[1:] == ['0.7', 'default']


def test_bad_settings_are_named(wb, tmp_path, env):
    r = wb('--set', 'drift.bins=many', 'status', check=False)
    assert r.returncode == 1 and 'drift.bins must be a whole number' in r.stderr
    r = wb('--set', 'drift.nope=1', 'status', check=False)
    assert r.returncode == 1 and 'unknown setting drift.nope' in r.stderr
    r = wb('--set', 'nonsense', 'status', check=False)
    assert r.returncode == 2 and 'SECTION.KEY=VALUE' in r.stderr
    (tmp_path/'settings.ini').write_text('[drift]\npsi_treshold = 0.3\n[workspace]\n')
    r = wb('status', check=False)
    assert r.returncode == 1 and 'unknown setting drift.psi_treshold' in r.stderr and 'psi_threshold' in r.stderr
    env['WORKBENCH_GATES_MIN_AUC'] = 'high'
    (tmp_path/'settings.ini').unlink()
    r = wb('status', check=False)
    assert r.returncode == 1 and 'gates.min_auc must be a' in r.stderr and "'high'" in r.stderr and 'WORKBENCH_GATES_MIN_AUC' in r.stderr
    assert not (tmp_path/'ws'/'tables'/'audit').exists()  # nothing was written


def test_workspace_location_precedence(wb, tmp_path, env):
    (tmp_path/'settings.ini').write_text('[workspace]\npath = from_settings\n')
    del env['WORKBENCH_HOME']
    assert f"workspace ready at {tmp_path/'from_settings'}" in wb('init').stdout
    assert str(tmp_path/'from_settings') in wb('status').stdout
    env['WORKBENCH_HOME'] = str(tmp_path/'from_env')
    assert f"workspace ready at {tmp_path/'from_env'}" in wb('init').stdout
    assert f"workspace ready at {tmp_path/'from_flag'}" in wb('--workspace', tmp_path/'from_flag', 'init').stdout
    (tmp_path/'settings.ini').unlink(); del env['WORKBENCH_HOME']
    sub = tmp_path/'elsewhere'; sub.mkdir()
    r = subprocess.run([str(BIN/'workbench'), 'data', 'log'], cwd=sub, env=env, capture_output=True, text=True)
    assert r.returncode == 1 and f"no workspace at {sub/'workspace'}" in r.stderr and not (sub/'workspace').exists()


def test_read_only_commands_never_create_a_workspace(wb, tmp_path):
    "A mistyped --workspace is named as missing, with how to create one, and nothing is created there."
    wb('init')
    for args in [['status'], ['sql', 'select 1'], ['data', 'log'], ['runs', 'list'], ['registry', 'list'], ['audit', 'verify']]:
        r = wb('-w', tmp_path/'wokspace', *args, check=False)
        assert r.returncode == 1 and r.stderr.startswith(f"Error: no workspace at {tmp_path/'wokspace'}") and 'workbench init' in r.stderr, r.stderr
    assert not (tmp_path/'wokspace').exists()
    tables = json.loads(wb('sql', 'show tables', '--format', 'json').stdout)
    assert [t['name'] for t in tables] == ['audit', 'datasets']  # SHOW TABLES lists the workspace's tables


def test_demo_commits_versions_and_is_idempotent(wb):
    out = wb('demo', '--months', '6', '--rows-per-month', '150', '--drift-month', '5', '--data-only').stdout
    assert 'credit@' in out and 'applications@' in out and 'labels@' in out and 'audit chain intact' in out
    log = json.loads(wb('data', 'log', '--format', 'json').stdout)
    assert sorted({r['ref'].split('@')[0] for r in log}) == ['applications', 'credit', 'labels']
    wb('demo', '--months', '6', '--rows-per-month', '150', '--drift-month', '5', '--data-only')
    assert json.loads(wb('data', 'log', '--format', 'json').stdout) == log  # nothing new
    diff = wb('data', 'diff', 'applications~2', 'applications~1').stdout  # month 4 -> month 5, the first drifted one
    assert "new value 'bnpl'" in diff and 'income.mean' in diff  # the injected drift shows
    r = wb('demo', '--months', '0', '--data-only', check=False)
    assert r.returncode == 1 and 'months must be a whole number' in r.stderr


def test_sql_formats_params_and_errors(wb):
    wb('demo', '--months', '2', '--rows-per-month', '50', '--data-only')
    q = 'select name, rows from datasets where rows >= $min order by name, rows'
    assert json.loads(wb('sql', q, '-p', 'min=60', '--format', 'json').stdout) == [{'name': 'credit', 'rows': 100}]
    assert wb('sql', q, '-p', 'min=0', '--format', 'csv').stdout.splitlines()[0] == 'name,rows'
    assert 'credit' in wb('sql', q, '-p', 'min=0').stdout
    r = wb('sql', 'select * from credits', check=False)
    assert r.returncode == 1 and 'credits does not exist' in r.stderr and 'tables here: audit, datasets' in r.stderr
    r = wb('sql', 'selec 1', check=False)
    assert r.returncode == 1 and 'bad query' in r.stderr and 'Traceback' not in r.stderr
    r = wb('sql', "select * from datasets where name = $name", '-p', "name=x' or '1'='1", '--format', 'json')
    assert json.loads(r.stdout) == []  # parameters are values, never SQL


def test_status_and_maintain(wb):
    wb('demo', '--months', '2', '--rows-per-month', '50', '--data-only')
    out = wb('status').stdout
    assert 'datasets    2 (3 versions)' in out and 'audit chain intact: 3 events' in out
    assert 'audit: compacted' in wb('maintain').stdout
    assert out.split('audit       ')[1] == wb('status').stdout.split('audit       ')[1]  # same chain after compaction


def test_demo_runs_the_lifecycle(demo_run, wb, env):
    "The README's main job: data, validation, two candidates, gates, registry, an approved champion, serving, drift found in its month, retraining, a canary."
    out, ws = demo_run.out, demo_run.ws
    env['WORKBENCH_HOME'] = str(ws)
    for stage in ['[1/7] data', '[2/7] validate', '[3/7] train two candidates', '[4/7] evaluate', 'validate  ok', 'train     ok', 'evaluate  ok',
                  '[5/7] serve credit-default/1', '3000 requests answered', '[6/7] monitor credit-default/1',
                  '2025-04  drifted: -', '2025-05  drifted: income, credit_score, product', '2025-06  drifted: income, credit_score, product', 'estimated AUC by month from the scores alone, before any label (held-out 0.',
                  'approval-rate gap by gender and month (fairness.max_approval_gap 0.10): 2025-04 0.',
                  'late labels ingested; realized AUC by month', 'months later', "inside the estimate's band",
                  '[7/7] the drift alert (2025-05, 2025-06) calls for retraining on all 6 months']:
        assert stage in out, stage
    assert 'credit-default/1 is the champion (approved by demo-reviewer)' in out and 'audit chain intact' in out
    assert re.search(r'before any label \(held-out 0\.\d{3}\): 2025-04 0\.\d{3}( ALERT)?, 2025-05 0\.\d{3}( ALERT)?, 2025-06 0\.\d{3}( ALERT)?\n', out), out
    assert re.search(r'realized AUC by month \(held-out 0\.\d{3}\): 2025-04 0\.\d{3} \(\d+ labels\)', out), out
    assert re.search(r'by month, beside its estimate from the day.s scores: 2025-04 0\.\d{3} \(estimated .*\), 2025-05 .*, 2025-06 .*; \d of 3 inside', out), out
    assert 'rows ' not in out.split('[6/7]')[1].split('[7/7]')[0]  # every window a month the applications were made in, not rows scored in seconds
    assert re.search(r'canary: \d+ of \d+ requests went to credit-default/2; canary\.(promote|rollback) by canary', out), out
    assert (ws/'models'/'credit-default-1.onnx').stat().st_size > 1000
    versions = json.loads(wb('registry', 'list', '--format', 'json').stdout)
    assert [v['version'] for v in versions] == [3, 2, 1] and all(v['gates_passed'] for v in versions)  # 3: the pruned candidate
    assert re.search(r'a cheaper candidate: credit-default/3: prune of credit-default/[12] .*gates PASSED', out), out
    assert sorted(a for v in versions for a in v['aliases']) == ['champion']  # the canary decided: no challenger is left
    logged = json.loads(wb('sql', "select variant, count(*) as n from predictions group by 1 order by 1", '--format', 'json').stdout)
    assert sum(r['n'] for r in logged) >= 3000 + 1 and {r['variant'] for r in logged} == {'canary', 'champion'}
    assert [r['pipeline'] for r in json.loads(wb('pipeline', 'list', '--format', 'json').stdout)] == ['promote', 'evaluate', 'train', 'validate'] * 2
    runs = json.loads(wb('runs', 'list', '--limit', '0', '--format', 'json').stdout)
    assert {r['experiment'] for r in runs} == {'credit-default'}  # the demo names its experiment; the notebooks' defaults play no part
    assert all(re.fullmatch(r'[0-9a-f]{40}(\+dirty)?|workbench==.+', r['code_version'] or '') for r in runs), [r['code_version'] for r in runs]
    import inspect, mlflow, workbench.dashboard
    example = re.search(r'placeholder="(metrics\.[^"]+)"', inspect.getsource(workbench.dashboard))[1]  # the Experiments page's filter example
    c = mlflow.MlflowClient(f"sqlite:///{ws/'mlflow.db'}")
    assert c.search_runs([c.get_experiment_by_name('credit-default').experiment_id], example), f'{example} matches no run of the demo'
    assert demo_run.took < 180, f'workbench demo took {demo_run.took:.0f} s'
