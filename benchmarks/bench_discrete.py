"""Time the exact discrete quantities against the practical floor: one n×n @ n×n matmul.

Run: python benchmarks/bench_discrete.py [--sizes 10 100 300 1000 3000] [--repeats 9]
     [--blas-threads 1]
n = n' = k = k' for every size (random dense tables, seed --seed). The machine may
be shared and noisy, so every repeat times the floor (one float64 n×n product)
right before each function and records the ratio of the two; the table shows the
median time of each function and the median of those paired ratios. Both the floor
and the function are called in a loop of ≥ 10 ms and averaged (steady state: the
count comes from warm calls, so a 1 ms function is not timed once, cold, against a
floor looped hot). BLAS is pinned to --blas-threads threads
(default 1; 0 keeps the library's default): on a shared machine a multithreaded
BLAS can stall for tens of milliseconds waiting for a core, which swamps the
work being measured. The rpmref measured is the checkout holding this script
(its path is printed). Targets: every ratio ≤ 10 at n = 100 and ≤ 3 at n ≥ 1000.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's rpmref
import rpmref  # noqa: E402

FUNCTIONS = ("expected_elbo", "elbo_decomposition", "infonce_limit", "rpm_log_likelihood")


def loop_count(fn, target=10e-3):
    """How many calls make one measurement of at least ``target`` seconds, judged on the
    fastest of three warm calls (the first call of a function pays for imports and
    cold caches, and a count taken from it left a 1 ms function timed once)."""
    fn()
    once = []
    for _ in range(3):
        start = time.perf_counter()
        fn()
        once.append(time.perf_counter() - start)
    return max(1, int(target / max(min(once), 1e-9)))


def timed(fn, number):
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def problem(n, rng):
    p_xx = rng.random((n, n))
    p_xx /= p_xx.sum()
    enc = rng.random((n, n))
    enc /= enc.sum(axis=1, keepdims=True)
    enc_prime = rng.random((n, n))
    enc_prime /= enc_prime.sum(axis=1, keepdims=True)
    prior = rng.random((n, n))
    prior /= prior.sum()
    return p_xx, enc, enc_prime, prior, rng.normal(size=(n, n))


def measure(n, repeats, rng):
    """{name: (median seconds, median ratio to the adjacent floor)} and the floor's median."""
    p_xx, enc, enc_prime, prior, f = problem(n, rng)
    p_zz = rpmref.recognition_joint(p_xx, enc, enc_prime)
    calls = {
        "expected_elbo": lambda: rpmref.expected_elbo(p_xx, enc, enc_prime, prior),
        "elbo_decomposition": lambda: rpmref.elbo_decomposition(p_xx, enc, enc_prime, prior),
        "infonce_limit": lambda: rpmref.infonce_limit(p_zz, f),
        "rpm_log_likelihood": lambda: rpmref.rpm_log_likelihood(p_xx, enc, enc_prime, prior),
    }
    floor = lambda: enc @ p_xx  # noqa: E731
    numbers = {name: loop_count(fn) for name, fn in calls.items()}
    floor_number = loop_count(floor)
    times = {name: [] for name in calls}
    ratios = {name: [] for name in calls}
    floors = []
    for _ in range(repeats):
        for name, fn in calls.items():
            t_floor = timed(floor, floor_number)
            t = timed(fn, numbers[name])
            floors.append(t_floor)
            times[name].append(t)
            ratios[name].append(t / t_floor)
    return ({name: (float(np.median(times[name])), float(np.median(ratios[name])))
             for name in calls}, float(np.median(floors)))


def threadpool_info_blas():
    from threadpoolctl import threadpool_info
    return [info for info in threadpool_info() if info.get("user_api") == "blas"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 300, 1000, 3000])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blas-threads", type=int, default=1)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    if args.blas_threads:
        threadpool_limits(args.blas_threads, user_api="blas")
    blas = ", ".join(f"{b['internal_api']} {b['version']} ({b.get('architecture')}, "
                     f"{b['num_threads']} threads)" for b in threadpool_info_blas())
    print(f"rpmref from {Path(rpmref.__file__).parent}; numpy {np.__version__}; {blas}")
    print(f"median of {args.repeats} paired runs; ratio = time / one n×n matmul timed just before")
    print(f"{'n':>6} {'matmul ms':>10} | " + " | ".join(f"{name:>24}" for name in FUNCTIONS))
    for n in args.sizes:
        results, floor = measure(n, args.repeats, rng)
        cells = [f"{results[name][0] * 1e3:10.3f} ms ({results[name][1]:6.2f}x)" for name in FUNCTIONS]
        print(f"{n:>6} {floor * 1e3:10.3f} | " + " | ".join(f"{c:>24}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
