"Test services for a team's tracking: a throwaway PostgreSQL 15 cluster and an `mlflow server` on it (issue 20)."
import glob, os, re, shutil, signal, subprocess, tempfile
from dataclasses import dataclass
from pathlib import Path
import pytest
from conftest import BIN, clean_env, free_port, started

READER, READER_PASSWORD = 'reader', 'reader-secret'  # a read-only role that must give its password (scram)


def pg_bin() -> Path|None:
    "The newest PostgreSQL server's binaries folder (Debian keeps them off PATH), or None."
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


@dataclass
class Postgres:
    port: int; socket: Path; bin: Path; data: Path
    def uri(self, db='postgres', user='postgres') -> str: return f'postgresql://{user}@127.0.0.1:{self.port}/{db}'
    def psql(self, sql:str, db='postgres') -> str:
        "Run `sql` as the superuser through the socket; returns psql's output."
        r = subprocess.run(_as_owner(self.bin/'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', self.socket, '-p', self.port,
                                     '-U', 'postgres', '-d', db, '-At', '-c', sql), capture_output=True, text=True, timeout=60)
        if r.returncode: raise AssertionError(f'psql failed: {r.stderr}')
        return r.stdout


def _as_owner(*cmd) -> list:
    "`cmd` run as the cluster's owner: the `postgres` user when we are root (PostgreSQL refuses root), else ourselves."
    return [*(['runuser', '-u', 'postgres', '--'] if os.geteuid() == 0 else []), *map(str, cmd)]


HBA = f"""local all all trust
host all {READER} 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
"""


@pytest.fixture(scope='session')
def postgres():
    "A PostgreSQL cluster on a free port of 127.0.0.1 (superuser `postgres`, trusted; role `reader` with a password)."
    bin = pg_bin()
    if bin is None:
        if os.environ.get('CI'): pytest.fail('no PostgreSQL server under /usr/lib/postgresql: apt-get install -y postgresql')
        pytest.skip('no PostgreSQL server here (apt-get install -y postgresql)')
    root = Path(tempfile.mkdtemp(prefix='workbench-pg-'))  # not under pytest's folder, which only we may enter
    if os.geteuid() == 0: shutil.chown(root, 'postgres', 'postgres')
    data, sock, port = root/'data', root/'sock', free_port()
    subprocess.run(_as_owner('mkdir', sock), check=True)
    try:
        subprocess.run(_as_owner(bin/'initdb', '-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync'),
                       check=True, capture_output=True, timeout=120)
        (data/'pg_hba.conf').write_text(HBA)
        opts = f"-p {port} -k {sock} -h 127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        r = subprocess.run(_as_owner(bin/'pg_ctl', '-D', data, '-l', root/'log', '-o', opts, '-w', '-t', '60', 'start'),
                           capture_output=True, text=True, timeout=90)
        if r.returncode: pytest.fail(f"PostgreSQL did not start: {r.stdout}{r.stderr}{(root/'log').read_text(errors='replace')[-2000:]}")
        pg = Postgres(port, sock, bin, data)
        pg.psql(f"create role {READER} login password '{READER_PASSWORD}'")
        yield pg
    finally:
        subprocess.run(_as_owner(bin/'pg_ctl', '-D', data, '-m', 'immediate', '-w', 'stop'), capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def create_database(pg:Postgres, name:str) -> str:
    "A new database `name` whose tables (made by its owner `postgres`) `reader` may only read; returns its URI."
    pg.psql(f'create database "{name}"')
    pg.psql(f'grant connect on database "{name}" to {READER}; '
            f'alter default privileges for role postgres in schema public grant select on tables to {READER}', db=name)
    return pg.uri(name)


@dataclass
class MlflowServer:
    url: str; db: str; reader_db: str # the tracking URI, its backend store (superuser) and the read-only URI
    artifacts: str # where the server keeps artifacts: a folder, or an `s3://bucket/prefix` URL on the test store
    store: dict|None = None # the AWS_* variables of that store, when on it

    def artifact_files(self) -> list:
        "Paths (relative to `artifacts`) of every artifact the server stored."
        if not self.store: return [str(p.relative_to(self.artifacts)) for p in Path(self.artifacts).rglob('*') if p.is_file()]
        from pyarrow.fs import FileSelector, FileType
        from workbench.workspace import s3_filesystem
        fs, base = s3_filesystem(self.store), self.artifacts.removeprefix('s3://')
        return [i.path.removeprefix(base + '/') for i in fs.get_file_info(FileSelector(base, recursive=True, allow_not_found=True))
                if i.type == FileType.File]


def server_s3_env(store:dict) -> dict:
    "What `mlflow server` (boto3) needs to keep artifacts on the S3-compatible store whose AWS_* variables are `store`."
    return {k: v for k, v in store.items() if k.startswith('AWS_')} | dict(
        MLFLOW_S3_ENDPOINT_URL=store['AWS_ENDPOINT_URL'],
        # SeaweedFS refuses the checksum trailers newer AWS SDKs send by default
        AWS_REQUEST_CHECKSUM_CALCULATION='when_required', AWS_RESPONSE_CHECKSUM_VALIDATION='when_required')


def mlflow_server_for(pg:Postgres, folder:Path, database:str='mlflow', store:dict|None=None):
    "Context manager: `mlflow server` on a new database of `pg`; artifacts proxied into `folder`, or onto `store`'s bucket."
    db, port = create_database(pg, database).replace('postgresql:', 'postgresql+psycopg2:'), free_port()  # SQLAlchemy 2.1 defaults to psycopg 3
    if store:
        bucket = store['WORKBENCH_HOME'].removeprefix('s3://').split('/')[0]
        artifacts, env = f"s3://{bucket}/mlflow-artifacts/{database}", server_s3_env(store)
    else:
        (folder/'artifacts').mkdir(parents=True, exist_ok=True)
        artifacts, env = str(folder/'artifacts'), {}
    cmd = [BIN/'mlflow', 'server', '--backend-store-uri', db, '--host', '127.0.0.1', '--port', port, '--workers', 1,
           '--artifacts-destination', artifacts, '--serve-artifacts']
    server = MlflowServer(f'http://127.0.0.1:{port}', db, pg.uri(database, READER), artifacts, store)
    return server, started(cmd, f'{server.url}/health', timeout=180, log=folder/'mlflow-server.log', cwd=folder,
                           env=clean_env(**env), start_new_session=True)


@pytest.fixture(scope='module')
def mlflow_server(postgres, seaweedfs, tmp_path_factory, request):
    "A fresh `mlflow server` for the test module: its own PostgreSQL database, artifacts on the session's bucket."
    database = re.sub(r'[^a-z0-9_]', '_', request.module.__name__.lower())  # each module starts from an empty registry
    server, ctx = mlflow_server_for(postgres, tmp_path_factory.mktemp('mlflow-server'), database, store=seaweedfs)
    with ctx as proc:
        yield server
        os.killpg(proc.pid, signal.SIGKILL)  # a throwaway server with nothing to save: a graceful stop takes 10 s and more
        proc.wait()
