"""Pages generated from the code at every docs build, so they cannot drift from it.

- ``cli.md``: the ``--help`` text of every ``rpmref`` command, taken from the real
  parser (:func:`rpmref.cli.build_parser`), one section per command;
- ``api_*.md``: one autodoc entry for every public name (see :data:`API_MODULES`);
- ``proofs_report.md``: the output of ``rpmref proofs --report`` (all identities);
- ``verify.txt``: the table ``rpmref verify`` prints.

Each is written to ``docs/_generated/`` when the builder starts (the Sphinx
event ``builder-inited``) and pulled into a page with the ``include`` directive.
Set ``RPMREF_DOCS_SKIP_SLOW=1`` to write one-line placeholders for the proofs
report and the verify table instead of running them (the API test does this; a
real build never does).
"""
import argparse
import contextlib
import dataclasses
import importlib
import inspect
import io
import os
import pkgutil
import re
import time
from pathlib import Path

GENERATED = Path(__file__).resolve().parent.parent / "_generated"
HELP_WIDTH = "90"   # COLUMNS for argparse, so the help text does not depend on the terminal

# (module, page, title): every public name of these modules gets an API entry.
# A module's public names are its __all__, or (without __all__) the functions and
# classes it defines whose names do not start with "_".
API_MODULES = [
    ("rpmref", "api_rpmref", "``rpmref``: the exact discrete core"),
    # the submodules of rpmref.exact (page api_exact) are appended by api_modules()
    ("rpmref.gaussian", "api_gaussian", "``rpmref.gaussian``: Gaussian latents in closed form"),
    ("rpmref.gaussian.monte_carlo", "api_gaussian", "``rpmref.gaussian.monte_carlo``"),
    ("rpmref.gaussian.staircase", "api_gaussian", "``rpmref.gaussian.staircase``"),
    ("rpmref.gaussian.checks", "api_gaussian", "``rpmref.gaussian.checks``"),
    ("rpmref.balls", "api_balls", "``rpmref.balls``: the experiment"),
    # the submodules of rpmref.balls are appended by balls_submodules()
    ("rpmref.structure", "api_structure", "``rpmref.structure``: relabellings, topography, learning"),
    ("rpmref.structure.experiment", "api_structure", "``rpmref.structure.experiment``"),
    ("rpmref.verify", "api_verify", "``rpmref.verify``: the checks behind ``rpmref verify``"),
    ("rpmref.environment", "api_verify", "``rpmref.environment``: what a result was computed on"),
    ("rpmref.testing", "api_testing", "``rpmref.testing``: the conformance kit"),
    # the submodules of rpmref.testing are appended by testing_submodules()
    ("rpmref.strategies", "api_strategies", "``rpmref.strategies``: hypothesis strategies"),
]


def _submodules(package_name):
    package = importlib.import_module(package_name)
    return sorted(f"{package_name}.{m.name}" for m in pkgutil.iter_modules(package.__path__))


def balls_submodules():
    return _submodules("rpmref.balls")


def testing_submodules():
    return _submodules("rpmref.testing")


def exact_submodules():
    return _submodules("rpmref.exact")


def api_modules():
    """[(module name, page, title)] in page order: the submodules of rpmref.exact (their own
    page) after rpmref, those of rpmref.balls and rpmref.testing after their package."""
    out = []
    for entry in API_MODULES:
        out.append(entry)
        if entry[0] == "rpmref":
            out += [(name, "api_exact", f"``{name}``") for name in exact_submodules()]
        if entry[0] == "rpmref.balls":
            out += [(name, "api_balls", f"``{name}``") for name in balls_submodules()]
        if entry[0] == "rpmref.testing":
            out += [(name, "api_testing", f"``{name}``") for name in testing_submodules()]
    return out


def public_names(module):
    """The public names of ``module``: its ``__all__``, else what it defines without a leading _."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [name for name, obj in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
            and getattr(obj, "__module__", None) == module.__name__]


def canonical_homes():
    """{id(object): module name} — where each public object gets its one full entry.

    A module with ``__all__`` beats one without (the name users import); among
    those a package beats a plain module (``rpmref.testing.check_infonce``, not
    ``rpmref.testing.conformance.check_infonce``), and then the longest module name
    wins (``rpmref.balls.TrainConfig``, not ``rpmref.TrainConfig``); every other
    listing links to that entry.
    """
    candidates = {}
    for name, _, _ in api_modules():
        module = importlib.import_module(name)
        for attr in public_names(module):
            obj = getattr(module, attr)
            rank = (hasattr(module, "__all__"), hasattr(module, "__path__"), len(name))
            best = candidates.get(id(obj))
            if best is None or rank > best[0]:
                candidates[id(obj)] = (rank, name)
    return {key: name for key, (_, name) in candidates.items()}


def _directive(obj):
    """The autodoc directive and its options for one object (reStructuredText lines)."""
    if inspect.isclass(obj):
        # a namedtuple's docstring describes its fields; autodoc would add "Alias for field number 0"
        return "autoclass", [] if _is_namedtuple(obj) else ["   :members:"]
    if callable(obj):
        return "autofunction", []
    return "autodata", []


def _is_namedtuple(cls):
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


def api_page(page):
    """The Markdown of one API page: every module assigned to ``page``.

    autodoc emits reStructuredText, so each module's entries sit in one
    ``eval-rst`` block (MyST would read them as Markdown otherwise).
    """
    homes = canonical_homes()
    lines, first = [], True
    for name, page_of, title in api_modules():
        if page_of != page:
            continue
        module = importlib.import_module(name)
        rst = [f".. automodule:: {name}", "   :no-members:", ""]
        elsewhere = []
        for attr in public_names(module):
            obj = getattr(module, attr)
            if homes[id(obj)] != name:
                elsewhere.append((attr, f"{homes[id(obj)]}.{attr}"))
                continue
            directive, options = _directive(obj)
            rst += [f".. {directive}:: {name}.{attr}", *options, ""]
        # the page's title names its first module if that is one of API_MODULES (the
        # api_exact page starts with a submodule); every further module gets a section
        titled = first and name in {entry[0] for entry in API_MODULES}
        lines += ([] if titled else [f"## {title}", ""]) + ["```{eval-rst}", *rst, "```", ""]
        first = False
        if elsewhere:
            lines += ["Also importable from here, documented where users import it:", ""]
            lines += [f"- `{name}.{attr}`: {{py:obj}}`{target}`" for attr, target in elsewhere]
            lines.append("")
    return "\n".join(lines)


@contextlib.contextmanager
def _columns(width):
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = width
    try:
        yield
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def _subcommands(parser):
    for action in parser._actions:       # argparse keeps its subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices.items())
    return []


def cli_commands(parser=None, prefix="rpmref"):
    """[(command line, help text)] for ``rpmref`` and every (sub)command, depth first."""
    if parser is None:
        from rpmref.cli import build_parser
        parser = build_parser()
    with _columns(HELP_WIDTH):
        out = [(prefix, parser.format_help())]
        for name, sub in _subcommands(parser):
            out += cli_commands(sub, f"{prefix} {name}")
    return out


def cli_reference():
    lines = []
    for command, text in cli_commands():
        lines += [f"## `{command}`", "", "```text", text.rstrip(), "```", ""]
    return "\n".join(lines)


def proofs_report():
    """``rpmref proofs --report`` for every identity, its headings moved down two levels."""
    from rpmref.proofs.report import render
    from rpmref.proofs.run import DEFAULT_MAX_SIZE, run_proofs, select
    # A title such as "KL(q||p)" would split a cell of the report's summary table.
    results = [dataclasses.replace(r, title=r.title.replace("|", "\\|")) for r in run_proofs(select())]
    text = render(results, DEFAULT_MAX_SIZE)
    text = re.sub(r"^# .*\n", "", text, count=1)            # the page has its own title
    text = text.replace("Module `rpmref/proofs/", "Module `proofs/")   # the path in the repository
    return re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + 1) + " ", text, flags=re.M)


def verify_table():
    """What ``rpmref verify`` prints at its defaults, and the time it took."""
    from rpmref.cli import main
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["verify"])
    if code != 0:
        raise RuntimeError(f"rpmref verify exited {code}:\n{buffer.getvalue()}")
    return buffer.getvalue()


def write_generated(skip_slow=False, log=print):
    """Write every generated file into ``docs/_generated``; returns {file: seconds}."""
    GENERATED.mkdir(exist_ok=True)
    pages = {"cli.md": cli_reference}
    pages.update({f"{page}.md": (lambda page=page: api_page(page))
                  for page in dict.fromkeys(page for _, page, _ in api_modules())})
    placeholder = "(not generated: RPMREF_DOCS_SKIP_SLOW is set)\n"
    pages["proofs_report.md"] = (lambda: placeholder) if skip_slow else proofs_report
    pages["verify.txt"] = (lambda: placeholder) if skip_slow else verify_table
    times = {}
    for filename, make in pages.items():
        start = time.perf_counter()
        text = make()
        path = GENERATED / filename
        if not path.exists() or path.read_text(encoding="utf-8") != text:   # keep mtimes stable
            path.write_text(text, encoding="utf-8")
        times[filename] = time.perf_counter() - start
        log(f"rpmref docs: generated _generated/{filename} in {times[filename]:.1f} s")
    return times


# ---------------------------------------------------------------- docstrings as plain text
# The docstrings are written to be read in a terminal (help(), an editor): maths in
# plain text such as P(z|x), W*, ``name: description`` lines and lists directly
# under a sentence. reStructuredText reads "|x" as a substitution, a lone "*" as
# emphasis and those layouts as indentation errors. Before napoleon turns the
# NumPy sections into reStructuredText, escape the stray characters and add the
# blank lines reStructuredText needs; nothing is reworded or dropped.

_BULLET = re.compile(r"^(\s*)[-*] \S")
_LITERAL = re.compile(r"``.+?``|:\w+:`[^`]+`|`[^`]+`_?")            # ``code``, :role:`x`, `x`
_EMPHASIS = re.compile(r"(?<![\w*\\])\*{1,2}(?=[^\s*])[^*]*?(?<=[^\s*\\])\*{1,2}(?![\w*])")
_SECTION_RULE = re.compile(r"^\s*-{3,}\s*$")


def _escape_outside(text, pattern, escape):
    out, last = [], 0
    for match in pattern.finditer(text):
        out += [escape(text[last:match.start()]), match.group(0)]
        last = match.end()
    return "".join(out + [escape(text[last:])])


def escape_plain_text(line):
    """Escape ``|``, a word's trailing ``_`` and every ``*`` that is not part of an
    ``*emphasis*`` pair or a list marker, outside literals and roles."""
    def escape(chunk):
        chunk = re.sub(r"(?<=\w)_(?![\w`])", r"\\_", chunk.replace("|", "\\|"))   # "z_" is a link
        return _escape_outside(chunk, _EMPHASIS, lambda rest: re.sub(r"(?<!\\)\*", r"\\*", rest))
    bullet = _BULLET.match(line)
    marker = len(bullet.group(1)) + 2 if bullet else 0        # keep a "* item" marker
    return line[:marker] + _escape_outside(line[marker:], _LITERAL, escape)


def _indent(line):
    return len(line) - len(line.lstrip())


def fix_layout(lines):
    """Insert the blank lines reStructuredText needs around lists and indented blocks.

    Before a list that follows a sentence and after it; before an indented block
    that follows a paragraph of several lines ("name: text" followed by an indented
    line is a definition and stays); after an indented block when the text goes
    back to less indentation. Edits ``lines`` in place.
    """
    i, list_indent = 1, None            # list_indent: indentation of the open list's marker
    if lines and _BULLET.match(lines[0]):
        list_indent = len(_BULLET.match(lines[0]).group(1))
    while i < len(lines):
        line, previous = lines[i], lines[i - 1]
        bullet = _BULLET.match(line)
        if not line.strip():
            list_indent = None
        elif previous.strip():
            if bullet:
                blank = list_indent is None and _indent(previous) <= len(bullet.group(1))
            elif list_indent is not None:
                blank = _indent(line) <= list_indent                       # the list ends
            else:
                paragraph = i >= 2 and lines[i - 2].strip() and _indent(lines[i - 2]) == _indent(previous)
                blank = (_indent(line) > _indent(previous) and paragraph) or _indent(line) < _indent(previous)
            if blank:
                lines.insert(i, "")
                i += 1
                list_indent = None
        if bullet:
            list_indent = len(bullet.group(1))
        elif line.strip() and list_indent is not None and _indent(line) <= list_indent:
            list_indent = None
        i += 1


def plain_text_docstring(lines):
    """Make a plain-text docstring valid reStructuredText; edits ``lines`` in place.

    The free text before the first NumPy section (a title underlined with dashes)
    gets the layout fixes; every line gets the escapes except parameter-name lines
    of a section (napoleon reads ``*args`` there itself).
    """
    first_section = next((i - 1 for i in range(1, len(lines)) if _SECTION_RULE.match(lines[i])
                          and lines[i - 1].strip()), len(lines))
    head, tail = lines[:first_section], lines[first_section:]
    fix_layout(head)
    code = _code_lines(head)
    head = [line if i in code else escape_plain_text(line) for i, line in enumerate(head)]
    code = _code_lines(tail)
    tail = [escape_plain_text(line) if line.startswith((" ", "\t")) and i not in code else line
            for i, line in enumerate(tail)]
    lines[:] = head + tail


def _code_lines(lines):
    """Indices of the lines of literal blocks (after a paragraph ending in ``::``, while
    indented deeper) and doctest blocks (from a ``>>>`` line to the next blank line):
    reStructuredText shows them verbatim, so they are never escaped."""
    code, literal_indent, doctest = set(), None, False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if literal_indent is not None:
            if not stripped or _indent(line) > literal_indent:
                code.add(i)
                continue
            literal_indent = None
        if stripped.startswith(">>>"):
            doctest = True
        elif not stripped:
            doctest = False
        if doctest:
            code.add(i)
        elif stripped.endswith("::"):
            literal_indent = _indent(line)
    return code


def _on_process_docstring(app, what, name, obj, options, lines):
    plain_text_docstring(lines)


def _on_builder_inited(app):
    from sphinx.util import logging
    write_generated(skip_slow=os.environ.get("RPMREF_DOCS_SKIP_SLOW") == "1",
                    log=logging.getLogger(__name__).info)


def setup(app):
    app.connect("builder-inited", _on_builder_inited)
    app.connect("autodoc-process-docstring", _on_process_docstring, priority=400)   # before napoleon (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
