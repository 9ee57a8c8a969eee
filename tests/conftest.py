import os, subprocess, sys
from pathlib import Path
import pytest

BIN = Path(sys.executable).parent


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
