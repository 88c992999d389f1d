"""Every code block of README.md and docs/ runs, and prints what the page shows.

The rules, stated once (docs/development.md repeats them for writers):

- a ```python block is executed; all python blocks of one page share one
  namespace, in page order, like a session. If the next block (blank lines
  between at most) is a ```text block, that is the expected output; a python
  block without one must print nothing;
- a ```pycon block is a doctest session (``>>>`` lines and their output), run in
  the same page namespace as the python blocks;
- a ```console block is a terminal transcript: each ``$ command`` line is run by
  bash (``rpmref`` and ``python`` mean this checkout's package and interpreter)
  and its output (stdout and stderr) must be the lines under it;
- outputs are compared like doctest with ELLIPSIS: ``...`` matches anything
  (used for wall times); trailing spaces are ignored;
- any other code block (``bash``, ``sh``, ``shell``, ``python`` or ``console``
  that cannot run here) carries ``<!-- not run: reason -->`` on the line before
  it, and the reason is checked to be there; ```text blocks under no code block
  and ```markdown/```{directive} blocks are not code.

Every block runs in a fresh temporary directory that has ``examples`` and
``docs`` linked in, so commands that write files leave nothing in the checkout.
"""
import contextlib
import doctest
import io
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = {"python", "console", "pycon"}
CODE = RUN | {"bash", "sh", "shell"}
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,})(?P<info>[^`\n]*)$")
NOT_RUN = re.compile(r"^\s*<!-- not run: (?P<reason>.*\S)\s*-->\s*$")
CHECKER = doctest.OutputChecker()
FLAGS = doctest.ELLIPSIS


@dataclass
class Block:
    lang: str
    code: str
    line: int                  # 1-based line of the opening fence
    not_run: str | None        # the reason, when marked <!-- not run: ... -->
    expected: str | None = None
    end: int = 0               # index of the line after the closing fence


def parse_blocks(text):
    """The fenced code blocks of a Markdown text, outputs attached to their code."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info, start = match.group("fence"), match.group("info").strip(), i
        body, i = [], i + 1
        while i < len(lines) and not re.match(rf"^ {{0,3}}{fence}`*\s*$", lines[i]):
            body.append(lines[i])
            i += 1
        i += 1
        marker = NOT_RUN.match(lines[start - 1]) if start else None
        lang = info.split()[0] if info else ""
        code = textwrap.dedent("\n".join(body)) + "\n"
        if lang == "text" and blocks and blocks[-1].lang == "python" and blocks[-1].expected is None \
                and all(not line.strip() for line in lines[blocks[-1].end:start]):
            blocks[-1].expected = code
            continue
        block = Block(lang, code, start + 1, marker.group("reason") if marker else None)
        block.end = i
        blocks.append(block)
    return blocks


def pages():
    files = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))
    return [p for p in files if not {"_build", "_generated"} & set(p.relative_to(ROOT).parts)]


def _matches(expected, got):
    strip = lambda s: "\n".join(line.rstrip() for line in s.strip("\n").splitlines()) + "\n"
    return CHECKER.check_output(strip(expected), strip(got), FLAGS)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A working directory with examples/ and docs/ linked, and rpmref/python shims on PATH."""
    for name in ("examples", "docs", "benchmarks"):
        if (ROOT / name).exists():
            (tmp_path / name).symlink_to(ROOT / name)
    bin_dir = tmp_path / ".bin"
    bin_dir.mkdir()
    (bin_dir / "rpmref").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m rpmref "$@"\n')
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    for shim in bin_dir.iterdir():
        shim.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return env


def run_console(code, env):
    """[(command, expected, got)] for each ``$ command`` of a transcript."""
    out, command, expected = [], None, []
    for line in code.splitlines() + ["$ "]:
        if line.startswith("$ "):
            if command:
                done = subprocess.run(["bash", "-c", command], env=env, capture_output=True,
                                      text=True, timeout=600)
                out.append((command, "\n".join(expected) + "\n", done.stdout + done.stderr))
            command, expected = line[2:].strip(), []
        else:
            expected.append(line)
    return out


def run_page(path, env):
    """Run every block of a page; returns a list of failure messages."""
    failures, namespace = [], {"__name__": "__docs__"}
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    where = lambda block: f"{name}:{block.line}"
    for block in parse_blocks(path.read_text(encoding="utf-8")):
        if block.lang not in CODE:
            continue
        if block.not_run is not None or block.lang not in RUN:
            if block.not_run is None:
                failures.append(f"{where(block)}: a ```{block.lang} block must run or carry "
                                f"<!-- not run: reason -->")
            continue
        if block.lang == "python":
            buffer = io.StringIO()
            try:
                with contextlib.redirect_stdout(buffer):
                    exec(compile(block.code, where(block), "exec"), namespace)
            except Exception as error:  # noqa: BLE001 -- reported with its block
                failures.append(f"{where(block)}: raised {type(error).__name__}: {error}")
                break           # later blocks depend on this one
            expected = block.expected or ""
            if not _matches(expected, buffer.getvalue()):
                failures.append(f"{where(block)}: printed\n{buffer.getvalue()}\nthe page shows\n{expected}")
        elif block.lang == "pycon":
            test = doctest.DocTestParser().get_doctest(block.code, namespace, where(block),
                                                       str(path), block.line)
            report = io.StringIO()
            runner = doctest.DocTestRunner(optionflags=FLAGS | doctest.NORMALIZE_WHITESPACE)
            runner.run(test, out=report.write, clear_globs=False)
            namespace.update(test.globs)  # DocTest copies its globals; carry them forward
            if runner.failures:
                failures.append(f"{where(block)}: doctest failed\n{report.getvalue()}")
            elif not test.examples:
                failures.append(f"{where(block)}: a ```pycon block without >>> examples")
        else:
            for command, expected, got in run_console(block.code, env):
                if not _matches(expected, got):
                    failures.append(f"{where(block)}: `{command}` printed\n{got}\nthe page shows\n{expected}")
    return failures


# ------------------------------------------------------------------ the rules themselves
def test_parser_pairs_code_with_its_output_and_reads_markers():
    text = ("```python\nprint(1)\n```\n\n```text\n1\n```\n"
            "<!-- not run: needs a network -->\n```bash\npip install x\n```\n"
            "```text\nstandalone\n```\n```{toctree}\nx\n```\n")
    blocks = parse_blocks(text)
    assert [(b.lang, b.expected, b.not_run) for b in blocks] == [
        ("python", "1\n", None), ("bash", None, "needs a network"), ("text", None, None),
        ("{toctree}", None, None)]


def test_a_wrong_output_an_exception_and_an_unmarked_block_are_failures(tmp_path, sandbox):
    page = tmp_path / "probe.md"
    page.write_text("```python\nprint(2)\n```\n\n```text\n3\n```\n\n```python\nprint('x')\n```\n\n"
                    "```console\n$ echo 4\n5\n```\n\n```bash\nls\n```\n\n```python\n1/0\n```\n")
    failures = run_page(page, sandbox)
    assert len(failures) == 5, failures
    assert "printed\n2" in failures[0] and "printed\nx" in failures[1] and "`echo 4`" in failures[2]
    assert "must run or carry" in failures[3] and "ZeroDivisionError" in failures[4]


def test_ellipsis_matches_a_wall_time_and_nothing_else():
    assert _matches("done in ... s\n", "done in 4.6 s\n")
    assert not _matches("done in ... s\n", "failed in 4.6 s\n")


# ------------------------------------------------------------------ the pages
@pytest.mark.parametrize("path", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_code_block_runs_and_prints_what_the_page_shows(path, sandbox):
    failures = run_page(path, sandbox)
    assert not failures, "\n\n".join(failures)
