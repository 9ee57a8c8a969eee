"""Issue 21: the HPA simulated on the four traffic traces, the figures a reader of the plot sees.

One pod serves 2,000 requests/s and is ready 4 s after the HPA asks for it; the target queue depth is 2, with 2 to 10
replicas, a base of 1,500 requests/s and a p99 target of 50 ms. Every expected figure is worked out by hand from the
HPA's rules (a sync every 15 s; a per-pod rate over 60 s, scraped every 15 s; +4 pods or +100 % per 15 s up; a 300 s
scale-down window, then -100 %) and from the queue model (an M/D/1 pod holds ρ + ρ²/(2(1 − ρ)) requests)."""
import math
import pytest
from workbench.autoscaling import simulate, summary, traces
from workbench.config import WorkbenchError

BASE, CAPACITY, TARGET = 1500, 2000, 2
SETUP = dict(capacity=CAPACITY, ready_seconds=4, target_queue_depth=TARGET, min_replicas=2, max_replicas=10,
             p99_target_seconds=0.05)
RHO = 3 - 5 ** .5  # the utilization at which an M/D/1 pod holds 2 requests: the HPA's resting point


def depth(rho:float) -> float:
    "Requests an M/D/1 pod holds on average at utilization `rho`."
    return rho + rho ** 2 / (2 * (1 - rho))


def changes(frame) -> list:
    "(second, replicas) of each change of the replicas the HPA sets."
    moved = frame[frame.desired_replicas.diff() != 0].iloc[1:]
    return list(zip(moved.t.tolist(), moved.desired_replicas.tolist()))


@pytest.fixture(scope='module')
def runs():
    return {name: simulate(trace, **SETUP) for name, trace in traces(base=BASE).items()}


def test_steady_stays_at_min_replicas_and_never_waits(runs):
    f, s = runs['steady'], summary(runs['steady'])
    assert changes(f) == [] and set(f.desired_replicas) == {2}
    assert f.queue_depth.iloc[-1] == pytest.approx(depth(BASE / 2 / CAPACITY))  # 0.49: the HPA proposes 1 pod
    assert s['requests_over_target'] == 0 and s['worst_latency_seconds'] < 0.001
    assert s['seconds_to_scale_up'] is None and s['replica_seconds'] == 2 * 1800


def test_spike_reaches_max_replicas_in_two_syncs(runs):
    f, s = runs['spike'], summary(runs['spike'])
    assert s['peak_replicas'] == min(math.ceil(10 * BASE / (CAPACITY * RHO)), SETUP['max_replicas']) == 10
    # the first sync after the jump (300) is at 315: +4 pods (ready at 319); at 330 +100 % of 6, clamped to 10
    assert changes(f)[:2] == [(315, 6), (330, 10)]
    assert s['seconds_to_scale_up'] == 334 - 300
    # 11,000 requests/s pile up for 19 s on 2 pods, 3,000/s for 15 s on 6, then drain at 20,000 - 15,000 a second:
    # nearly every request arriving until the backlog is gone misses 50 ms
    backlog = 19 * 11_000 + 15 * 3_000
    assert s['requests_over_target'] == pytest.approx(15_000 * (34 + backlog / 5_000), rel=0.02)
    over = f.t[f.over_target > 0]
    assert over.min() == 300 and over.max() == 300 + 34 + math.ceil(backlog / 5_000) - 1
    # the worst wait: arriving at 317 behind 17 × 11,000, served 2 s at 4,000/s, then at 12,000/s
    assert s['worst_latency_seconds'] == pytest.approx(2 + (17 * 11_000 - 8_000) / 12_000, abs=0.01)


def test_spike_scales_down_only_after_the_stabilization_window(runs):
    f = runs['spike']
    # the spike ends at 480; the proposal at 480 is still 10 (depth 1.875 on 10 pods, within the tolerance), so
    # nothing goes before 780. The proposals of 495 and 510 read 45 s windows still partly in the spike:
    # (30 × 1.875 + 15 × 0.078) / 45 / 2 → ⌈6.4⌉ = 7 and (15 × 1.875 + 30 × 0.078) / 45 / 2 → ⌈3.4⌉ = 4
    assert (f.desired_replicas[(f.t >= 330) & (f.t < 780)] == 10).all()
    assert changes(f)[2:] == [(780, 7), (795, 4), (810, 2)]


def test_ramp_keeps_the_queue_depth_near_the_target(runs):
    f, s = runs['ramp'], summary(runs['ramp'])
    assert s['peak_replicas'] == math.ceil(6 * BASE / (CAPACITY * RHO)) == 6
    assert (f.desired_replicas.diff().dropna() >= 0).all()  # replicas only added while traffic rises
    ups = f[f.desired_replicas.diff() > 0]
    assert (ups.metric_queue_depth > TARGET * 1.1).all() and len(ups) == 4  # each above the tolerance band
    assert f.queue_depth.max() < 1.5 * TARGET
    assert f.queue_depth[f.t >= 1500].mean() == pytest.approx(depth(6 * BASE / 6 / CAPACITY), rel=0.01)  # 1.875
    assert s['requests_over_target'] == 0 and s['seconds_to_scale_up'] is None  # never short of capacity


def test_drop_scales_down_only_after_the_stabilization_window(runs):
    f, s = runs['drop'], summary(runs['drop'])
    assert f.desired_replicas.iloc[0] == 6  # sized for 9,000 requests/s: 5 pods would hold 4.95 each, 6 hold 1.875
    # traffic falls at 600; the proposal of 615 still reads 30 s of the old load ((30 × 1.875 + 15 × 0.0126) / 45 / 2
    # × 6 → ⌈3.8⌉ = 4), so 4 at 615 + 300 - 15 = 900, and min_replicas a sync later
    assert changes(f) == [(900, 4), (915, 2)]
    assert s['replica_seconds'] == 6 * 900 + 4 * 15 + 2 * (1800 - 915)
    assert s['requests_over_target'] == 0


def test_arguments_that_cannot_work():
    with pytest.raises(WorkbenchError, match='min_replicas \\(5\\) is above max_replicas \\(3\\)'):
        simulate([100.0], **SETUP | dict(min_replicas=5, max_replicas=3))
    with pytest.raises(WorkbenchError, match='capacity must be above 0'):
        simulate([100.0], **SETUP | dict(capacity=-1))
    with pytest.raises(WorkbenchError, match='The trace is empty'):
        simulate([], **SETUP)
