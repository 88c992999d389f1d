"""Where a training step of the balls encoder spends its time, layer by layer.

Times (median of ``--reps`` calls on the default batch: 2B = 128 frames of
32 × 32 RGB, 5 × 5 kernels, 16 hidden channels, float32)
- every forward and backward pass of the per-layer primitives of ``layers``
  (conv2d, batchnorm_relu, batchnorm_sigmoid_com), which the trainer used
  before the fused encoder;
- every blocked pass of the fused encoder ``grid.encoder_z`` that the trainer
  uses now (wall and CPU time of each ``Workspace.map_blocks`` call; "other" is
  the rest of its forward and backward passes);
- the whole ``train_step``;
and optionally prints a cProfile of ``--cprofile`` steps.

    python benchmarks/profile_step.py
    python benchmarks/profile_step.py --dtype float64 --cprofile 40

One BLAS thread unless ``--threads`` says otherwise (set before NumPy starts).
Compare runs with and without ``MALLOC_TOP_PAD_=268435456`` in the environment
to see what the allocation churn of a step costs.
"""
import argparse
import cProfile
import os
import pstats
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--batch", type=int, default=64, help="pairs B (2B frames)")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--kernel", type=int, default=5)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--cprofile", type=int, default=0, metavar="STEPS",
                   help="also print a cProfile of this many train steps (top 25 by tottime)")
    return p.parse_args(argv)


ARGS = parse_args()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's rpmref
from autograd import make_vjp  # noqa: E402

from rpmref.balls import grid, layers, optim, trainer  # noqa: E402
from rpmref.balls.critics import get_critic  # noqa: E402


def median_ms(fn, reps):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def layer_table(params, x, reps):
    """(name, forward ms, backward ms) of each primitive at its place in the encoder."""
    ws = [{} for _ in range(4)]
    h1 = layers.conv2d(x, params["conv1_w"], params["conv1_b"], workspace=ws[0])
    a1 = layers.batchnorm_relu(h1, params["bn1_gamma"], params["bn1_beta"], workspace=ws[1])
    h2 = layers.conv2d(a1, params["conv2_w"], params["conv2_b"], workspace=ws[2])
    rows = []
    cases = [
        ("conv1 (x → h1)", lambda w, b: layers.conv2d(x, w, b, workspace={}),
         (params["conv1_w"], params["conv1_b"])),
        ("bn1 + relu", lambda h, g, b: layers.batchnorm_relu(h, g, b, workspace={}),
         (h1, params["bn1_gamma"], params["bn1_beta"])),
        ("conv2 (a1 → h2)", lambda a, w, b: layers.conv2d(a, w, b, workspace={}),
         (a1, params["conv2_w"], params["conv2_b"])),
        ("bn2 + sigmoid + com", lambda h, g, b: layers.batchnorm_sigmoid_com(h, g, b, workspace={}),
         (h2, params["bn2_gamma"], params["bn2_beta"])),
    ]
    for name, fn, args in cases:
        fwd = median_ms(lambda: fn(*args), reps)
        out = fn(*args)
        g = np.ones_like(out)

        def backward():
            vjp, _ = make_vjp(fn, tuple(range(len(args))))(*args)  # every argument's gradient
            vjp(g)
        rows.append((name, fwd, median_ms(backward, reps) - fwd))  # make_vjp reruns the forward
    return rows


def grid_table(params, x, reps, threads):
    """(pass name, wall ms, CPU ms) of each blocked pass of grid.encoder_z, plus the rest."""
    ws = grid.Workspace(threads)
    args = [params[name] for name in grid.PARAMS]
    g = np.ones((x.shape[1], 6), dtype=x.dtype)
    samples = {}
    real_blocks, real_runs = grid.Workspace.map_blocks, grid.Workspace.map_runs

    def timer(real):
        def timed(self, fn, blocks):
            name = getattr(fn, "__name__", "?")
            if name == "<lambda>":  # map_blocks → map_runs: timed as map_blocks
                return real(self, fn, blocks)
            t0, c0 = time.perf_counter(), time.process_time()
            out = real(self, fn, blocks)
            samples.setdefault(name, []).append(
                (time.perf_counter() - t0, time.process_time() - c0))
            return out
        return timed

    def run():
        t0, c0 = time.perf_counter(), time.process_time()
        vjp, _ = make_vjp(lambda *a: grid.encoder_z(x, *a, workspace=ws), tuple(range(8)))(*args)
        t1, c1 = time.perf_counter(), time.process_time()
        vjp(g)
        samples.setdefault("forward", []).append((t1 - t0, c1 - c0))
        samples.setdefault("backward", []).append((time.perf_counter() - t1,
                                                  time.process_time() - c1))
    run()
    samples.clear()
    grid.Workspace.map_blocks, grid.Workspace.map_runs = timer(real_blocks), timer(real_runs)
    try:
        # as train_step: the step's threads each call single-threaded BLAS (with BLAS
        # threads inside them too, every call oversubscribes the cores)
        with trainer.blas_threads(1):
            for _ in range(reps):
                run()
    finally:
        grid.Workspace.map_blocks, grid.Workspace.map_runs = real_blocks, real_runs
    med = {name: np.median(np.array(v), axis=0) * 1e3 for name, v in samples.items()}
    rows = [(name, *med[name]) for name in med if name not in ("forward", "backward")]
    fwd = ("conv1", "conv2_run")
    rows.append(("other (forward)", *(med["forward"] - sum(med[n] for n in fwd if n in med))))
    rows.append(("other (backward)", *(med["backward"] - sum(
        med[n] for n in med if n not in fwd + ("forward", "backward")))))
    rows.append(("forward", *med["forward"]))
    rows.append(("backward", *med["backward"]))
    return rows


def main():
    dtype = ARGS.dtype
    config = trainer.TrainConfig(batch_size=ARGS.batch, hidden_channels=ARGS.channels,
                                 kernel_size=ARGS.kernel, dtype=dtype, blas_threads=ARGS.threads)
    rng = np.random.default_rng(0)
    params = trainer.init_params(config, rng)
    frames = rng.uniform(size=(2 * ARGS.batch, 3, ARGS.size, ARGS.size)).astype(dtype)
    x = layers.to_channel_first(frames)
    critic = get_critic(config.critic)
    scale = trainer.coordinate_scale(ARGS.size, ARGS.size, dtype)
    state = {"p": params, "bn": trainer.init_bn_state(config),
             "opt": optim.init_state(params, config.optimizer)}

    def step():
        state["p"], state["bn"], state["opt"], _, _ = trainer.train_step(
            state["p"], state["bn"], state["opt"], x, config, critic, scale)

    pad = os.environ.get("MALLOC_TOP_PAD_", "unset")
    print(f"# {ARGS.size}×{ARGS.size}, k {ARGS.kernel}, {ARGS.channels} channels, "
          f"{2 * ARGS.batch} frames, {dtype}, {ARGS.threads} thread(s), median of {ARGS.reps}; "
          f"MALLOC_TOP_PAD_={pad}; load {os.getloadavg()[0]:.2f}")
    total_f = total_b = 0.0
    print("per-layer primitives (layers) | forward ms | backward ms")
    for name, f, b in layer_table(params, x, ARGS.reps):
        total_f, total_b = total_f + f, total_b + b
        print(f"{name:29s} | {f:10.1f} | {b:11.1f}")
    print(f"{'sum of layers':29s} | {total_f:10.1f} | {total_b:11.1f}")
    print("fused encoder (grid) pass     | wall ms | CPU ms")
    for name, wall, cpu in grid_table(params, x, ARGS.reps, ARGS.threads):
        print(f"{name:29s} | {wall:7.1f} | {cpu:6.1f}")
    walls, cpus = [], []
    step()
    for _ in range(ARGS.reps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    print(f"{'train_step':29s} | {1e3 * np.median(walls):7.1f} | {1e3 * np.median(cpus):6.1f}")
    if ARGS.cprofile:
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(ARGS.cprofile):
            step()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
