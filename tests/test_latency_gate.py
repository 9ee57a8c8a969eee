"The latency gate gives the same verdict on an idle and on a loaded machine for the same model."
import multiprocessing as mp, os, time
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from workbench import deployed, gates, onnx


def _burn(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end: pass


def test_latency_gate_ignores_machine_load():
    X, y = make_classification(2000, 30, random_state=0)
    X = pd.DataFrame(X, columns=[f'x{i}' for i in range(30)])
    model = deployed.OnnxModel(onnx.export(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y), X.head(50)).onnx)
    idle = gates.latency(model, X, rows=400)
    burners = [mp.Process(target=_burn, args=(60,), daemon=True) for _ in range(2 * (os.cpu_count() or 2))]
    for p in burners: p.start()
    try:
        time.sleep(0.5)
        loaded = gates.latency(model, X, rows=400)
    finally:
        for p in burners: p.terminate()
        for p in burners: p.join()
    print(f"\nidle: {idle}\nloaded: {loaded}")
    # A gate set at three times the idle cost passes on the loaded machine too: the waiting for a core is not counted.
    # (Below 0.2 ms, the CPU time of a row moves with caches and clock speed that a busy machine changes: CI saw 0.11 ms
    # idle, 0.42 loaded. A gate is set in ms.)
    threshold = 3 * max(idle['p99_ms'], 0.2)
    assert loaded['p99_ms'] <= threshold, (idle, loaded)
    assert idle['p50_ms'] <= loaded['p50_ms'] * 3 and loaded['p50_ms'] <= idle['p50_ms'] * 3
    assert loaded['wall_p99_ms'] >= loaded['p99_ms'] * 0.9  # the wall clock is reported beside it, and is never below
