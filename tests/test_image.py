"Issue 21: the serving bundle builds into OCI images with podman, with no network, and they run: both protocols, read-only, non-root, draining on SIGTERM; the Lambda variant answers API Gateway events."
import json, os, re, shutil, subprocess, sys, threading, time, urllib.request
from pathlib import Path
import numpy as np, pandas as pd
import pytest
from conftest import BIN, clean_env, free_port
from test_bundle import LAMBDA, http_api_event, rest_event
from workbench import data, deployed

HERE = Path(__file__).parent
MODEL = 'credit-default'


def sh(*cmd, timeout=900, check=True, env=None, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, env=env, **kw)
    if check: assert r.returncode == 0, f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope='session')
def podman(tmp_path_factory):
    "The podman command with this machine's adjustments (runc; no default ulimits): see ../shared/notes/containers.md."
    missing = [c for c in ('podman', 'runc', 'debootstrap') if shutil.which(c) is None]
    if missing:
        if os.environ.get('CI'): pytest.fail(f"{', '.join(missing)} missing: apt-get install -y podman buildah runc debootstrap")
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install -y podman buildah runc debootstrap)")
    conf = tmp_path_factory.mktemp('podman')/'containers.conf'
    conf.write_text('[containers]\ndefault_ulimits = []\n')
    env = clean_env(CONTAINERS_CONF=str(conf))
    return lambda *args, **kw: sh('podman', '--runtime', 'runc', *args, env=env, **kw)


def mirror() -> str:
    "The Debian mirror this machine's apt uses (`URIs:` of a deb822 source, or a `deb` line's)."
    for f in [*Path('/etc/apt/sources.list.d').glob('*'), Path('/etc/apt/sources.list')]:
        for line in (f.read_text().splitlines() if f.is_file() else []):
            urls = [w for w in line.split() if w.startswith(('http://', 'https://'))]
            if line.startswith(('URIs:', 'deb ')) and urls and re.search(r'/debian/?$', urls[0]): return urls[0]
    return 'http://deb.debian.org/debian'


@pytest.fixture(scope='session')
def base_image(podman, tmp_path_factory):
    "A Debian bookworm base with Python 3.11 and venv, made here with debootstrap (no registry of images is reachable) and removed after the run."
    tag = f'localhost/workbench-test-base:{os.getpid()}'
    root = tmp_path_factory.mktemp('base')/'rootfs'
    sh('debootstrap', '--variant=minbase', '--include=python3,python3-venv,ca-certificates', 'bookworm', root, mirror(), timeout=900)
    for junk in ('usr/share/doc', 'usr/share/man', 'usr/share/locale', 'var/cache/apt', 'var/lib/apt/lists'):
        shutil.rmtree(root/junk, ignore_errors=True)
    tar = subprocess.Popen(['tar', '-C', str(root), '-c', '.'], stdout=subprocess.PIPE)
    podman('import', '-', tag, stdin=tar.stdout)
    assert tar.wait() == 0
    shutil.rmtree(root, ignore_errors=True)
    yield tag
    podman('rmi', '-f', tag, check=False)


@pytest.fixture(scope='module')
def bundle(demo_ws, tmp_path_factory):
    "The demo champion's bundle with its wheelhouse, exported through the CLI."
    folder = tmp_path_factory.mktemp('image')/'bundle'
    sh(BIN/'workbench', 'serve', '--export-bundle', folder, '--wheelhouse', f'{MODEL}@champion', env=clean_env(WORKBENCH_HOME=str(demo_ws)))
    return folder


@pytest.fixture(scope='module')
def images(podman, base_image, bundle):
    "The server image and the Lambda image, built with no network from the bundle on the base; removed after the module."
    tags = {t: f'localhost/workbench-test-{t}:{os.getpid()}' for t in ('server', 'lambda')}
    took = {}
    for target, tag in tags.items():
        t0 = time.perf_counter()
        podman('build', '--format', 'docker', '--network=none', '--build-arg', f'BASE={base_image}', '--target', target, '-t', tag, bundle)
        took[target] = time.perf_counter() - t0
    print(f"\nimage builds (no network): server {took['server']:.0f} s, then lambda {took['lambda']:.0f} s")
    yield tags
    podman('rmi', '-f', *tags.values(), check=False)


@pytest.fixture(scope='module')
def applications(demo_ws) -> pd.DataFrame:
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    return data.load(open_workspace(demo_ws, load_settings(env={}), create=False), 'applications')


def get(url:str):
    with urllib.request.urlopen(url, timeout=10) as r: return r.status, r.read()


def post(url:str, body:dict, timeout=60):
    req = urllib.request.Request(url, json.dumps(body).encode(), {'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=timeout) as r: return r.status, json.loads(r.read())


class Container:
    "The server image running with --network=host on a free port, read-only, with no capabilities."
    def __init__(self, podman, image:str):
        self.podman, self.port = podman, free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        t0 = time.perf_counter()
        self.id = podman('run', '-d', '--network=host', '--read-only', '--cap-drop=ALL', '--security-opt=no-new-privileges',
                         '-e', f'PORT={self.port}', '-e', 'HOST=127.0.0.1', image).stdout.strip()
        while time.perf_counter() - t0 < 60:
            try:
                if get(self.url + '/v2/health/ready')[0] == 200: break
            except OSError: time.sleep(0.05)
        else: pytest.fail(f"the container was not ready in 60 s:\n{self.logs()}")
        self.ready_seconds = time.perf_counter() - t0

    def logs(self) -> str:
        r = self.podman('logs', self.id, check=False)
        return r.stdout + r.stderr

    def remove(self): self.podman('rm', '-f', '-t', '0', self.id, check=False)


def test_the_server_image(podman, images, bundle, applications):
    info = json.loads(podman('image', 'inspect', images['server']).stdout)[0]
    size_mb = info['Size'] / 1e6
    assert info['Config']['User'] == '10001:10001' and info['Config']['Cmd'] == ['python', 'app.py'], info['Config']
    assert '/v2/health/ready' in ' '.join(info['Healthcheck']['Test'])  # podman shows it beside Config
    c = Container(podman, images['server'])
    try:
        print(f"\nserver image {size_mb:.0f} MB; ready {c.ready_seconds:.2f} s after `podman run`")
        assert size_mb < 600 and c.ready_seconds < 10  # targets 600 MB and 5 s; 10 s leaves room for a loaded CI machine
        model = deployed.OnnxModel((bundle/'model.onnx').read_bytes())
        df = applications[[s['name'] for s in model.signature]].head(50)
        status, answer = post(c.url + '/invocations', {'dataframe_split': json.loads(df.to_json(orient='split', index=False))})
        assert status == 200 and answer['predictions'] == model.predict(df).tolist()
        tensors = [{'name': n, 'shape': [len(df), 1], 'datatype': 'BYTES' if df[n].dtype == object else 'FP64',
                    'data': [None if pd.isna(v) else v for v in df[n].tolist()]} for n in df.columns]
        status, answer = post(f'{c.url}/v2/models/{MODEL}/infer', {'inputs': tensors})
        probabilities = next(o for o in answer['outputs'] if o['name'] == 'probabilities')
        np.testing.assert_allclose(np.reshape(probabilities['data'], (len(df), 2)), model.predict_proba(df), rtol=0, atol=1e-12)
        assert podman('healthcheck', 'run', c.id, check=False).returncode == 0  # the image's own HEALTHCHECK
        whoami = podman('exec', c.id, 'python', '-c', 'import os; print(os.getuid()); open("/app/x", "w")', check=False)
        assert whoami.stdout.strip() == '10001' and 'Read-only file system' in whoami.stderr
    finally: c.remove()


def test_sigterm_answers_what_is_in_flight(podman, images, bundle, applications, tmp_path):
    "SIGTERM under load: the request being scored is answered in full, no request fails with a 5xx, the server exits cleanly."
    model = deployed.OnnxModel((bundle/'model.onnx').read_bytes())
    df = applications[[s['name'] for s in model.signature]]
    big = pd.concat([df] * (10_000 // len(df) + 1)).head(10_000)  # serving.max_rows: the largest request allowed
    rows_file = tmp_path/'rows.json'
    rows_file.write_text(df.head(200).to_json(orient='records'))
    c = Container(podman, images['server'])
    try:
        out = tmp_path/'load.json'
        gen = subprocess.Popen([sys.executable, str(HERE/'serving_load.py'), c.url, str(rows_file), str(out), '--requests', '1000000',
                                '--concurrency', '8', '--prefix', 'img', '--stop-on-error'], env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        answer = {}
        big_body = {'dataframe_split': json.loads(big.to_json(orient='split', index=False))}
        scorer = threading.Thread(target=lambda: answer.update(zip(('status', 'body'), post(c.url + '/invocations', big_body, timeout=120))))
        scorer.start()
        deadline = time.monotonic() + 30
        while not any(line.startswith('workbench_in_flight_requests ') and float(line.split()[1]) >= 1
                      for line in get(c.url + '/metrics')[1].decode().splitlines()):
            assert time.monotonic() < deadline, 'the large request never showed as in flight'
            time.sleep(0.005)
        podman('kill', '--signal', 'TERM', c.id)
        scorer.join(60)
        code = int(podman('wait', c.id, timeout=60).stdout.strip())
        stdout, stderr = gen.communicate(timeout=120)
        res = json.loads(out.read_text())
        print(f"\nunder load ({res['sent']} requests, {res['rps']:.0f}/s): SIGTERM answered the {len(big)}-row request in flight; "
              f"statuses {res['statuses']}, connection errors after the stop {res['errors']}; exit code {code}")
        assert answer.get('status') == 200 and answer['body']['predictions'] == model.predict(big).tolist()
        assert set(res['statuses']) == {'200'} and res['statuses']['200'] > 100
        assert code in (0, 143) and 'Traceback' not in c.logs(), c.logs()
    finally: c.remove()


def test_the_lambda_image(podman, images, bundle, applications):
    info = json.loads(podman('image', 'inspect', images['lambda']).stdout)[0]['Config']
    assert (info['Entrypoint'], info['Cmd']) == (['python', '-m', 'awslambdaric'], ['app.handler']), info
    model = deployed.OnnxModel((bundle/'model.onnx').read_bytes())
    df = applications[[s['name'] for s in model.signature]].head(5)
    split = json.dumps({'dataframe_split': json.loads(df.to_json(orient='split', index=False))})
    events = [rest_event('POST', '/invocations', split), http_api_event('POST', '/invocations', split)]
    script = LAMBDA.replace('sys.argv[1]', "'/app/app.py'") + "\nimport awslambdaric.bootstrap"  # the entry point imports too
    r = podman('run', '--rm', '-i', '--network=none', '--read-only', '--entrypoint', 'python', images['lambda'], '-c', script, input=json.dumps(events))
    for answer in json.loads(r.stdout.splitlines()[-1]):
        assert answer['statusCode'] == 200 and json.loads(answer['body'])['predictions'] == model.predict(df).tolist(), answer
