"""Wall time of `rpmref balls compare` with worker processes against a Dask LocalCluster.

Each measurement is one fresh command (a new process, a new --out), so start-up
(spawning the workers, or starting the scheduler, nannies and workers) is
included, as a user sees it. The backends alternate within every repeat, so a
change in the machine's load hits both alike; the table gives the median and
range over repeats and the ratio of the medians.

    python benchmarks/bench_compare_backends.py                   # --quick --sweep, 3 repeats
    python benchmarks/bench_compare_backends.py --default         # the 9-run comparison, once
    python benchmarks/bench_compare_backends.py --backends "--jobs 1" "--jobs 2"

Run it from the repository root (the command imports this checkout's rpmref).
"""
import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--default", action="store_true",
                   help="the default comparison (9 runs of the full settings) instead of "
                        "--quick --sweep")
    p.add_argument("--repeats", type=int, default=None,
                   help="commands per backend (default 3 with --quick --sweep, 1 with --default)")
    p.add_argument("--backends", nargs="+", default=["--jobs 2", "--dask local:2"],
                   help="the compare options that choose where the runs go")
    return p.parse_args(argv)


def run(command, out):
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rpmref", "balls", "compare", *command,
                           "--no-progress", "--out", out], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return seconds


def main(argv=None):
    args = parse_args(argv)
    work = ["--quick", "--sweep"] if not args.default else []
    repeats = args.repeats or (1 if args.default else 3)
    times = {backend: [] for backend in args.backends}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(repeats):
            for index, backend in enumerate(args.backends):
                out = os.path.join(scratch, f"{repeat}-{index}")
                seconds = run(work + shlex.split(backend), out)
                times[backend].append(seconds)
                print(f"# repeat {repeat + 1}/{repeats}: {backend}: {seconds:.1f} s", flush=True)
    what = "rpmref balls compare " + (" ".join(work) or "(default: 3 critics x 3 seeds)")
    print(f"\n{what}; wall time of the whole command, {repeats} repeat(s), "
          f"{os.cpu_count()} cores\n")
    print("| backend | median s | min s | max s | / first |")
    print("|---|---|---|---|---|")
    first = statistics.median(times[args.backends[0]])
    for backend, values in times.items():
        median = statistics.median(values)
        print(f"| {backend} | {median:.1f} | {min(values):.1f} | {max(values):.1f} | "
              f"{median / first:.2f} |")


if __name__ == "__main__":
    main()
