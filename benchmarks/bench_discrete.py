"""Time the exact discrete quantities against the practical floor: one n×n @ n×n matmul.

Run: python benchmarks/bench_discrete.py [--sizes 10 100 300 1000 3000] [--repeats 7]
     [--blas-threads 1]
n = n' = k = k' for every size (random dense tables, seed --seed). Prints the median
time of each function and its ratio to the median of one float64 matrix product of
the same size. The floor and the functions are timed in interleaved rounds in the
same process, so load from other processes hits both alike. BLAS is pinned to
--blas-threads threads (default 1; 0 leaves the library's default): on a shared
machine a multithreaded BLAS can stall for tens of milliseconds waiting for a core,
which swamps the work being measured. Goal: ratio ≤ 10 at n = 100, ≤ 3 at n ≥ 1000.

To compare with another checkout, run this script with PYTHONPATH pointing at it.
"""
import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

import rpmref
from rpmref.environment import blas_libraries


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


def functions(p_xx, enc, enc_prime, prior, f):
    """name -> zero-argument callable, for one problem."""
    p_zz = rpmref.recognition_joint(p_xx, enc, enc_prime)
    return {
        "expected_elbo": lambda: rpmref.expected_elbo(p_xx, enc, enc_prime, prior),
        "elbo_decomposition": lambda: rpmref.elbo_decomposition(p_xx, enc, enc_prime, prior),
        "infonce_limit": lambda: rpmref.infonce_limit(p_zz, f),
        "rpm_log_likelihood": lambda: rpmref.rpm_log_likelihood(p_xx, enc, enc_prime, prior),
    }


def interleaved_medians(callables, repeats):
    """Median seconds of each callable, timed round-robin after one warm-up call each."""
    for fn in callables.values():
        fn()
    times = {name: [] for name in callables}
    for _ in range(repeats):
        for name, fn in callables.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 300, 1000, 3000])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blas-threads", type=int, default=1)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    limits = threadpool_limits(args.blas_threads, user_api="blas") if args.blas_threads else None
    blas = ", ".join(f"{b['library']} {b['version']} ({b['kernel']}, {b['threads']} threads)"
                     for b in blas_libraries())
    print(f"rpmref from {rpmref.__file__}; numpy {np.__version__}; {blas}")
    print(f"median of {args.repeats} interleaved runs; ratio = time / one n×n matmul")
    names = None
    for n in args.sizes:
        p_xx, enc, enc_prime, prior, f = problem(n, rng)
        callables = {"matmul": lambda: enc @ p_xx, **functions(p_xx, enc, enc_prime, prior, f)}
        if names is None:
            names = [name for name in callables if name != "matmul"]
            print(f"{'n':>6} {'matmul ms':>10} | " + " | ".join(f"{name:>24}" for name in names))
        medians = interleaved_medians(callables, args.repeats)
        floor = medians["matmul"]
        cells = [f"{medians[name] * 1e3:10.3f} ms ({medians[name] / floor:6.2f}x)" for name in names]
        print(f"{n:>6} {floor * 1e3:10.3f} | " + " | ".join(f"{c:>24}" for c in cells), flush=True)
    if limits is not None:
        limits.restore_original_limits()


if __name__ == "__main__":
    main()
