"""One training step of the balls encoder: rpmref (NumPy/autograd) against PyTorch.

Same network (conv → BN → ReLU → conv → BN → sigmoid → centre of mass), same
critic and in-batch InfoNCE loss, same SGD-with-momentum step, same batch, same
dtype and the same initial weights. For every grid point the script first
checks in float64 that both give the same loss and every gradient (relative
1e-8; on a batch of 8 pairs), then times both steps *alternately* (so a change
in machine load hits both alike) and reports the median of ``--steps`` steps
after warm-up (fewer, at least ``--min-steps``, where one framework exceeds the
``--budget`` seconds: PyTorch's float64 convolutions at 64 × 64 take up to a
minute per step), as wall time and as the process's CPU time: on a busy machine
the CPU time is the steadier number (with one thread it is close to the wall
time on an idle machine). Two more readings of the ratio: "pair ratio", the median
of the per-pair ratios (each NumPy step over the PyTorch step right after it), and
"min ratio", the ratio of the fastest steps, which the load of a shared machine
moves least (on one 2-core VM the plain ratio of one setting ranged 0.60-0.89
between runs).

    python benchmarks/bench_train.py                    # full grid, 1 thread each
    python benchmarks/bench_train.py --quick            # default config only
    python benchmarks/bench_train.py --threads 2

Threads: BLAS (OpenBLAS) and PyTorch get the same thread count, set before
either library starts (default 1: on a shared machine one thread per process is
the only reproducible measurement). PyTorch is optional: without it only the
NumPy timings are printed.
"""
import argparse
import itertools
import os
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=20, help="timed steps per point (median)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--budget", type=float, default=60.0,
                   help="seconds per framework and point after which timing stops early "
                        "(at no fewer than --min-steps steps); some PyTorch float64 points "
                        "take ~50 s per step")
    p.add_argument("--min-steps", type=int, default=3)
    p.add_argument("--critic", default="rbf", choices=("rbf", "bilinear", "cosine"))
    p.add_argument("--quick", action="store_true", help="only the default config (32, 5, 16, 64)")
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--point", action="append", default=[], metavar="S,K,C,B",
                   help="time only this grid point (frame size, kernel, channels, batch); repeatable")
    return p.parse_args(argv)


ARGS = parse_args()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402  (after the thread settings)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's rpmref

from rpmref.balls import layers, optim  # noqa: E402
from rpmref.balls import trainer  # noqa: E402
from rpmref.balls.critics import get_critic  # noqa: E402

try:
    import torch
    torch.set_num_threads(ARGS.threads)
except ImportError:  # pragma: no cover
    torch = None

LR, MOMENTUM = 1e-2, 0.9


# --------------------------------------------------------------------------
# the PyTorch twin


def torch_step_fn(params, config, height, width, dtype):
    """(step, tensors): one SGD step of the PyTorch twin, starting from ``params``."""
    tdt = {"float32": torch.float32, "float64": torch.float64}[dtype]
    k = config.kernel_size
    t = {name: torch.tensor(np.asarray(v), dtype=tdt, requires_grad=True)
         for name, v in params.items()}
    opt = torch.optim.SGD(list(t.values()), lr=LR, momentum=MOMENTUM)
    scale = torch.tensor([width, height] * 3, dtype=tdt)
    xs = torch.arange(width, dtype=tdt) + 0.5
    ys = torch.arange(height, dtype=tdt) + 0.5
    bn1 = torch.nn.BatchNorm2d(config.hidden_channels).to(tdt)
    bn2 = torch.nn.BatchNorm2d(3).to(tdt)

    def bn(h, layer, gamma, beta):
        return torch.nn.functional.batch_norm(h, layer.running_mean, layer.running_var, gamma,
                                              beta, training=True, momentum=0.1, eps=layers.BN_EPS)

    def loss_fn(x):
        h = torch.nn.functional.conv2d(x, t["conv1_w"], t["conv1_b"], padding=k // 2)
        h = torch.relu(bn(h, bn1, t["bn1_gamma"], t["bn1_beta"]))
        h = torch.nn.functional.conv2d(h, t["conv2_w"], t["conv2_b"], padding=k // 2)
        s = torch.sigmoid(bn(h, bn2, t["bn2_gamma"], t["bn2_beta"]))  # (2B, 3, H, W)
        mass = s.sum(dim=(2, 3))
        cx = (s.sum(dim=2) * xs).sum(dim=2) / mass
        cy = (s.sum(dim=3) * ys).sum(dim=2) / mass
        z = torch.stack([cx, cy], dim=2).reshape(s.shape[0], 6)
        u = z / scale - 0.5
        b = s.shape[0] // 2
        a, ap = u[:b], u[b:]
        if config.critic == "rbf":
            scores = -((a[:, None, :] - ap[None, :, :]) ** 2).sum(2) * (0.5 * torch.exp(-2 * t["critic_log_lengthscale"]))
        elif config.critic == "bilinear":
            scores = a @ t["critic_W"] @ ap.T
        else:
            an = a / torch.sqrt((a * a).sum(1, keepdim=True) + 1e-12)
            apn = ap / torch.sqrt((ap * ap).sum(1, keepdim=True) + 1e-12)
            scores = an @ apn.T * torch.exp(-t["critic_log_temperature"])
        return torch.nn.functional.cross_entropy(scores, torch.arange(b))

    def step(x):
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(x)
        loss.backward()
        opt.step()
        return loss
    return step, t, loss_fn


# --------------------------------------------------------------------------
# one grid point


def make_point(size, k, channels, batch, dtype, seed=0):
    config = trainer.TrainConfig(critic=ARGS.critic, batch_size=batch, hidden_channels=channels,
                                 kernel_size=k, dtype=dtype, optimizer="sgd", lr=LR,
                                 momentum=MOMENTUM, seed=seed, blas_threads=ARGS.threads)
    rng = np.random.default_rng(seed)
    params = trainer.init_params(config, rng)
    frames = rng.uniform(size=(2 * batch, 3, size, size)).astype(dtype)  # B frames t, B frames t+1
    return config, params, frames


def check_agreement(size, k, channels, batch):
    """Loss and every gradient agree in float64 (relative 1e-8); returns the worst relative error."""
    config, params, frames = make_point(size, k, channels, batch, "float64")
    x = layers.to_channel_first(frames)
    critic = get_critic(config.critic)
    scale = trainer.coordinate_scale(size, size)
    g, (loss, _, _) = trainer._GRAD(params, x, critic, scale)
    _, t, loss_fn = torch_step_fn(params, config, size, size, "float64")
    tloss = loss_fn(torch.from_numpy(frames))
    tloss.backward()
    worst = abs(tloss.item() - loss) / abs(loss)
    for name in params:
        tg = t[name].grad.numpy()
        # a conv bias feeding batch norm has exact gradient 0 (the mean subtraction cancels
        # it): measure its round-off against the same layer's weight gradient instead
        ref = t[name.replace("_b", "_w")] if name.endswith("_b") else t[name]
        err = np.max(np.abs(g[name] - tg)) / max(np.max(np.abs(ref.grad.numpy())), 1e-300)
        worst = max(worst, err)
    if worst > 1e-8:
        raise AssertionError(f"NumPy and PyTorch disagree at {(size, k, channels, batch)}: "
                             f"max relative error {worst:.2e}")
    return worst


def time_point(size, k, channels, batch, dtype):
    config, params, frames = make_point(size, k, channels, batch, dtype)
    x = layers.to_channel_first(frames)
    critic = get_critic(config.critic)
    scale = trainer.coordinate_scale(size, size, dtype)
    state = {"p": params, "bn": trainer.init_bn_state(config),
             "opt": optim.init_state(params, "sgd")}

    def np_step():
        state["p"], state["bn"], state["opt"], _, _ = trainer.train_step(
            state["p"], state["bn"], state["opt"], x, config, critic, scale)

    steps = [("numpy", np_step)]
    if torch is not None:
        t_step, _, _ = torch_step_fn(params, config, size, size, dtype)
        xt = torch.from_numpy(frames)
        steps.append(("torch", lambda: t_step(xt)))
    times = {name: [] for name, _ in steps}
    cpu = {name: [] for name, _ in steps}
    for i in range(ARGS.warmup + ARGS.steps):
        for name, fn in steps:  # alternate, so load changes affect both alike
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall = time.perf_counter() - t0
            # steps over 1 s are timed even during warm-up (first-call costs are negligible there)
            if i >= ARGS.warmup or wall > 1.0:
                times[name].append(wall)
                cpu[name].append(time.process_time() - c0)
        spent = {name: sum(v) for name, v in times.items()}
        if (min(len(v) for v in times.values()) >= ARGS.min_steps
                and max(spent.values()) > ARGS.budget):
            break
    n = min(len(v) for v in times.values())
    spread = {}
    if "torch" in times:
        pairs = np.array(times["numpy"][:n]) / np.array(times["torch"][:n])
        spread = {"pair": float(np.median(pairs)),
                  "min": min(times["numpy"]) / min(times["torch"])}
    return ({name: float(np.median(v)) for name, v in times.items()},
            {name: float(np.median(v)) for name, v in cpu.items()},
            n, spread)


def main():
    grid = ([(32, 5, 16, 64)] if ARGS.quick
            else list(itertools.product((32, 64), (3, 5), (8, 16), (64, 256))))
    if ARGS.point:
        grid = [tuple(int(v) for v in p.split(",")) for p in ARGS.point]
    dtypes = ARGS.dtypes.split(",")
    print(f"# load average before: {os.getloadavg()[0]:.2f}; MALLOC_TOP_PAD_="
          f"{os.environ.get('MALLOC_TOP_PAD_', 'unset')}")
    print(f"# critic {ARGS.critic}, SGD lr {LR} momentum {MOMENTUM}, {ARGS.threads} thread(s), "
          f"median of {ARGS.steps} steps after {ARGS.warmup} warm-up; batch B = pairs "
          f"(2B frames per step)")
    if torch is None:
        print("# PyTorch not installed (pip install torch): NumPy timings only")
    else:
        print(f"# torch {torch.__version__}, numpy {np.__version__}")
    print("size kernel channels batch | dtype   | numpy ms | torch ms | ratio | pair ratio | "
          "min ratio | numpy cpu | torch cpu | cpu ratio | numpy frames/s | torch frames/s | "
          "f64 check | steps timed")
    for size, k, channels, batch in grid:
        # the float64 agreement check uses 8 pairs: the batch size changes no code path, and
        # PyTorch's float64 step at 64 × 64 × 512 frames takes close to a minute
        check = f"{check_agreement(size, k, channels, 8):.1e}" if torch is not None else "-"
        for dtype in dtypes:
            r, c, n_steps, spread = time_point(size, k, channels, batch, dtype)
            n_ms, n_cpu = 1e3 * r["numpy"], 1e3 * c["numpy"]
            t_ms = 1e3 * r["torch"] if "torch" in r else float("nan")
            t_cpu = 1e3 * c["torch"] if "torch" in c else float("nan")
            print(f"{size:4d} {k:6d} {channels:8d} {batch:5d} | {dtype:7s} | {n_ms:8.1f} | "
                  f"{t_ms:8.1f} | {n_ms / t_ms:5.2f} | {spread.get('pair', float('nan')):10.2f} | "
                  f"{spread.get('min', float('nan')):9.2f} | {n_cpu:9.1f} | {t_cpu:9.1f} | "
                  f"{n_cpu / t_cpu:9.2f} | {2 * batch / r['numpy']:14.0f} | "
                  f"{2 * batch / r.get('torch', float('nan')):14.0f} | {check} | {n_steps}", flush=True)
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
