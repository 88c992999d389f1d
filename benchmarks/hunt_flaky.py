"""Hunt for flaky tests: run the suite under many seeds, orders and databases.

A test that passes in one run and fails in another (another hypothesis seed,
another collection, another order, a database left by an earlier failure) is a
bug in the test or in the code. This script looks for them on demand; it is not
part of the test suite. Stages (``--stages``):

``ci``      CI=true (the derandomised ``ci`` profile, no database): every test file
            alone, then the whole suite forward and in reverse order.
``hunt``    the ``hunt`` profile (dev with 10× max_examples) on the files that use
            hypothesis, once per ``--seeds`` value (``--hypothesis-seed``),
            alternating forward/reverse order; the first seed with a fresh
            database, the rest with the *dirty* database the earlier runs left.
``full``    the default ``dev`` profile (CI unset) on the whole suite, once per
            ``--full-seeds`` value with a fresh database and once in reverse
            order with the dirty one; then every file alone (first full seed,
            dirty database).

Each run is a separate ``python -m pytest`` whose working directory is its
database home (``.hypothesis/`` lives there), so the checkout's own
``.hypothesis/`` is never touched. Finished runs are appended to
``OUT/runs.jsonl`` as they end; ``--resume`` skips runs already there. Prints one
row per run and then every distinct failure with the runs it appeared in; exits 1
if any run failed.

    python benchmarks/hunt_flaky.py --seeds 1-8 --full-seeds 1,2 --jobs 2
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"


def parse_seeds(text):
    """'1-4,9' -> [1, 2, 3, 4, 9]."""
    seeds = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        try:
            seeds.extend(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            raise argparse.ArgumentTypeError(f"seeds must look like 1-4,9; got {text!r}")
    return seeds


def test_files():
    return sorted(p.relative_to(REPO).as_posix() for p in TESTS.glob("test_*.py"))


def hypothesis_files():
    return [f for f in test_files() if "@given" in (REPO / f).read_text()]


def plan(args):
    """The runs, in order: dicts with name, env, seed, order, db and files."""
    files, runs = test_files(), []

    def run(name, files, env, seed=None, order="forward", db="fresh"):
        runs.append(dict(name=name, files=list(files), env=env, seed=seed, order=order, db=db))

    ci = {"CI": "true"}
    if "ci" in args.stages:
        for f in files:
            run(f"ci alone {Path(f).stem}", [f], ci)
        run("ci full", files, ci)
        run("ci full reversed", files, ci, order="reverse")
    if "hunt" in args.stages:
        hunt = {"HYPOTHESIS_PROFILE": "hunt"}
        for i, seed in enumerate(args.seeds):
            order = "forward" if i % 2 == 0 else "reverse"
            run(f"hunt seed {seed}", args.files or hypothesis_files(), hunt, seed, order,
                "fresh" if i == 0 else "dirty")
    if "full" in args.stages:
        for seed in args.full_seeds:
            run(f"dev full seed {seed}", files, {}, seed)
            run(f"dev full seed {seed} reversed", files, {}, seed, "reverse", "dirty")
        if args.full_seeds:
            for f in files:
                run(f"dev alone {Path(f).stem} seed {args.full_seeds[0]}", [f], {},
                    args.full_seeds[0], db="dirty")
    return runs


def execute(spec, out):
    """Run one pytest process; returns the spec with counts, failures and wall time."""
    slug = spec["name"].replace(" ", "_")
    home = out / "dirty" if spec["db"] == "dirty" else out / "fresh" / slug
    if spec["db"] == "fresh":
        shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    report = out / "junit" / f"{slug}.xml"
    report.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if k not in ("CI", "HYPOTHESIS_PROFILE", "RPMREF_TEST_ORDER")}
    env.update(spec["env"])
    if spec["order"] == "reverse":
        env["RPMREF_TEST_ORDER"] = "reverse"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "--rootdir", str(REPO), "-c", str(REPO / "setup.cfg"),
               f"--junitxml={report}"]
    if spec["seed"] is not None:
        command.append(f"--hypothesis-seed={spec['seed']}")
    command += [str(REPO / f) for f in spec["files"]]
    start = time.monotonic()
    try:
        done = subprocess.run(command, cwd=home, env=env, capture_output=True, text=True,
                              timeout=spec["timeout"])
        code, tail = done.returncode, done.stdout[-2000:]
    except subprocess.TimeoutExpired:
        code, tail = "timeout", ""
    result = dict(spec, seconds=round(time.monotonic() - start, 1), exit=code,
                  **read_junit(report, tail))
    report.unlink(missing_ok=True)
    return result


def read_junit(path, tail):
    counts = dict(passed=0, failed=0, skipped=0, failures=[])
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        counts["failures"].append({"test": "(no report)", "message": tail[-300:]})
        counts["failed"] = 1
        return counts
    for case in root.iter("testcase"):
        test = f"{case.get('classname')}::{case.get('name')}"
        bad = case.find("failure")
        bad = bad if bad is not None else case.find("error")
        if bad is not None:
            counts["failed"] += 1
            message = (bad.get("message") or bad.text or "").strip().splitlines()
            counts["failures"].append({"test": test, "message": message[0][:200] if message else ""})
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts


def describe(spec):
    env = " ".join(f"{k}={v}" for k, v in spec["env"].items()) or "dev"
    return env, "-" if spec["seed"] is None else str(spec["seed"])


def print_tables(results):
    print(f"\n{'run':<44} {'env':<24} {'seed':>4} {'order':<8} {'db':<5} "
          f"{'pass':>5} {'fail':>4} {'skip':>4} {'s':>6}")
    for r in results:
        env, seed = describe(r)
        print(f"{r['name']:<44} {env:<24} {seed:>4} {r['order']:<8} {r['db']:<5} "
              f"{r['passed']:>5} {r['failed']:>4} {r['skipped']:>4} {r['seconds']:>6.0f}")
    failures = {}
    for r in results:
        for f in r["failures"]:
            failures.setdefault(f["test"], {"message": f["message"], "runs": []})["runs"].append(
                r["name"])
    total = sum(r["seconds"] for r in results)
    print(f"\n{len(results)} runs, {sum(r['passed'] for r in results)} test passes, "
          f"{sum(r['failed'] for r in results)} failures, {total / 60:.1f} min of runs")
    for test, info in failures.items():
        print(f"\nFAILED {test}\n  {info['message']}\n  in: {', '.join(info['runs'])}")
    return not failures


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Stages: ci (every file alone and the suite both ways under CI=true), "
               "hunt (hunt profile, 10x examples, per seed), full (dev profile, whole suite "
               "per full seed, forward/fresh then reversed/dirty, then every file alone).")
    parser.add_argument("--stages", default="ci,hunt,full",
                        help="comma-separated subset of ci,hunt,full (default: all)")
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("1-8"),
                        help="hypothesis seeds for the hunt stage, e.g. 1-8,20 (default 1-8)")
    parser.add_argument("--full-seeds", type=parse_seeds, default=parse_seeds("1,2"),
                        help="seeds for the full stage (default 1,2)")
    parser.add_argument("--files", nargs="+",
                        help="test files for the hunt stage (default: every file using @given)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (default 1)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "hunt_flaky",
                        help="databases, reports and runs.jsonl (default runs/hunt_flaky)")
    parser.add_argument("--resume", action="store_true",
                        help="keep OUT (and its dirty database); skip runs already logged")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    args = parser.parse_args(argv)
    args.stages = set(filter(None, args.stages.split(",")))
    if not args.stages <= {"ci", "hunt", "full"}:
        parser.error(f"--stages must be a subset of ci,hunt,full; got {sorted(args.stages)}")
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1; got {args.jobs}")
    runs = plan(args)
    for spec in runs:
        spec["timeout"] = args.timeout
    if args.dry_run:
        for spec in runs:
            env, seed = describe(spec)
            print(f"{spec['name']:<44} {env:<24} {seed:>4} {spec['order']:<8} {spec['db']:<5} "
                  f"{len(spec['files'])} files")
        return 0

    log = args.out / "runs.jsonl"
    if not args.resume:
        shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    done = {}
    if log.exists():
        for line in log.read_text().splitlines():
            record = json.loads(line)
            done[record["name"]] = record
    todo = [s for s in runs if s["name"] not in done]
    print(f"{len(runs)} runs planned, {len(runs) - len(todo)} already logged, "
          f"{args.jobs} at a time", flush=True)

    def one(spec):
        result = execute(spec, args.out)
        with open(log, "a") as f:           # one line per finished run: nothing is lost
            f.write(json.dumps(result) + "\n")
        status = "ok" if result["failed"] == 0 else f"{result['failed']} FAILED"
        print(f"  {spec['name']}: {result['passed']} passed, {status} "
              f"({result['seconds']:.0f} s)", flush=True)
        return result

    # runs start in plan order; with --jobs > 1, dirty runs at the same time share one
    # database directory (hypothesis writes each entry by an atomic rename)
    with ThreadPoolExecutor(args.jobs) as pool:
        results = {r["name"]: r for r in pool.map(one, todo)}
    results.update(done)
    return 0 if print_tables([results[s["name"]] for s in runs]) else 1


if __name__ == "__main__":
    sys.exit(main())
