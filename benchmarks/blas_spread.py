"""How far a comparison's numbers move between two runs that differ only in the machine
arithmetic (the BLAS kernel, the thread count, the library).

Run the same comparison twice, e.g.

    rpmref balls compare --out cmp_default
    OPENBLAS_CORETYPE=Haswell rpmref balls compare --out cmp_haswell
    python benchmarks/blas_spread.py cmp_default/results.json cmp_haswell/results.json

and this prints, per critic and seed, each headline number from both runs and their
difference, then the largest difference per number over all runs, and whether any
conclusion changed (maps tracking a ball). The BLAS kernel each run used is read from
its results file (``environment.blas``), so the table says what was compared.
"""
import argparse
import json
import sys

#: (label, function of one run's held-out scores dict and the run) for the table
NUMBERS = (
    ("readout R²", lambda s, run: s["r2_overall"]),
    ("min map R²", lambda s, run: s["min_matched_r2"]),
    ("mean map R²", lambda s, run: s["mean_matched_r2"]),
    ("within radius", lambda s, run: s["mean_within_radius"]),
    ("maps tracked", lambda s, run: s["maps_tracked"]),
    ("InfoNCE (nats)", lambda s, run: run.get("estimate", run.get("final_estimate"))),
)


def load(path):
    try:
        with open(path) as handle:
            results = json.load(handle)
    except (OSError, ValueError) as err:
        sys.exit(f"blas_spread: cannot read {path}: {err}")
    if "runs" not in results or "environment" not in results:
        sys.exit(f"blas_spread: {path} is not a results.json of rpmref balls compare")
    return results


def kernels(results):
    blas = results["environment"].get("blas") or [{}]
    return ", ".join(f"{b.get('library', '?')} {b.get('version', '')} {b.get('kernel', '?')} "
                     f"({b.get('threads', '?')} thread)" for b in blas)


def run_values(run):
    scores = run["scores"]["held_out"]
    return [fn(scores, run) for _, fn in NUMBERS]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", help="results.json of the first run")
    parser.add_argument("second", help="results.json of the second run")
    args = parser.parse_args(argv)
    a, b = load(args.first), load(args.second)
    if a["settings"] != b["settings"]:
        sys.exit("blas_spread: the two results have different settings; compare like with like")
    print(f"A: {args.first}: {kernels(a)}")
    print(f"B: {args.second}: {kernels(b)}\n")
    header = "| critic | seed | " + " | ".join(f"{label} A / B" for label, _ in NUMBERS) + " |"
    print(header)
    print("|" + "---|" * (2 + len(NUMBERS)))
    largest = [0.0] * len(NUMBERS)
    changed = []
    for critic in a["runs"]:
        for run_a, run_b in zip(a["runs"][critic], b["runs"][critic]):
            va, vb = run_values(run_a), run_values(run_b)
            cells = []
            for i, (x, y) in enumerate(zip(va, vb)):
                if x is None or y is None:
                    cells.append("–")
                    continue
                largest[i] = max(largest[i], abs(x - y))
                cells.append(f"{x:.4g} / {y:.4g}" if isinstance(x, float) else f"{x} / {y}")
            if va[4] != vb[4]:
                changed.append(f"{critic} seed {run_a['seed']}: maps tracked {va[4]} vs {vb[4]}")
            print(f"| {critic} | {run_a['seed']} | " + " | ".join(cells) + " |")
    print("\nlargest |A − B| over all runs: " + ", ".join(
        f"{label} {value:.3g}" for (label, _), value in zip(NUMBERS, largest)))
    print("conclusions that changed: " + ("; ".join(changed) if changed else "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
