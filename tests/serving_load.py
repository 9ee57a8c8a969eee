"""A load generator for `workbench serve`, run as its own process by tests/test_serving.py.

Sends single-row MLflow `/invocations` requests (`dataframe_split`, one random row of ROWS each) at a fixed
concurrency, each with a unique X-Request-ID (`PREFIX-<n>`), and writes to OUT (JSON) what happened to every
request: the ids answered 200 with the time of the answer and the served version (x-model-version), the count of
each status, the count of each connection error, and the requests/s achieved.

    python tests/serving_load.py URL ROWS OUT --requests 50000 --concurrency 32 --prefix load
        [--stop-file PATH] [--stop-on-error]

ROWS is a JSON file holding a list of records (column -> value). The run ends after --requests requests, when the
--stop-file appears, or (with --stop-on-error) at the first connection error, e.g. once the server is killed.
"""
import argparse, asyncio, json, os, random, time
from collections import Counter
from pathlib import Path
import aiohttp


def bodies(rows:list) -> list:
    "One MLflow `dataframe_split` JSON body per row."
    cols = list(rows[0])
    return [json.dumps({'dataframe_split': {'columns': cols, 'data': [[r[c] for c in cols]]}}).encode() for r in rows]


async def main(a):
    payloads = bodies(json.loads(Path(a.rows).read_text()))
    ok, statuses, errors, refused = [], Counter(), Counter(), []
    state = {'next': 0, 'stop': False}
    stop_file = Path(a.stop_file) if a.stop_file else None

    async def watch():
        while not state['stop']:
            if stop_file is not None and stop_file.exists(): state['stop'] = True
            await asyncio.sleep(0.05)

    async def worker(session):
        rnd = random.Random()
        while not state['stop'] and state['next'] < a.requests:
            i = state['next']; state['next'] += 1
            rid = f'{a.prefix}-{i:07d}'
            try:
                async with session.post(a.url + '/invocations', data=rnd.choice(payloads),
                                        headers={'Content-Type': 'application/json', 'X-Request-ID': rid}) as r:
                    text = await r.read()
                    statuses[r.status] += 1
                    if r.status == 200: ok.append((rid, time.time(), r.headers.get('x-model-version')))
                    elif len(refused) < 20: refused.append((rid, r.status, text[:300].decode('utf-8', 'replace')))
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                errors[type(e).__name__] += 1
                if a.stop_on_error: state['stop'] = True

    t0 = time.perf_counter()
    conn = aiohttp.TCPConnector(limit=a.concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=60)) as session:
        watcher = asyncio.create_task(watch())
        await asyncio.gather(*(worker(session) for _ in range(a.concurrency)))
        state['stop'] = True
        await watcher
    elapsed = time.perf_counter() - t0
    out = dict(sent=state['next'], elapsed=elapsed, rps=state['next'] / elapsed if elapsed else 0.0,
               statuses={str(k): v for k, v in statuses.items()}, errors=dict(errors), refused=refused,
               ok=ok, versions=dict(Counter(v for _, _, v in ok)))
    tmp = Path(a.out + '.tmp')
    tmp.write_text(json.dumps(out))
    os.replace(tmp, a.out)


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('url'); p.add_argument('rows'); p.add_argument('out')
    p.add_argument('--requests', type=int, default=50000)
    p.add_argument('--concurrency', type=int, default=32)
    p.add_argument('--prefix', default='load')
    p.add_argument('--stop-file')
    p.add_argument('--stop-on-error', action='store_true')
    a = p.parse_args()
    try: from uvloop import run
    except ImportError: run = asyncio.run
    run(main(a))
