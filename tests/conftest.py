import os, shutil, subprocess, sys
from pathlib import Path
import pytest

BIN = Path(sys.executable).parent
CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
ARTIFACTS = Path(os.environ.get('WORKBENCH_ARTIFACTS', Path(__file__).parent/'artifacts'))  # browser tests' screenshots


@pytest.fixture
def env(tmp_path):
    "Environment for CLI runs: a workspace in tmp_path, no settings from the developer's shell."
    e = {k: v for k, v in os.environ.items() if not k.startswith('WORKBENCH_')}
    return e | {'WORKBENCH_HOME': str(tmp_path/'ws'), 'WORKBENCH_ACTOR': 'tester'}


@pytest.fixture
def wb(tmp_path, env):
    "Run the installed `workbench` command in tmp_path; returns the CompletedProcess."
    def run(*args, check=True, timeout=300):
        r = subprocess.run([str(BIN/'workbench'), *map(str, args)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0: raise AssertionError(f"workbench {' '.join(map(str, args))} failed:\n{r.stdout}\n{r.stderr}")
        return r
    return run


@pytest.fixture
def ws(tmp_path):
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    return open_workspace(tmp_path/'ws', load_settings(env={}))


@pytest.fixture(scope='session')
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get('CI'): pytest.fail(f'no Chromium at {CHROMIUM}: apt-get install -y chromium')
        pytest.skip('no Chromium here (apt-get install -y chromium)')
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=['--no-sandbox'])
        yield b
        b.close()


@pytest.fixture(scope='session')
def demo_ws(tmp_path_factory):
    "The `workbench demo` workspace (smaller): runs, a champion with its lineage, served traffic, drift."
    root = tmp_path_factory.mktemp('dash')/'ws'
    env = {k: v for k, v in os.environ.items() if not k.startswith('WORKBENCH_')} | {'WORKBENCH_HOME': str(root)}
    subprocess.run([str(BIN/'workbench'), 'demo', '--months', '6', '--rows-per-month', '1000', '--drift-month', '5'], env=env, check=True, capture_output=True)
    return root
