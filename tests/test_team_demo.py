"The demo on a team's services (workspace on SeaweedFS, MLflow a server on PostgreSQL) and on a folder: the same state."
import json, subprocess
import pytest
from conftest import BIN, clean_env

DEMO = ['demo', '--months', '6', '--rows-per-month', '1000', '--drift-month', '5']  # as the `demo_run` fixture


@pytest.fixture(scope='module')
def team_demo(seaweedfs, mlflow_server, tmp_path_factory):
    "The environment of a machine whose workspace ran the demo on the object store, tracked by the mlflow server."
    home = tmp_path_factory.mktemp('team-demo')
    env = clean_env(**seaweedfs | dict(WORKBENCH_HOME=f"{seaweedfs['WORKBENCH_HOME']}/team-demo"), HOME=str(home),
                    XDG_STATE_HOME=str(home/'state'), WORKBENCH_WORKSPACE_TRACKING_URI=mlflow_server.url)
    r = subprocess.run([str(BIN/'workbench'), *DEMO], env=env, capture_output=True, text=True, timeout=900, cwd=home)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return env


def wb(env, *args) -> str:
    r = subprocess.run([str(BIN/'workbench'), *args], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


def sql(env, query) -> list: return json.loads(wb(env, 'sql', '--format', 'json', query))


ACTIONS = ('dataset.commit', 'model.register', 'model.approve', 'model.promote', 'pipeline.run')

def state(env) -> dict:
    "What the demo left, as read by `env`'s machine through the CLI."
    assert 'intact' in wb(env, 'audit', 'verify')
    return dict(
        datasets=sql(env, "select name, count(*) as versions from datasets group by name order by name"),
        events=sql(env, "select action, count(*) as n from audit where action in "
                        f"({', '.join(repr(a) for a in ACTIONS)}) group by action order by action"),
        champion=json.loads(sql(env, "select after from audit where action = 'model.promote' order by seq desc limit 1")
                            [0]['after'])['champion'],
        served=sql(env, "select distinct variant from predictions order by variant"),  # how much: until the canary decides
        drifted=sql(env, 'select distinct "window", feature from drift where drifted order by "window", feature'),
        pipelines=sql(env, "select pipeline, status, notebook from pipeline_runs order by started"))


def test_the_demo_leaves_the_same_state_on_a_team_s_services(demo_run, team_demo, tmp_path):
    folder = state(clean_env(WORKBENCH_HOME=str(demo_run.ws)))
    team = state(team_demo | dict(XDG_STATE_HOME=str(tmp_path/'state'), HOME=str(tmp_path)))  # another machine
    assert team['drifted'], "the demo shifts month 5: some feature must drift"
    assert team['champion'] >= 1 and team['served']
    assert all(p['notebook'].startswith('s3://') for p in team['pipelines']), team['pipelines']
    for k in ('datasets', 'events', 'champion', 'served', 'drifted'): assert team[k] == folder[k], k
    assert [(p['pipeline'], p['status']) for p in team['pipelines']] == \
           [(p['pipeline'], p['status']) for p in folder['pipelines']]
