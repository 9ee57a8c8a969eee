"""One replica's capacity: the serving image under podman against the same bundle run bare, at rising concurrency.

    pytest tests/benchmarks/bench_image.py -m benchmark -s -p no:cacheprovider

Builds the image as tests/test_image.py does (a Debian base made with debootstrap, the demo champion's bundle with
its wheelhouse, `podman build --network=none`), runs it with `--network=host`, and runs the bundle's `app.py` bare
in this interpreter, on the same model. wrk (one thread, `tests/benchmarks/wrk_post.lua`) posts one row per request
at 1, 2, 4, 8, 16 and 32 connections for SECONDS each after a warm-up. A replica's capacity is the highest
requests/s whose p99 stays within `canary.max_p99_ms`: the figure `workbench deploy simulate --capacity` takes.
Prints one line of JSON: both capacities, their ratio, the image's size and its start-to-ready time."""
import json, os, signal, subprocess, sys
import pytest
from conftest import clean_env, free_port, wait_until_up
from test_image import Container, applications, base_image, bundle, images, podman, post  # noqa: F401  the image's fixtures
from bench_serving import WRK, wrk
from workbench import deployed
from workbench.config import load_settings

SECONDS, CONNECTIONS = 5, (1, 2, 4, 8, 16, 32)


def sweep(url:str, body_file) -> list:
    "wrk at each of CONNECTIONS, after a warm-up: one result per concurrency."
    wrk(url + '/invocations', body_file, 4, 2)
    return [{'connections': c, **wrk(url + '/invocations', body_file, c, SECONDS)} for c in CONNECTIONS]


def capacity(runs:list, p99_ms:float) -> float:
    "The highest requests/s at a p99 within `p99_ms`."
    return max((r['rps'] for r in runs if r['p99_ms'] <= p99_ms), default=0.0)


@pytest.mark.benchmark
def test_capacity(podman, images, bundle, applications, tmp_path):  # noqa: F811  the fixtures imported above
    assert WRK, 'wrk is not installed; install it with `apt-get install -y wrk`'
    model = deployed.OnnxModel((bundle/'model.onnx').read_bytes())
    row = applications[[s['name'] for s in model.signature]].dropna().head(1)
    body = {'dataframe_split': json.loads(row.to_json(orient='split', index=False))}
    body_file = tmp_path/'body.json'
    body_file.write_text(json.dumps(body))
    p99_ms = load_settings(env={})['canary.max_p99_ms']

    c = Container(podman, images['server'])
    try:
        assert post(c.url + '/invocations', body)[1]['predictions'] == model.predict(row).tolist()
        contained = sweep(c.url, body_file)
    finally: c.remove()
    size_mb = json.loads(podman('image', 'inspect', images['server']).stdout)[0]['Size'] / 1e6

    port = free_port()
    bare = subprocess.Popen([sys.executable, 'app.py'], cwd=bundle, env=clean_env(PORT=str(port)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(f'http://127.0.0.1:{port}/v2/health/ready', bare)
        assert post(f'http://127.0.0.1:{port}/invocations', body)[1]['predictions'] == model.predict(row).tolist()
        outside = sweep(f'http://127.0.0.1:{port}', body_file)
    finally:
        bare.send_signal(signal.SIGTERM); bare.wait(30)

    for r in contained + outside: assert r['requests'] > 0 and not any(r['errors'].values()), r
    ours, theirs = capacity(contained, p99_ms), capacity(outside, p99_ms)
    assert ours > 0 and theirs > 0, (contained, outside)
    print(json.dumps({'benchmark': 'image_capacity', 'p99_target_ms': p99_ms, 'seconds': SECONDS, 'load': 'wrk -t1, one row per POST',
                      'image_mb': round(size_mb), 'ready_seconds': round(c.ready_seconds, 2),
                      'container_capacity_rps': round(ours), 'bare_capacity_rps': round(theirs), 'ratio': round(ours / theirs, 3),
                      'container': [{k: r[k] for k in ('connections', 'rps', 'p50_ms', 'p99_ms')} for r in contained],
                      'bare': [{k: r[k] for k in ('connections', 'rps', 'p50_ms', 'p99_ms')} for r in outside],
                      'cpus': os.cpu_count()}))
