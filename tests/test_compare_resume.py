"""An interrupted comparison resumes: finished runs are kept on disk as they finish
(rpmref.balls.runstore), a rerun trains only the missing ones and writes the same
results, and worker processes never outlive the comparison."""
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rpmref import cli
from rpmref.balls import compare, runstore
from test_compare import without_times

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRITICS = ("rbf", "cosine")
SEEDS = (0, 1)
N_RUNS = len(CRITICS) * len(SEEDS)


def settings():
    train_config, balls_config = compare.quick_configs()
    return dict(seeds=SEEDS, critics=CRITICS, train_config=train_config,
                balls_config=balls_config, curve_every=1, figure_seed=0, progress=False)


class Interrupt:
    """A ``log`` for run_compare that raises KeyboardInterrupt at the ``after``-th
    finished run (the parent's result loop, as a Ctrl-C there would) and keeps every
    line it was given."""

    def __init__(self, after=None):
        self.after, self.lines = after, []

    def __call__(self, line):
        self.lines.append(line)
        if self.after is not None and len(self.finished()) == self.after:
            raise KeyboardInterrupt

    def finished(self):
        return [line for line in self.lines if line.startswith("[")]


def stored_runs(out):
    return [(e["record"]["critic"], e["record"]["seed"])
            for e in runstore.load(str(out), "results").values()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted comparison (this process), its results.json and fig1.png."""
    out = tmp_path_factory.mktemp("reference")
    results = compare.run_compare(out_dir=str(out), jobs=1, log=lambda line: None, **settings())
    return results, json.loads((out / "results.json").read_text())


@pytest.mark.parametrize("jobs", [1, 2])
def test_interrupted_twice_then_rerun_trains_only_the_rest(jobs, reference, tmp_path):
    """Ctrl-C after 1 finished run, again after 1 more: both stay on disk (the second
    interruption used to overwrite the partial file with its own runs only); the third
    call trains only the rest and gives the uninterrupted results."""
    out = str(tmp_path)
    kept = []
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            compare.run_compare(out_dir=out, jobs=jobs, log=Interrupt(after=1), **settings())
        assert multiprocessing.active_children() == []  # the workers were stopped
        assert not os.path.exists(os.path.join(out, "results.json"))
        before, kept = kept, stored_runs(out)
        # every earlier run kept, at least one more; jobs 1: exactly the one finished
        # (jobs 2: a second run may have finished in the same batch, and is saved too)
        assert set(before) < set(kept) and len(kept) == len(set(kept))
        assert len(kept) - len(before) == 1 or jobs == 2
    if jobs == 1:
        assert kept == [("rbf", 0), ("rbf", 1)]  # the tasks' order

    log = Interrupt()
    results = compare.run_compare(out_dir=out, jobs=jobs, log=log, **settings())
    left = N_RUNS - len(kept)
    assert log.lines[0].startswith(f"comparison: {N_RUNS} runs, {left} to train")
    assert f"{len(kept)} finished earlier, resumed from" in log.lines[0]
    assert len(log.finished()) == left
    assert results["execution"]["resumed_runs"] == len(kept)
    assert without_times(results) == without_times(reference[0])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert without_times(saved) == without_times(reference[1])
    assert sorted(os.listdir(out)) == sorted(["results.json", "results.md", "fig1.png",
                                              runstore.LOCK_NAME])  # partial files dropped


def test_a_rerun_resumes_from_the_command_line(tmp_path, capsys, monkeypatch):
    """`rpmref balls compare` after a Ctrl-C (exit 130): the rerun trains the rest."""
    real_save = runstore.save
    calls = []

    def save_then_interrupt(*args):
        real_save(*args)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(runstore, "save", save_then_interrupt)
    argv = ["balls", "compare", "--quick", "--seeds", "2", "--critics", "rbf,cosine",
            "--jobs", "1", "--no-progress", "--out", str(tmp_path)]
    assert cli.main(argv) == 130
    assert capsys.readouterr().err == (
        f"rpmref balls compare: interrupted; 2 finished runs are kept in "
        f"{tmp_path / 'results.partial.json'}: run the same command again to train only "
        "the rest\n")
    assert len(stored_runs(tmp_path)) == 2
    monkeypatch.setattr(runstore, "save", real_save)
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "comparison: 4 runs, 2 to train in this process; 2 finished earlier" in out
    assert "in this process (2 runs finished earlier); wrote" in out
    run_lines = [line for line in out.splitlines() if line.startswith("[")]
    assert [line[:16] for line in run_lines] == ["[3/4] cosine   s", "[4/4] cosine   s"]


def test_runs_of_other_settings_stay_in_the_partial_files(reference, tmp_path):
    """A comparison of a subset reuses the runs it shares and leaves the others."""
    out = str(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        compare.run_compare(out_dir=out, jobs=1, log=Interrupt(after=3), **settings())
    assert stored_runs(out) == [("rbf", 0), ("rbf", 1), ("cosine", 0)]
    log = Interrupt()
    subset = dict(settings(), critics=("cosine",), seeds=(0,))
    results = compare.run_compare(out_dir=out, jobs=1, log=log, **subset)
    assert "1 run, 0 to train" in log.lines[0] and log.finished() == []
    assert without_times(results["runs"]) == without_times(
        {"cosine": reference[0]["runs"]["cosine"][:1]})
    assert stored_runs(out) == [("rbf", 0), ("rbf", 1)]  # kept for the comparison they belong to


def test_a_run_whose_arrays_are_lost_is_trained_again(reference, tmp_path):
    """The figure is drawn from the figure seed's latents, stored in results.partial.npz;
    without them those runs are trained again (and the result is the same)."""
    out = str(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        compare.run_compare(out_dir=out, jobs=1, log=Interrupt(after=2), **settings())
    json_path, npz_path = runstore.partial_paths(out, "results")
    with np.load(npz_path) as npz:  # rbf seed 0 (the figure seed) stored its six latents
        assert sorted(name.partition(":")[2] for name in npz.files) == [
            f"{kind}/{video}" for kind in ("z", "z_untrained") for video in ("held_out", "train")]
    os.remove(npz_path)
    log = Interrupt()
    results = compare.run_compare(out_dir=out, jobs=1, log=log, **settings())
    assert "3 to train" in log.lines[0]  # rbf seed 1 reused; rbf seed 0 trained again
    assert without_times(results) == without_times(reference[0])


@pytest.mark.parametrize("content, message", [
    ("{not json", "cannot read"),
    ('[{"critic": "rbf"}]', "not written by this version of rpmref"),
])
def test_an_unreadable_partial_file_is_refused_in_one_line(content, message, tmp_path, capsys):
    (tmp_path / "results.partial.json").write_text(content)
    code = cli.main(["balls", "compare", "--quick", "--jobs", "1", "--no-progress",
                     "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "move it away" in err and err.count("\n") == 1
    assert (tmp_path / "results.partial.json").read_text() == content  # never discarded


def test_a_second_comparison_in_the_same_directory_fails_at_once(tmp_path, capsys):
    with runstore.locked(str(tmp_path)):
        code = cli.main(["balls", "compare", "--quick", "--jobs", "1", "--no-progress",
                         "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert f"{tmp_path / runstore.LOCK_NAME}: another comparison is writing" in err
    assert not (tmp_path / "results.partial.json").exists()


def children_of(pid):
    """PIDs of the live (not zombie) processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(name))
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc to find the workers")
def test_workers_end_with_a_killed_parent(tmp_path):
    """SIGKILL of `rpmref balls compare --jobs 2`: its two workers and the resource
    tracker are gone within a few seconds (each worker watches its parent)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    # the default settings: runs of ~30 s, so the workers are busy when the parent dies
    parent = subprocess.Popen(
        [sys.executable, "-m", "rpmref", "balls", "compare", "--seeds", "1", "--jobs", "2",
         "--no-progress", "--out", str(tmp_path)], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(children_of(parent.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)  # two workers and the resource tracker
        children = children_of(parent.pid)
        assert len(children) == 3, "the workers did not start"
        time.sleep(1.0)  # past the workers' start-up, into their first run
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 5 * compare.parallel.PARENT_CHECK_SECONDS + 3
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in children if alive(pid)]
    for pid in left:  # do not leave them behind if the test fails
        os.kill(pid, signal.SIGKILL)
    assert left == []


WORKER_INTERRUPTED_AT_START = '''
import os, signal, sys
if __name__ == "__mp_main__":  # a worker importing the main module: Ctrl-C now
    os.kill(os.getpid(), signal.SIGINT)
from rpmref.balls import parallel

def double(task, shared):
    return 2 * task

if __name__ == "__main__":
    print(sorted(r for batch in parallel.run_tasks(double, [1, 2, 3], None, jobs=2)
                 for _, r in batch))
'''


def test_a_ctrl_c_while_a_worker_starts_breaks_nothing(tmp_path):
    """A Ctrl-C reaches every process of the terminal's group, the workers too, and a
    worker may still be importing (before its initializer ignores SIGINT): it must not
    die with a KeyboardInterrupt traceback and break the pool."""
    script = tmp_path / "interrupted_worker.py"
    script.write_text(WORKER_INTERRUPTED_AT_START)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "[2, 4, 6]\n", "")
