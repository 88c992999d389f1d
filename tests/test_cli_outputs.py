"""Every command checks its outputs before any work and fails in one line: bad
arguments exit 2, a failure during the run (an OSError) exits 1 and names the file;
no traceback. Also: no abbreviated flags, no repeated critics, --quick writes
elsewhere, and a finished comparison is never overwritten without --overwrite."""
import argparse
import errno
import json
import os
import subprocess
import sys

import pytest

from rpmref import cli
from rpmref.balls import compare, parallel, runstore
from rpmref.cli import compare as compare_command
from rpmref.cli.common import UsageError, check_output_dir, check_output_file


def one_line_error(capsys, prog):
    err = capsys.readouterr().err
    assert err.startswith(f"{prog}: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def exits_2(argv, capsys, prog):
    """The parser refuses argv: SystemExit 2 and one line."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    return one_line_error(capsys, prog)


@pytest.fixture
def no_work(monkeypatch):
    """Make every long computation fail the test: the checks must come first."""
    def forbidden(*args, **kwargs):
        pytest.fail("the command started its work before checking its outputs")
    import rpmref.proofs.run
    from rpmref.cli import mi_bench
    monkeypatch.setattr(rpmref.proofs.run, "run_proofs", forbidden)
    monkeypatch.setattr(compare_command, "run_compare", forbidden)
    monkeypatch.setattr(compare_command, "run_sweep", forbidden)
    monkeypatch.setattr(mi_bench, "benchmark_rows", forbidden)


# --------------------------------------------------------------------------
# output locations


def test_proofs_report_in_a_missing_directory_fails_before_the_proofs(tmp_path, capsys, no_work):
    """It used to run every proof and then raise FileNotFoundError."""
    assert cli.main(["proofs", "--report", str(tmp_path / "nodir" / "r.md")]) == 2
    err = one_line_error(capsys, "rpmref proofs")
    assert "--report" in err and "does not exist" in err


@pytest.mark.parametrize("name", ["r.txt", "r", ".md"])
def test_proofs_report_must_be_a_markdown_file(name, tmp_path, capsys, no_work):
    assert cli.main(["proofs", "--report", str(tmp_path / name)]) == 2
    assert "--report must be a file name ending in .md" in one_line_error(capsys, "rpmref proofs")


def test_proofs_report_write_failure_is_exit_1(tmp_path, capsys, monkeypatch):
    import rpmref.proofs.report
    path = tmp_path / "r.md"

    def full_disk(target, results, max_size):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(rpmref.proofs.report, "write_report", full_disk)
    assert cli.main(["proofs", "--only", "L1", "--report", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.endswith(f"rpmref proofs: error: {path}: No space left on device\n")
    assert err.count("\n") == 1


@pytest.mark.parametrize("only", [[""], [",", " "]])
def test_proofs_only_with_no_id_exits_2(only, capsys, no_work):
    """`--only ''` used to run nothing and exit 0."""
    assert cli.main(["proofs", "--only", *only]) == 2
    assert "--only names no proof ID" in one_line_error(capsys, "rpmref proofs")


def test_compare_out_under_a_file_fails_before_training(tmp_path, capsys, no_work):
    """`--out afile/sub` used to fail after the first training run."""
    (tmp_path / "afile").write_text("x")
    assert cli.main(["balls", "compare", "--quick", "--out",
                     str(tmp_path / "afile" / "sub")]) == 2
    err = one_line_error(capsys, "rpmref balls compare")
    assert "--out" in err and "is not a directory" in err


def test_compare_out_that_is_a_file_fails_before_training(tmp_path, capsys, no_work):
    (tmp_path / "afile").write_text("x")
    assert cli.main(["balls", "compare", "--quick", "--out", str(tmp_path / "afile")]) == 2
    assert "exists and is not a directory" in one_line_error(capsys, "rpmref balls compare")


def test_a_write_failure_during_a_comparison_is_exit_1(tmp_path, capsys, monkeypatch):
    """An OSError once runs are training (a full disk, say): one line with the file."""
    def full_disk(out_dir, stem, entries):
        raise OSError(errno.ENOSPC, "No space left on device",
                      runstore.partial_paths(out_dir, stem)[0])

    monkeypatch.setattr(runstore, "save", full_disk)
    assert cli.main(["balls", "compare", "--quick", "--seeds", "1", "--critics", "rbf",
                     "--jobs", "1", "--no-progress", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == (f"rpmref balls compare: error: {tmp_path / 'results.partial.json'}: "
                   f"No space left on device\n")


def test_check_output_file_and_dir(tmp_path):
    """The shared helper: the folder must exist and be writable, the suffix right."""
    assert check_output_file(str(tmp_path / "a.md"), "--x", suffixes=(".md",))
    assert not os.path.exists(tmp_path / "a.md")  # checked, not created
    for bad, message in [(tmp_path / "a.MD.txt", "ending in .md"),
                         (tmp_path / "no" / "a.md", "does not exist"),
                         (tmp_path, "ending in .md")]:
        with pytest.raises(UsageError, match=message):
            check_output_file(str(bad), "--x", suffixes=(".md",))
    with pytest.raises(UsageError, match="--x /proc/a.md: cannot write in /proc"):
        check_output_file("/proc/a.md", "--x", suffixes=(".md",))
    assert check_output_dir(str(tmp_path / "new" / "dir"), "--out")
    assert os.path.isdir(tmp_path / "new" / "dir")
    assert os.listdir(tmp_path / "new" / "dir") == []  # the write probe is removed


# --------------------------------------------------------------------------
# arguments


def all_parsers(parser=None):
    """Every parser of the ``rpmref`` command line (the top level and every subcommand)."""
    parser = parser or cli.build_parser()
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from all_parsers(sub)


def test_no_command_takes_abbreviated_flags():
    parsers = list(all_parsers())
    assert len(parsers) >= 8  # rpmref, verify, proofs, mi-bench, balls, make, train, compare
    assert all(not p.allow_abbrev for p in parsers), [p.prog for p in parsers if p.allow_abbrev]


def test_seed_is_not_an_abbreviation_of_seeds(capsys, no_work):
    """`--seed 1` used to be taken as `--seeds 1`."""
    err = exits_2(["balls", "compare", "--seed", "1"], capsys, "rpmref balls compare")
    assert "unrecognized arguments: --seed 1 (see rpmref balls compare --help)" in err


@pytest.mark.parametrize("argv, message", [
    (["--critics", "rbf,rbf"], "rbf repeated"),
    (["--critics", "rbf,,cosine"], "got 'rbf,,cosine'"),     # an empty item, as --levels
    (["--critics", "rbf,"], "got 'rbf,'"),
    (["--optimizers", "sgd,,adam"], "got 'sgd,,adam'"),
    (["--lrs", "1e-3,"], "got '1e-3,'"),
    (["--optimizers", "sgd,adam,sgd"], "sgd repeated"),
    (["--lrs", "0.01,1e-2"], "0.01 repeated"),
    (["--jobs", "1000"], "at most"),
    (["--dask", "local:0"], "local:N"),
    (["--dask", "nowhere"], "scheduler address"),
])
def test_compare_refuses_repeats_and_impossible_sizes(argv, message, capsys, no_work):
    """`--critics rbf,rbf` trained the same runs twice and reported them as 2 seeds."""
    assert message in exits_2(["balls", "compare", *argv], capsys, "rpmref balls compare")


def test_the_library_refuses_repeated_critics_and_seeds():
    with pytest.raises(ValueError, match="critics must not repeat.*rbf"):
        compare.run_compare(critics=("rbf", "rbf"), seeds=(0,))
    with pytest.raises(ValueError, match="seeds must not repeat.*0"):
        compare.run_sweep(seeds=(0, 0))
    with pytest.raises(ValueError, match="learning_rates must not repeat"):
        compare.run_sweep(seeds=(0,), learning_rates=(0.01, 0.01))


def test_jobs_and_dask_are_exclusive(capsys, no_work):
    assert cli.main(["balls", "compare", "--jobs", "2", "--dask", "local:2"]) == 2
    assert "--jobs and --dask are exclusive" in one_line_error(capsys, "rpmref balls compare")


def test_dask_without_distributed_says_how_to_install(capsys, monkeypatch, no_work):
    def missing():
        raise ImportError(f"Dask's distributed package is not installed: "
                          f"{parallel.CLUSTER_INSTALL}")

    monkeypatch.setattr(parallel, "import_distributed", missing)
    assert cli.main(["balls", "compare", "--quick", "--dask", "local:2"]) == 2
    err = one_line_error(capsys, "rpmref balls compare")
    assert "--dask" in err and "pip install distributed" in err


# --------------------------------------------------------------------------
# where results go, and never overwriting a finished one


def test_quick_writes_to_its_own_default_directory(tmp_path, monkeypatch):
    """--quick once replaced a finished 5-minute comparison in compare_out."""
    calls = []
    monkeypatch.setattr(compare_command, "run_compare",
                        lambda *args, **kwargs: calls.append(args[4]) or pytest.skip("seen"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(pytest.skip.Exception):
        cli.main(["balls", "compare", "--quick", "--no-progress"])
    assert calls == [compare_command.QUICK_OUT] and compare_command.QUICK_OUT != \
        compare_command.DEFAULT_OUT


def tiny(**changes):
    train_config, balls_config = compare.quick_configs()
    return dict(dict(seeds=(0,), critics=("rbf",), train_config=train_config,
                     balls_config=balls_config, curve_every=1, progress=False, jobs=1,
                     log=lambda line: None), **changes)


def test_a_finished_comparison_is_kept(tmp_path, capsys, monkeypatch):
    """Same settings: read back, nothing trained. Other settings: refused (library:
    FileExistsError; command line: exit 2 naming --overwrite) and the file unchanged.
    With overwrite: trained again and replaced."""
    out = str(tmp_path)
    first = compare.run_compare(out_dir=out, **tiny())
    saved = (tmp_path / "results.json").read_text()

    trained = []
    real_run_all = compare._run_all
    monkeypatch.setattr(compare, "_run_all",
                        lambda *a, **k: trained.append(1) or real_run_all(*a, **k))
    lines = []
    again = compare.run_compare(out_dir=out, **tiny(log=lines.append))
    assert trained == [] and "is finished with these settings" in lines[0]
    assert again == json.loads(saved) and again["summary"] == json.loads(
        json.dumps(runstore.jsonable(first["summary"])))

    with pytest.raises(FileExistsError, match="finished result with other settings"):
        compare.run_compare(out_dir=out, **tiny(seeds=(0, 1)))
    assert cli.main(["balls", "compare", "--quick", "--critics", "rbf", "--jobs", "1",
                     "--no-progress", "--out", out]) == 2
    err = one_line_error(capsys, "rpmref balls compare")
    assert "holds a finished comparison (results.json) of other settings" in err
    assert "--overwrite" in err
    assert (tmp_path / "results.json").read_text() == saved

    compare.run_compare(out_dir=out, overwrite=True, **tiny())
    assert trained == [1]
    assert (tmp_path / "results.json").read_text() != saved  # new wall times


def test_a_finished_comparison_run_again_says_nothing_was_written(tmp_path, capsys):
    """Bug: the rerun logged 'nothing to train', then 'total 13.6 s; wrote .../results.json,
    results.md, fig1.png' with the old run's time, for files it had not touched."""
    argv = ["balls", "compare", "--quick", "--critics", "rbf", "--seeds", "1", "--jobs", "1",
            "--no-progress", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    assert "; wrote " in capsys.readouterr().out.splitlines()[-1]
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert cli.main(argv) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert "wrote" not in last and "nothing written" in last and "when it ran" in last
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == stamps


@pytest.mark.parametrize("argv, unknown, prog", [
    (["balls", "train", "--out", "x", "--quick"], "--quick", "rpmref balls train"),
    (["verify", "--bogus"], "--bogus", "rpmref verify"),
    (["balls", "make", "--out", "v.npz", "--fps", "3"], "--fps 3", "rpmref balls make"),
    # before the command word, the option is the level's own mistake: `rpmref --bogus
    # verify` blamed verify, and `rpmref --versio` said "required: COMMAND"
    (["--bogus", "verify"], "--bogus", "rpmref"),
    (["--versio"], "--versio", "rpmref"),
    (["balls", "--bogus"], "--bogus", "rpmref balls"),
    (["balls", "--bogus", "train", "--out", "x"], "--bogus", "rpmref balls"),
])
def test_an_unknown_flag_is_reported_by_its_own_command(argv, unknown, prog, capsys, no_work):
    err = exits_2(argv, capsys, prog)
    assert err == f"{prog}: error: unrecognized arguments: {unknown} (see {prog} --help)\n", err


@pytest.mark.parametrize("argv, prog, missing", [([], "rpmref", "COMMAND"),
                                                 (["balls"], "rpmref balls", "BALLS_COMMAND")])
def test_a_missing_command_word_is_named(argv, prog, missing, capsys, no_work):
    err = exits_2(argv, capsys, prog)
    assert err == (f"{prog}: error: the following arguments are required: {missing} "
                   f"(see {prog} --help)\n"), err


def test_help_never_shows_a_meaningless_default():
    """Every option has help text; a required option, a None default and a flag's False
    are not printed as "(default: None)" / "(default: False)"."""
    for parser in all_parsers():
        text = parser.format_help()
        assert "(default: None)" not in text and "(default: False)" not in text, parser.prog
        for action in parser._actions:
            if action.option_strings and action.help is not argparse.SUPPRESS:
                assert action.help, (parser.prog, action.option_strings)


def test_a_closed_output_pipe_exits_141_quietly():
    """`rpmref verify --json | head -c 10`: the reader leaves; exit 128 + SIGPIPE, no message.
    The command prints 1 MB, more than a pipe holds, so the write meets the closed pipe."""
    code = ("import sys; from rpmref.cli.common import run_command; "
            "sys.exit(run_command(lambda args: print('x' * 10 ** 6), None, 'rpmref'))")
    proc = subprocess.Popen([sys.executable, "-c", code],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait() == 141 and err == b"", err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("argv,prog", [(["--help"], "rpmref"), (["--version"], "rpmref"),
                                       (["balls", "train", "--help"], "rpmref balls train")])
def test_help_on_a_full_stdout_fails_in_one_line(argv, prog):
    """`rpmref --help > /dev/full` exited 0 with the text lost (argparse ignores the error)."""
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "rpmref", *argv], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 1, proc
    assert proc.stderr == f"{prog}: error: cannot write to stdout: No space left on device\n"


def test_help_into_a_closed_pipe_exits_141_quietly():
    """The reader of `rpmref balls train --help | true` left before the text came."""
    code = ("import os, sys; from rpmref.cli import main; r, w = os.pipe(); os.close(r); "
            "os.dup2(w, 1); sys.exit(main(['balls', 'train', '--help']))")
    proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=120)
    assert proc.returncode == 141 and proc.stderr == b"", proc


@pytest.mark.parametrize("argv", [
    ["mi-bench", "--figure", ""],
    ["proofs", "--report", ""],
    ["structure", "--figure", ""],
    ["structure", "--json", ""],
], ids=lambda argv: " ".join(argv[:2]))
def test_an_empty_output_path_is_refused_not_skipped(argv, capsys, no_work, monkeypatch):
    """Bug: '' is false, so `--json ''` and the like ran the whole command and wrote nothing."""
    import rpmref.cli.structure
    monkeypatch.setattr(rpmref.cli.structure, "run_experiment",
                        lambda *a, **k: pytest.fail("structure ran before checking its outputs"))
    assert cli.main(argv) == 2
    err = one_line_error(capsys, f"rpmref {argv[0]}")
    assert f"{argv[1]} must be a file name" in err


def test_input_and_output_messages_say_what_the_path_is(tmp_path):
    """Bug: a directory given as an input file was 'no such file', a dangling symbolic link
    likewise, and an output under a regular file 'directory ... does not exist'."""
    from rpmref.cli.common import check_input_file
    (tmp_path / "afile").write_text("")
    os.symlink(tmp_path / "gone", tmp_path / "link")
    os.symlink(os.devnull, tmp_path / "device")    # was "a link to '/dev/null', which does not exist"
    for path, message in [(tmp_path, "is a directory, not a file"),
                          (tmp_path / "link", "a symbolic link to .*gone.*, which does not exist"),
                          (tmp_path / "device", "not a regular file"),
                          (os.devnull, "not a regular file"),
                          (tmp_path / "missing.npz", "no such file")]:
        with pytest.raises(ValueError, match=f"--video '.*': {message}"):
            check_input_file(str(path), "--video")
    with pytest.raises(UsageError, match="afile is a file, not a directory"):
        check_output_file(str(tmp_path / "afile" / "x.npz"), "--out")
    with pytest.raises(UsageError, match="--out .*link is a symbolic link to .*gone.*, which does not exist"):
        check_output_dir(str(tmp_path / "link"), "--out")


@pytest.mark.parametrize("argv, flag, name", [
    (["proofs", "--only", "E2", "--max-size", "1"], "--report", "r.md"),
    (["mi-bench", "--levels", "2", "--batches", "2", "--dim", "2"], "--figure", "f.png"),
], ids=["proofs --report", "mi-bench --figure"])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_part(argv, flag, name, tmp_path, capsys,
                                                              monkeypatch):
    """Bug: the report and figures were written in place, so a full disk left an empty or
    truncated file (and a failing report write truncated the previous one). Now they are
    written beside and renamed: an error names the file, exits 1 and leaves the old one."""
    import rpmref.cli.mi_bench
    import rpmref.proofs.report
    path = tmp_path / name
    path.write_bytes(b"the previous version")

    def full_disk(*args, **kwargs):
        target = args[0] if flag == "--report" else args[1]
        with open(target, "wb") as handle:
            handle.write(b"part")
        raise OSError(errno.ENOSPC, "No space left on device", str(target))
    monkeypatch.setattr(rpmref.proofs.report, "write_report", full_disk)
    monkeypatch.setattr(rpmref.cli.mi_bench, "plot", full_disk)
    assert cli.main([*argv, flag, str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: No space left on device" in err.splitlines()[-1]
    assert path.read_bytes() == b"the previous version"
    assert sorted(os.listdir(tmp_path)) == [name]


@pytest.mark.parametrize("flag", ["--gif", "--preview"])
def test_make_refuses_an_empty_image_path_and_never_leaves_part_of_one(flag, tmp_path, capsys,
                                                                       monkeypatch):
    """Bug: `--gif ''` was skipped silently, and a failed GIF write left a truncated file."""
    import rpmref.cli.make
    out = str(tmp_path / "v.npz")
    base = ["balls", "make", "--out", out, "--frames", "20", "--size", "16"]
    assert cli.main([*base, flag, ""]) == 2
    assert "must be a file name" in one_line_error(capsys, "rpmref balls make")
    assert not os.path.exists(out)
    image = tmp_path / ("a.gif" if flag == "--gif" else "a.png")

    def full_disk(path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"GIF8")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr(rpmref.cli.make, "save_gif", full_disk)
    monkeypatch.setattr(rpmref.cli.make, "save_preview", full_disk)
    assert cli.main([*base, flag, str(image)]) == 1
    assert f"{image}: No space left on device" in one_line_error(capsys, "rpmref balls make")
    assert sorted(os.listdir(tmp_path)) == ["v.npz"]   # the video is written, no part of the image


def test_train_out_that_is_a_dangling_link_says_so(tmp_path, capsys):
    os.symlink(tmp_path / "gone", tmp_path / "out")
    video = str(tmp_path / "v.npz")
    assert cli.main(["balls", "make", "--out", video, "--frames", "20", "--size", "16"]) == 0
    capsys.readouterr()
    assert cli.main(["balls", "train", "--out", str(tmp_path / "out"), "--video", video,
                     "--steps", "1"]) == 2
    assert "is a symbolic link to" in one_line_error(capsys, "rpmref balls train")


@pytest.mark.parametrize("where", ["build_parser", "parse"])
def test_ctrl_c_while_the_arguments_are_read_is_one_line_and_130(where, capsys, monkeypatch):
    """Ctrl-C before the command starts (building the parser imports every command's
    modules) is reported like one during the work: one line, exit code 130."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    if where == "build_parser":
        monkeypatch.setattr(cli, "build_parser", interrupted)
    else:
        monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", interrupted)
    assert cli.main(["verify", "--trials", "1"]) == 130
    assert capsys.readouterr().err == "rpmref: interrupted\n"


# --------------------------------------------------------------------------
# links, clashes and formats found before the work


@pytest.mark.parametrize("argv, flag", [
    (["proofs", "--report", "{link}.md"], "--report"),
    (["mi-bench", "--figure", "{link}.png"], "--figure"),
    (["structure", "--json", "{link}.json"], "--json"),
], ids=lambda value: value if isinstance(value, str) else " ".join(value[:2]))
def test_an_output_that_is_a_dangling_link_fails_before_the_work(argv, flag, tmp_path, capsys,
                                                                 no_work, monkeypatch):
    """The file is written through the link, so its target's folder must exist: it was
    found only when the result was written, after the work."""
    import rpmref.cli.structure
    monkeypatch.setattr(rpmref.cli.structure, "run_experiment",
                        lambda *a, **k: pytest.fail("structure ran before checking its outputs"))
    link = tmp_path / "link"
    suffix = argv[-1].rpartition(".")[2]
    os.symlink(tmp_path / "gone" / f"target.{suffix}", f"{link}.{suffix}")
    assert cli.main([a.format(link=link) for a in argv]) == 2
    err = one_line_error(capsys, f"rpmref {argv[0]}")
    assert flag in err and "does not exist (it is a symbolic link to" in err


def test_a_link_to_a_writable_place_is_written_through(tmp_path, capsys):
    link = tmp_path / "report.md"
    os.symlink(tmp_path / "target.md", link)
    assert cli.main(["proofs", "--only", "L1", "--report", str(link)]) == 0
    assert link.is_symlink() and (tmp_path / "target.md").read_text().startswith("#")


@pytest.mark.parametrize("argv, flags", [
    (["structure", "--json", "{d}/same.png", "--figure", "{d}/same.png"],
     "--figure and --json"),
    (["structure", "--json", "{d}/a.json", "--figure", "{d}/link.png"], "--figure and --json"),
    (["balls", "make", "--out", "{d}/v.npz", "--preview", "{d}/same.gif", "--gif",
      "{d}/same.gif"], "--preview and --gif"),
], ids=["same name", "through a link", "make"])
def test_two_outputs_naming_one_file_are_refused(argv, flags, tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    pytest.importorskip("PIL")
    import rpmref.cli.structure
    monkeypatch.setattr(rpmref.cli.structure, "run_experiment",
                        lambda *a, **k: pytest.fail("structure ran before checking its outputs"))
    os.symlink(tmp_path / "a.json", tmp_path / "link.png")
    assert cli.main([a.format(d=tmp_path) for a in argv]) == 2
    err = one_line_error(capsys, "rpmref " + " ".join(argv[:2] if argv[0] == "balls" else argv[:1]))
    assert f"{flags} name the same file" in err and "one would overwrite the other" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.png"]


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_two_outputs_to_one_device_are_not_a_clash():
    from rpmref.cli.common import check_distinct_outputs
    check_distinct_outputs(("--json", "/dev/null"), ("--figure", "/dev/null"))


def test_pgf_is_offered_only_with_its_tex_program(monkeypatch, capsys, no_work):
    """matplotlib's pgf backend runs xelatex (pgf.texsystem): without it the figure failed
    with a traceback after the whole benchmark."""
    pytest.importorskip("matplotlib")
    from rpmref.cli import common
    monkeypatch.setattr(common.shutil, "which", lambda program: None)
    assert ".pgf" not in common.matplotlib_suffixes() and ".png" in common.matplotlib_suffixes()
    assert cli.main(["mi-bench", "--figure", "fig.pgf"]) == 2
    assert "--figure must be a file name ending in" in one_line_error(capsys, "rpmref mi-bench")
    monkeypatch.setattr(common.shutil, "which", lambda program: f"/usr/bin/{program}")
    assert ".pgf" in common.matplotlib_suffixes()


def test_an_upper_case_npz_suffix_is_written_as_given(tmp_path, capsys):
    out = tmp_path / "V.NPZ"
    assert cli.main(["balls", "make", "--out", str(out), "--frames", "5", "--size", "16"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["V.NPZ"]


def test_train_finds_a_directory_in_place_of_a_run_file_before_training(tmp_path, capsys,
                                                                        monkeypatch):
    import rpmref.cli.train
    monkeypatch.setattr(rpmref.cli.train, "train",
                        lambda *a, **k: pytest.fail("training started before the check"))
    video = str(tmp_path / "v.npz")
    assert cli.main(["balls", "make", "--out", video, "--frames", "20", "--size", "16"]) == 0
    for name in ("metrics.jsonl", "checkpoint.npz", "summary.json"):
        out = tmp_path / f"out_{name}"
        (out / name).mkdir(parents=True)
        capsys.readouterr()
        for extra in ([], ["--overwrite"]):
            assert cli.main(["balls", "train", "--out", str(out), "--video", video,
                             "--steps", "1", *extra]) == 2
            err = one_line_error(capsys, "rpmref balls train")
            assert f"{out / name} is a directory, not a file the run can write" in err


@pytest.mark.parametrize("error, code, message", [
    (OSError(errno.ENOSPC, "No space left on device"), 1, "No space left on device"),
])
def test_a_failing_stdout_after_training_is_not_blamed_on_out(error, code, message, tmp_path,
                                                               capsys, monkeypatch):
    """The run is complete; only printing its line failed: exit 1 naming the error, not
    exit 2 "--out ...: cannot write there"."""
    import rpmref.cli.train

    def failing_print(*args, **kwargs):
        raise error
    monkeypatch.setattr(rpmref.cli.train, "_print_result", failing_print)
    video = str(tmp_path / "v.npz")
    assert cli.main(["balls", "make", "--out", video, "--frames", "20", "--size", "16"]) == 0
    capsys.readouterr()
    out = tmp_path / "run"
    assert cli.main(["balls", "train", "--out", str(out), "--video", video, "--steps", "1",
                     "--no-progress"]) == code
    err = capsys.readouterr().err
    assert message in err and "--out" not in err and "Traceback" not in err
    assert (out / "summary.json").is_file()


def test_mi_bench_dim_limit_in_the_help_is_the_one_enforced(capsys, monkeypatch):
    """The help's largest --dim is accepted; one more is refused naming --dim. Two limits
    meet: the memory budget and the Gaussian draws of one chunk of batches (c·K·2d ≤
    MAX_SAMPLE_ELEMENTS, c = 4e6 // K² batches: 976 at K = 64, so d ≤ 2^26 / (976·64·2))."""
    from rpmref.cli import mi_bench
    from rpmref.gaussian import monte_carlo
    assert mi_bench.SCORES_PER_CHUNK == monte_carlo._MAX_SCORES
    assert mi_bench.DEFAULT_MAX_DIM == min(
        2 ** 26 // (976 * 64 * 2), mi_bench._largest(
            lambda d: mi_bench.peak_bytes(d, 64, 2000) <= mi_bench.MEMORY_BUDGET))
    d = mi_bench.DEFAULT_MAX_DIM
    help_text = " ".join(cli.build_parser()._subparsers._group_actions[0]
                         .choices["mi-bench"].format_help().split())
    assert f"at most {d} at the default --batch-size and --batches" in help_text
    assert cli.main(["mi-bench", "--dim", str(d + 1), "--levels", "1"]) == 2
    err = one_line_error(capsys, "rpmref mi-bench")
    assert f"--dim must be at most {d} at this --batch-size and --batches" in err

    class Accepted(Exception):
        pass

    def accepted(*args, **kwargs):
        raise Accepted
    monkeypatch.setattr(mi_bench, "benchmark_rows", accepted)
    with pytest.raises(Accepted):
        cli.main(["mi-bench", "--dim", str(d), "--levels", "1"])
