"""Time the exact discrete quantities against the practical floor: one n×n @ n×n matmul.

Run: python benchmarks/bench_discrete.py [--sizes 10 100 300 1000 3000] [--repeats 7]
n = n' = k = k' for every size. Prints the median time of each function and its ratio
to the median of one float64 matrix product of the same size, measured in the same
process. Target (issue 2): every ratio ≤ 5 at n = 1000.
"""
import argparse
import time

import numpy as np

import rpmref


def median_time(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 300, 1000, 3000])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"numpy {np.__version__}; median of {args.repeats} runs; ratio = time / one n×n matmul")
    print(f"{'n':>6} {'matmul ms':>10} | " + " | ".join(
        f"{name:>24}" for name in ("expected_elbo", "elbo_decomposition", "infonce_limit",
                                   "rpm_log_likelihood")))
    for n in args.sizes:
        p_xx, enc, enc_prime, prior, f = problem(n, rng)
        p_zz = rpmref.recognition_joint(p_xx, enc, enc_prime)
        floor = median_time(lambda: enc @ p_xx, args.repeats)
        cells = []
        for fn in (lambda: rpmref.expected_elbo(p_xx, enc, enc_prime, prior),
                   lambda: rpmref.elbo_decomposition(p_xx, enc, enc_prime, prior),
                   lambda: rpmref.infonce_limit(p_zz, f),
                   lambda: rpmref.rpm_log_likelihood(p_xx, enc, enc_prime, prior)):
            t = median_time(fn, args.repeats)
            cells.append(f"{t * 1e3:10.3f} ms ({t / floor:6.2f}x)")
        print(f"{n:>6} {floor * 1e3:10.3f} | " + " | ".join(f"{c:>24}" for c in cells))


if __name__ == "__main__":
    main()
