"""`rpmref balls compare --dask`: every run a task on a Dask cluster, the same results
as --jobs 1 to the bit, partial results written as the runs finish."""
import json

import pytest

distributed = pytest.importorskip(
    "distributed", reason="Dask's distributed is not installed (pip install distributed)")

from rpmref import cli  # noqa: E402
from rpmref.balls import compare, runstore  # noqa: E402
from test_compare import without_times  # noqa: E402
from test_compare_resume import Interrupt, settings, stored_runs  # noqa: E402

QUICK_SWEEP = ["balls", "compare", "--quick", "--sweep", "--seeds", "1", "--no-progress"]


@pytest.fixture(scope="module")
def cluster():
    """A scheduler and 2 worker processes of 1 thread each, on the loopback interface."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0") as local:
        yield local


@pytest.fixture(scope="module")
def in_this_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("jobs1")
    assert cli.main(QUICK_SWEEP + ["--jobs", "1", "--out", str(out)]) == 0
    return out


def test_quick_sweep_on_a_cluster_equals_jobs_1(cluster, in_this_process, tmp_path, capsys):
    code = cli.main(QUICK_SWEEP + ["--dask", cluster.scheduler_address, "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert f"comparison: 3 runs, 3 to train on Dask cluster {cluster.scheduler_address} " \
           f"(2 workers)" in out
    for name in ("results.json", "sweep.json"):
        on_dask = json.loads((tmp_path / name).read_text())
        assert without_times(on_dask) == without_times(
            json.loads((in_this_process / name).read_text()))
        execution = on_dask["execution"]
        assert execution["backend"] == "dask" and len(execution["workers"]) == 2
        assert all("numpy" in env for env in execution["workers"].values())
    assert (tmp_path / "fig1.png").stat().st_size > 0
    assert not list(tmp_path.glob("*.partial.*"))


def test_an_interrupted_cluster_run_resumes_with_jobs(cluster, tmp_path):
    """Partial results are written as the cluster's runs finish, exactly as with --jobs;
    a rerun (here in this process) trains the rest and gives the same results."""
    with distributed.Client(cluster) as client:
        with pytest.raises(KeyboardInterrupt):
            compare.run_compare(out_dir=str(tmp_path), dask=client, log=Interrupt(after=1),
                                **settings())
        kept = stored_runs(tmp_path)
        assert 1 <= len(kept) <= 2  # two workers: at most two finished at once
    log = Interrupt()
    resumed = compare.run_compare(out_dir=str(tmp_path), jobs=1, log=log, **settings())
    assert len(log.finished()) == 4 - len(kept)
    fresh = compare.run_compare(jobs=1, log=lambda line: None, **settings())
    assert without_times(resumed) == without_times(fresh)


def test_local_n_starts_and_stops_its_own_cluster(tmp_path):
    results = compare.run_compare(out_dir=str(tmp_path), dask="local:1",
                                  log=lambda line: None, **dict(settings(), critics=("rbf",),
                                                                seeds=(0,)))
    assert results["execution"]["backend"] == "dask"
    assert len(results["execution"]["workers"]) == 1
    assert runstore.load(str(tmp_path), "results") == {}


def test_local_workers_ignore_ctrl_c():
    """A terminal's Ctrl-C reaches the whole process group: the workers of local:N ignore it
    (the parent closes the cluster) instead of printing a traceback each."""
    import signal

    from rpmref.balls.parallel import dask_client
    with dask_client("local:1") as client:
        ignored = client.run(lambda: signal.getsignal(signal.SIGINT) == signal.SIG_IGN)
    assert list(ignored.values()) == [True]


def test_a_local_cluster_that_cannot_start_is_one_line(tmp_path, capsys, monkeypatch):
    def no_loopback(*args, **kwargs):
        raise RuntimeError("Cluster failed to start: Timed out trying to connect to "
                           "tcp://127.0.0.1:35085 after 30 s\nmore detail")
    monkeypatch.setattr(distributed, "LocalCluster", no_loopback)
    code = cli.main(["balls", "compare", "--quick", "--dask", "local:2", "--out",
                     str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("rpmref balls compare: error: --dask local:2: Cluster failed to start")
