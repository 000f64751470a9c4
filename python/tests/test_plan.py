"""fastconv.Plan, pack_weights, execute (out=, tensors, unbatched), describe, find_algorithms, wisdom,
and one plan run from eight Python threads with the GIL released."""
import re
import threading
import time

import numpy as np
import pytest
import torch

import fastconv
from conftest import normwise_error, reference

TOL = 1e-4


def test_module_facts():
    assert re.fullmatch(r"\d+\.\d+\.\d+", fastconv.__version__)
    assert fastconv.instruction_set() in ("avx512", "avx2", "sse2")


def test_plan_properties_and_execute(rng):
    x = rng.standard_normal((2, 16, 14, 14)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    plan = fastconv.Plan(x.shape, w.shape, padding=1)
    assert plan.algorithm in ("direct", "im2col", "winograd", "fft")
    assert plan.implementation.startswith(plan.algorithm) or plan.algorithm in plan.implementation
    assert plan.workspace_bytes >= 0 and plan.threads >= 1
    assert plan.output_shape == (2, 32, 14, 14)
    text = plan.describe()
    assert "algorithm" in text and plan.implementation in text and "workspace" in text
    assert plan.problem in text
    packed = plan.pack_weights(w, b)
    assert packed.size_bytes > 0
    ref, mag = reference(x, w, b, padding=1)
    y = plan.execute(x, packed)
    assert isinstance(y, np.ndarray) and normwise_error(y, ref, mag) <= TOL
    # out=: written in place and returned; the same bits as a fresh output
    out = np.full(plan.output_shape, np.nan, np.float32)
    assert plan.execute(x, packed, out=out) is out
    np.testing.assert_array_equal(out, y)
    # tensors in, tensor out; a tensor out= is written in place
    yt = plan.execute(torch.from_numpy(x), packed)
    assert isinstance(yt, torch.Tensor)
    np.testing.assert_array_equal(yt.numpy(), y)
    tout = torch.full(plan.output_shape, float("nan"))
    assert plan.execute(torch.from_numpy(x), packed, out=tout) is tout
    np.testing.assert_array_equal(tout.numpy(), y)


def test_forced_algorithm_and_implementation(rng):
    plan = fastconv.Plan((1, 16, 12, 12), (16, 16, 3, 3), padding=1, algorithm="winograd", implementation="winograd_f2x2")
    assert plan.algorithm == "winograd" and plan.implementation.startswith("winograd_f2x2")
    plan = fastconv.Plan((1, 16, 12, 12), (16, 16, 3, 3), padding=1, algorithm="direct", threads=1)
    assert plan.algorithm == "direct" and plan.threads == 1
    with pytest.raises(fastconv.Error):
        fastconv.Plan((1, 16, 12, 12), (16, 16, 3, 3), padding=1, implementation="no_such_kernel")


def test_unbatched_plan(rng):
    x = rng.standard_normal((3, 10, 9)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    plan = fastconv.Plan(x.shape, w.shape, padding="same")
    y = plan.execute(x, plan.pack_weights(w))
    ref, mag = reference(x[None], w, padding="same")
    assert y.shape == (5, 10, 9) and normwise_error(y[None], ref, mag) <= TOL


def test_measure_mode_plans(rng):
    plan = fastconv.Plan((1, 8, 16, 16), (8, 8, 3, 3), padding=1, mode="measure", threads=1)
    assert plan.algorithm in ("direct", "im2col", "winograd", "fft")
    assert "measured" in plan.describe()


def test_execute_refuses_bad_arguments_and_writes_nothing(rng):
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    plan = fastconv.Plan((1, 3, 8, 8), w.shape)
    packed = plan.pack_weights(w)
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    sentinel = np.full((1, 4, 6, 6), 7.0, np.float32)
    cases = [
        (dict(input=x[:, :, :7]), "this plan expects size"),
        (dict(input=x.astype(np.float64)), "dtype float32"),
        (dict(out=np.zeros((1, 4, 6, 5), np.float32)), "out: expected size"),
        (dict(out=np.zeros((1, 4, 6, 6), np.float64)), "out: expected dtype float32"),
        (dict(out=np.zeros((1, 4, 6, 12), np.float32)[..., ::2]), "C-contiguous"),
        (dict(packed=np.zeros(3)), "PackedWeights"),
        (dict(packed=fastconv.Plan((1, 3, 9, 9), w.shape).pack_weights(w)), "another plan"),
        (dict(residual=np.zeros((1, 4, 6, 6), np.float32)), "residual"),
    ]
    for change, message in cases:
        args = dict(input=x, packed=packed, out=sentinel)
        args.update(change)
        out = args["out"]
        before = out.copy()
        with pytest.raises(fastconv.Error, match=message):
            plan.execute(args["input"], args["packed"], out=out, residual=args.get("residual"))
        np.testing.assert_array_equal(out, before)
    ro = np.zeros((1, 4, 6, 6), np.float32)
    ro.flags.writeable = False
    with pytest.raises(fastconv.Error, match="read-only"):
        plan.execute(x, packed, out=ro)
    assert not ro.any()
    with pytest.raises(fastconv.Error, match="weight: this plan expects size"):
        plan.pack_weights(w[:, :2].copy())
    with pytest.raises(fastconv.Error, match="bias"):
        plan.pack_weights(w, np.zeros(5, np.float32))
    with pytest.raises(fastconv.Error, match="out: a tensor that requires grad"):
        plan.execute(x, packed, out=torch.zeros((1, 4, 6, 6), requires_grad=True))


def test_find_algorithms_ranks_every_candidate():
    rows = fastconv.find_algorithms((1, 64, 28, 28), (64, 64, 3, 3), padding=1)
    assert len(rows) >= 4
    algos = {r.algorithm for r in rows}
    assert {"direct", "im2col", "winograd", "fft"} <= algos
    applicable = [r for r in rows if r.applicable]
    assert applicable and all(r.applicable for r in rows[:len(applicable)])  # applicable ones first
    times = [r.time_ms for r in applicable]
    assert times == sorted(times) and times[0] > 0
    # a strided 3x3: Winograd declines and says why
    rows = fastconv.find_algorithms((1, 16, 28, 28), (16, 16, 3, 3), stride=2, padding=1)
    wino = [r for r in rows if r.algorithm == "winograd"]
    assert wino and not any(r.applicable for r in wino) and all("stride" in r.reason for r in wino)
    # the plan takes the first applicable candidate
    plan = fastconv.Plan((1, 64, 28, 28), (64, 64, 3, 3), padding=1)
    rows = fastconv.find_algorithms((1, 64, 28, 28), (64, 64, 3, 3), padding=1)
    assert plan.implementation == rows[0].implementation


def test_wisdom_round_trip(tmp_path):
    fastconv.forget_wisdom()
    fastconv.Plan((1, 8, 12, 12), (8, 8, 3, 3), padding=1, mode="measure", threads=1)
    assert fastconv.wisdom_size() >= 1
    path = tmp_path / "wisdom.txt"
    fastconv.save_wisdom(path)
    assert path.stat().st_size > 0
    fastconv.forget_wisdom()
    assert fastconv.wisdom_size() == 0
    fastconv.load_wisdom(path)
    assert fastconv.wisdom_size() >= 1
    bad = tmp_path / "bad.txt"
    bad.write_text("not wisdom\n")
    with pytest.raises(fastconv.Error):
        fastconv.load_wisdom(bad)
    fastconv.forget_wisdom()


def test_calibrate_installs_a_machine_model_the_wisdom_keeps(tmp_path):
    fastconv.forget_wisdom()
    assert fastconv.describe_machine_model().startswith("defaults for")
    with pytest.raises(fastconv.Error):
        fastconv.calibrate(0)
    with pytest.raises(fastconv.Error):
        fastconv.calibrate(1, threads=-1)
    report = fastconv.calibrate(0.5, threads=2)
    assert "picks within 10% of the fastest" in report and "installed" in report
    assert fastconv.describe_machine_model().startswith("calibrated for")
    path = tmp_path / "wisdom.txt"
    fastconv.save_wisdom(path)
    fastconv.forget_wisdom()
    assert fastconv.describe_machine_model().startswith("defaults for")
    fastconv.load_wisdom(path)
    assert fastconv.describe_machine_model().startswith("calibrated for")
    fastconv.forget_wisdom()


def test_eight_threads_on_one_plan_give_the_serial_result_bitwise(rng):
    shape, wshape = (1, 32, 40, 40), (48, 32, 3, 3)
    plan = fastconv.Plan(shape, wshape, padding=1, threads=1)
    packed = plan.pack_weights(rng.standard_normal(wshape).astype(np.float32),
                               rng.standard_normal(48).astype(np.float32))
    inputs = [rng.standard_normal(shape).astype(np.float32) for _ in range(8)]
    serial = [plan.execute(x, packed) for x in inputs]
    assert not np.array_equal(serial[0], serial[1])  # different inputs, different outputs
    results = [[None] * 8 for _ in range(8)]
    barrier = threading.Barrier(8)

    def worker(t):
        barrier.wait()
        for i in range(8):  # each thread runs every input, in its own order
            j = (i + t) % 8
            results[t][j] = plan.execute(inputs[j], packed)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for t in range(8):
        for j in range(8):
            np.testing.assert_array_equal(results[t][j], serial[j])


def test_gil_is_released_while_computing(rng):
    # A long execute on one thread; the main thread keeps running Python meanwhile. If the GIL
    # were held, the main thread would stall for the whole execute.
    shape, wshape = (8, 128, 56, 56), (128, 128, 3, 3)  # 7.4 GFLOP: tens of ms on one core
    plan = fastconv.Plan(shape, wshape, padding=1, threads=1, algorithm="direct")
    packed = plan.pack_weights(np.ones(wshape, np.float32))
    x = np.ones(shape, np.float32)
    t0 = time.perf_counter()
    plan.execute(x, packed)
    one = time.perf_counter() - t0
    assert one > 0.02, "the problem is too small to tell"
    done = threading.Event()
    during = []  # the worker's own execute time: a held GIL would stall this thread for about that long

    def work():
        t = time.perf_counter()
        plan.execute(x, packed)
        during.append(time.perf_counter() - t)
        done.set()

    worker = threading.Thread(target=work)
    gaps, last = [], time.perf_counter()
    worker.start()
    while not done.is_set():
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    worker.join()
    # Three quarters: room for the scheduler on a loaded host (CI runs other tests beside this one).
    assert len(gaps) > 100 and max(gaps) < 0.75 * during[0], (len(gaps), max(gaps), during[0], one)


@pytest.mark.parametrize("algorithm", ["direct", "im2col", "winograd", "fft"])
def test_threading_openmp_and_tbb_give_the_same_bits(rng, algorithm):
    if not fastconv._C.has_openmp:
        pytest.skip("built without OpenMP")
    before = fastconv.threading()
    shape, wshape = (2, 24, 23, 21), (20, 24, 3, 3)
    plan = fastconv.Plan(shape, wshape, padding=1, threads=2, algorithm=algorithm)
    packed = plan.pack_weights(rng.standard_normal(wshape).astype(np.float32))
    x = rng.standard_normal(shape).astype(np.float32)
    try:
        fastconv.set_threading("tbb")
        assert fastconv.threading() == "tbb"
        want = plan.execute(x, packed)
        fastconv.set_threading("openmp")
        assert fastconv.threading() == "openmp"
        np.testing.assert_array_equal(plan.execute(x, packed), want)
        # and from several Python threads at once, each on its own OpenMP team
        results = [None] * 4
        threads = [threading.Thread(target=lambda t=t: results.__setitem__(t, plan.execute(x, packed))) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        for r in results:
            np.testing.assert_array_equal(r, want)
    finally:
        fastconv.set_threading(before)


def test_set_threading_refuses_unknown_names():
    with pytest.raises(fastconv.Error, match="expected 'openmp' or 'tbb'"):
        fastconv.set_threading("pthreads")


def test_weights_change_ranks_with_packing():
    # The training layers plan so (fastconv.torch, the backward-data helpers): every execute packs.
    from fastconv import _fastconv as _C
    from fastconv._api import _make_problem, _problem_key
    key = _problem_key((8, 512, 4, 4), (512, 512, 3, 3), 1, 1, 1, 1)
    steady = _C.Plan(_make_problem(key), direction="backward-data", threads=2)
    changing = _C.Plan(_make_problem(key), direction="backward-data", threads=2, weights_change=True)
    assert "winograd" in steady.implementation and "winograd" not in changing.implementation
    assert "packed for every execute" in changing.describe()
    assert "packed for every execute" not in steady.describe()
