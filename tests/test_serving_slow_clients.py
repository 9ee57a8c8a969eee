"""Issue 20: nothing one client sends stalls the others, on a real `workbench serve` started with the CLI.

A toy model (income, product) is registered in a fresh workspace; one server serves it with
`serving.read_timeout_seconds=1`. A body of a million empty CSV rows is refused (413) after a small part of it
is read, while another client's single-row requests stay fast; clients that send their headers or their body a
byte at a time, or nothing at all, are answered 408 and disconnected within the timeout, and the server answers
others meanwhile."""
import contextlib, http.client, json, socket, statistics, sys, threading, time
from pathlib import Path
import numpy as np, pandas as pd, pytest
from conftest import clean_env, free_port, started

BIN = Path(sys.executable).parent
TIMEOUT = 1.0  # serving.read_timeout_seconds of the server under test
ROW = json.dumps({'dataframe_split': {'columns': ['income', 'product'], 'data': [[1500.0, 'card']]}})


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    "`workbench serve toy/1` on a free port, over a workspace where a small pipeline is registered as toy/1."
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder
    from workbench import data, registry, tracking, onnx as wonnx
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    root = tmp_path_factory.mktemp('slow-clients')
    rng = np.random.default_rng(0)
    X = pd.DataFrame({'income': rng.normal(3000, 800, 400), 'product': rng.choice(['card', 'loan'], 400)})
    y = (X.income + rng.normal(0, 500, 400) < 2800).astype(int)
    pre = ColumnTransformer([('num', 'passthrough', ['income']),
                             ('cat', OneHotEncoder(handle_unknown='ignore'), ['product'])])
    pipe = make_pipeline(pre, LogisticRegression()).fit(X, y)
    ws = open_workspace(root/'ws', load_settings(env={}))
    version = data.commit(ws, 'toy', X.assign(defaulted=y), 'the toy data', 'ana')
    with tracking.start_run(ws, 'toy', version.ref, ['income', 'product'], 'defaulted') as training:
        registry.log_candidate(ws, training.run_id, wonnx.export(pipe, X))
    registry.register(ws, training.run_id, 'toy', actor='ana')
    port = free_port()
    cmd = [BIN/'workbench', '--workspace', root/'ws', '--set', f'serving.read_timeout_seconds={TIMEOUT}',
           'serve', 'toy/1', '--port', port]
    with started(cmd, f'http://127.0.0.1:{port}/health', log=root/'serve.log', env=clean_env(), cwd=root):
        yield port


def post(conn:http.client.HTTPConnection, body:bytes|str, content_type='application/json') -> tuple:
    "POST `body` to /invocations on `conn`: (status, answer, seconds)."
    t0 = time.perf_counter()
    conn.request('POST', '/invocations', body=body, headers={'Content-Type': content_type})
    r = conn.getresponse()
    return r.status, r.read(), time.perf_counter() - t0


def test_a_million_empty_csv_rows_are_refused_quickly_while_another_client_stays_fast(server):
    attack = b'income,product\n' + b',\n' * 1_000_000
    victim = http.client.HTTPConnection('127.0.0.1', server, timeout=30)
    quiet = [post(victim, ROW)[2] for _ in range(50)]  # its latency with no attack, for the message
    latencies, refused = [], []

    def attacker():
        conn = http.client.HTTPConnection('127.0.0.1', server, timeout=60)
        for _ in range(10): refused.append(post(conn, attack, "text/csv"))
    threads = [threading.Thread(target=attacker) for _ in range(3)]
    for t in threads: t.start()
    while any(t.is_alive() for t in threads):
        status, answer, seconds = post(victim, ROW)
        assert status == 200, answer
        latencies.append(seconds)
    for t in threads: t.join()

    assert [s for s, _, _ in refused] == [413] * 30, [(s, a[:200]) for s, a, _ in refused]
    assert b'more values than serving.max_rows' in refused[0][1], refused[0][1]
    slowest = max(s for _, _, s in refused)
    assert slowest < 5, f'a refusal took {slowest:.2f} s'
    p50 = statistics.median(latencies)
    quiet_p50 = statistics.median(quiet)
    assert len(latencies) >= 5 and p50 < 0.1, (f"the other client's p50 was {p50 * 1000:.1f} ms over {len(latencies)} "
                                               f"requests during the attack (quiet: {quiet_p50 * 1000:.1f} ms)")


def slow(port:int, first:bytes, then:bytes, every:float=0.2) -> tuple:
    "Send `first`, then `then` a byte every `every` s until the server answers or closes: (answer, seconds)."
    with socket.create_connection(('127.0.0.1', port), timeout=10) as s:
        t0 = time.perf_counter()
        s.sendall(first)
        s.settimeout(every)
        got, rest = b'', list(then)
        while time.perf_counter() - t0 < 10:
            try:
                part = s.recv(4096)
                if not part: break
                got += part
            except socket.timeout:
                with contextlib.suppress(OSError):
                    if rest: s.sendall(bytes([rest.pop(0)]))
            except OSError: break
        return got, time.perf_counter() - t0


@pytest.mark.parametrize('first, then', [
    (b'POST /invocations HTTP/1.1\r\nHost: x\r\n', b'Content-Type: application/json\r\n' * 20),  # headers, bytewise
    (b'POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
     b'Content-Length: %d\r\n\r\n' % len(ROW), ROW.encode()[:-1]),  # the body a byte at a time, never the last one
    (b'', b''),  # a connection that sends nothing
], ids=['slow headers', 'slow body', 'silent'])
def test_slow_clients_are_answered_408_within_the_timeout(server, first, then):
    answers = [None] * 20
    def client(i): answers[i] = slow(server, first, then)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(answers))]
    for t in threads: t.start()
    time.sleep(0.3)
    status, _, seconds = post(http.client.HTTPConnection('127.0.0.1', server, timeout=10), ROW)
    assert status == 200 and seconds < 1, f'another client waited {seconds:.2f} s for a {status}'
    for t in threads: t.join()
    for got, seconds in answers:
        assert got.startswith(b'HTTP/1.1 408 '), got[:300]
        assert b'serving.read_timeout_seconds' in got, got[:300]
        assert TIMEOUT * 0.9 < seconds < TIMEOUT + 2, f'the server answered 408 after {seconds:.2f} s'
