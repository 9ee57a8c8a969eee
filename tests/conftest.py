import contextlib, json, os, re, shutil, signal, socket, subprocess, sys, time, types, urllib.error, urllib.request
from pathlib import Path
import pytest
from object_store import seaweedfs  # noqa: F401  (the session's S3-compatible store)

BIN = Path(sys.executable).parent
CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
ARTIFACTS = Path(os.environ.get('WORKBENCH_ARTIFACTS', Path(__file__).parent/'artifacts'))  # browser tests' screenshots


def clean_env(**extra) -> dict:
    "This process's environment without the developer's WORKBENCH_* settings, plus `extra`: what a child process gets."
    return {k: v for k, v in os.environ.items() if not k.startswith('WORKBENCH_')} | extra


def free_port() -> int:
    "A TCP port free on 127.0.0.1 right now."
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def answers(url:str) -> bool:
    "Whether a GET of `url` answers 200 now (no redirects followed; any error is a no)."
    try:
        with urllib.request.urlopen(url, timeout=2) as r: return r.status == 200
    except (OSError, urllib.error.HTTPError): return False


def wait_until_up(url:str, proc:subprocess.Popen, timeout:float=90, output=lambda: '') -> None:
    "Poll `url` until it answers 200; fail the test, with `output()`, if `proc` exits first or `timeout` s pass."
    deadline = time.monotonic() + timeout
    while not answers(url):
        if proc.poll() is not None: pytest.fail(f'{proc.args[0]} exited with {proc.returncode} before {url} answered:\n{output()}')
        if time.monotonic() > deadline: pytest.fail(f'{url} did not answer within {timeout:g} s:\n{output()}')
        time.sleep(0.1)


def stop(proc:subprocess.Popen, timeout:float=60) -> int:
    "SIGTERM `proc` (its process group if it leads one), wait for it, kill it if it hangs; returns its exit code."
    if proc.poll() is None:
        if os.getpgid(proc.pid) == proc.pid: os.killpg(proc.pid, signal.SIGTERM)
        else: proc.send_signal(signal.SIGTERM)
        try: proc.wait(timeout)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait()
    return proc.returncode


@contextlib.contextmanager
def started(cmd:list, url:str, timeout:float=90, log:Path|None=None, **popen):
    "Run `cmd`, wait until `url` answers (failing loudly with its output otherwise), yield the process, stop it after."
    out = open(log, 'w+') if log else None
    proc = subprocess.Popen(list(map(str, cmd)), stdout=out or subprocess.DEVNULL, stderr=subprocess.STDOUT if out else subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, **popen)
    try:
        wait_until_up(url, proc, timeout, output=lambda: Path(log).read_text(errors='replace')[-4000:] if log else '(no log kept)')
        yield proc
    finally:
        stop(proc)
        if out: out.close()


@pytest.fixture
def env(tmp_path):
    "Environment for CLI runs: a workspace in tmp_path, no settings from the developer's shell."
    return clean_env(WORKBENCH_HOME=str(tmp_path/'ws'), WORKBENCH_ACTOR='tester')


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
def demo_run(tmp_path_factory):
    "`workbench demo` (smaller) run once for every pytest-xdist worker: its output, its time, and its workspace as the demo left it (read it, never change it)."
    from filelock import FileLock
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get('PYTEST_XDIST_WORKER') else base  # the run's folder, above the workers' own
    root, done = shared/'demo'/'ws', shared/'demo.json'
    with FileLock(str(shared/'demo.lock')):
        if not done.exists():
            t0 = time.perf_counter()
            r = subprocess.run([str(BIN/'workbench'), 'demo', '--months', '6', '--rows-per-month', '1000', '--drift-month', '5'],
                               env=clean_env(WORKBENCH_HOME=str(root)), capture_output=True, text=True)
            assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
            done.write_text(json.dumps({'out': r.stdout, 'took': time.perf_counter() - t0}))
    run = json.loads(done.read_text())
    return types.SimpleNamespace(ws=root, out=run['out'], took=run['took'])


@pytest.fixture(scope='session')
def demo_ws(demo_run, tmp_path_factory):
    "A copy of the demo's workspace (runs, a champion with its lineage, served traffic, drift) for the tests that act on it; its MLflow artifacts stay where the demo wrote them."
    return shutil.copytree(demo_run.ws, tmp_path_factory.mktemp('dash')/'ws')


KEYS = Path(os.environ.get('TMPDIR', '/tmp'))/f'workbench-test-keys-{os.getpid()}'  # the test approvers' SSH keys


def approver_key(ws, who:str) -> Path:
    "An SSH key for `who`, listed in `ws`'s allowed signers, as a team lists its approvers' keys."
    from workbench import approvals, signatures
    key = KEYS/who
    if not key.exists(): signatures.generate_key(key)
    f, pub = approvals.signers_file(ws), (KEYS/f'{who}.pub').read_text().strip()
    if isinstance(f, str): listed = ws.read_bytes('allowed_signers').decode() if ws.exists('allowed_signers') else ''
    else: listed = f.read_text() if f.exists() else ''  # the file itself (on object storage: the store's, read now)
    if f"{who} {pub}\n" not in listed: approvals.add_signer(ws, who, pub)
    return key


def approve(ws, ref:str, who:str, comment:str=''):
    "`who` approves `ref`, signed with their key."
    from workbench import registry
    return registry.approve(ws, ref, who, comment, key=approver_key(ws, who))


from tracking_server import mlflow_server, postgres  # noqa: E402,F401  PostgreSQL for the session, an mlflow server on it per module


# the dashboard in a real browser, for tests/test_dashboard*.py
@pytest.fixture(scope='module')
def dashboard(demo_ws, tmp_path_factory):
    "The dashboard on the demo's workspace (a module's own server: the registry test promotes on it), admin token `let-me-in`."
    url = f'http://127.0.0.1:{free_port()}'
    with started([BIN/'workbench', '--workspace', demo_ws, 'dashboard', '--port', url.rsplit(':', 1)[1]], url + '/audit', timeout=50,
                 log=tmp_path_factory.mktemp('dashboard')/'dashboard.log', env=clean_env(WORKBENCH_ADMIN_TOKEN='let-me-in')):
        yield url


def visit(browser, url, text, shot, timeout=20_000):
    page = browser.new_page(viewport={'width': 1400, 'height': 1000})
    page.goto(url)
    page.get_by_text(text, exact=False).first.wait_for(timeout=timeout)
    page.get_by_text(re.compile(r'^Loading .+…$')).first.wait_for(state='hidden', timeout=timeout)  # what a page adds once drawn
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS/f'{shot}.png'), full_page=True)
    return page


def champion(demo_ws) -> int:
    "The demo's champion: version 2 if its canary promoted the retrained challenger, else version 1 (a rollback)."
    from workbench import registry
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    return registry.get(open_workspace(demo_ws, load_settings(env={})), 'credit-default@champion').version


def canary_promoted(demo_ws) -> bool:
    "Whether the demo's canary promoted its challenger (the audit says; the champion now may be a test's promotion)."
    from workbench import audit
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    return 'canary.promote' in set(audit.log(open_workspace(demo_ws, load_settings(env={})), 10_000).action)


def no_serious_violations(page, name):
    "axe-core (4.12, shipped inside axe-playwright-python) finds no serious or critical violation on the page."
    from axe_playwright_python.sync_playwright import Axe
    bad = [v for v in Axe().run(page).response['violations'] if v['impact'] in ('serious', 'critical')]
    assert not bad, f"{name}: " + '; '.join(f"{v['id']} ({v['impact']}, {len(v['nodes'])}x): {v['help']}, e.g. "
                                              f"{v['nodes'][0]['html'][:150]}" for v in bad)


def downloaded(page, label) -> str:
    "The text of the file the button `label` downloads."
    with page.expect_download(timeout=20_000) as d: page.get_by_text(label, exact=True).first.click()
    return open(d.value.path(), encoding='utf-8').read()
