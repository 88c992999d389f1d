"""The pages, the README, the CI script and the package metadata agree with each other
and with the code: what the docs name exists, and what exists is documented."""
import ast
import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rpmref

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text(encoding="utf-8")
THEORY = (DOCS / "theory.md").read_text(encoding="utf-8")
QUICKSTART = ['pip install -e ".[all]" && rpmref verify', 'pip install -e ".[test]" && pytest -n auto --dist loadfile']
DOCS_BUILD = 'pip install -e ".[docs]" && sphinx-build -W --keep-going -b html docs docs/_build/html'


def _load_generator():
    spec = importlib.util.spec_from_file_location("rpmref_docs", DOCS / "_ext" / "rpmref_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ README
def test_readme_is_short():
    assert len(README.splitlines()) <= 200


def test_readme_quickstart_block_has_exactly_the_two_commands():
    block = re.search(r"## Quickstart\n.*?```bash\n(.*?)```", README, re.S).group(1)
    assert block.splitlines() == QUICKSTART


def test_ci_runs_the_readme_test_command_and_the_documented_docs_build():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert QUICKSTART[1] in ci
    assert DOCS_BUILD in README and DOCS_BUILD in (DOCS / "installation.md").read_text(encoding="utf-8")
    assert DOCS_BUILD.split(" && ")[1] in ci                 # the same sphinx-build line
    assert ci.index(QUICKSTART[1]) < ci.index(DOCS_BUILD.split(" && ")[1])


def test_the_docs_extra_installs_what_the_api_pages_import():
    """Bug: pip install ".[docs]" and then sphinx-build stopped at once ("rpmref.strategies
    needs hypothesis"): the API pages import rpmref.strategies, and hypothesis was only in
    the test, strategies and all extras (the CI installs test first, which hid it)."""
    import configparser
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    extras = config["options.extras_require"]
    names = lambda extra: {re.split(r"[<>=!~\[ ]", line.strip())[0].lower()
                           for line in extras[extra].splitlines() if line.strip()}
    assert "rpmref.strategies" in {module for module, _, _ in _load_generator().API_MODULES}
    assert names("strategies") <= names("docs")


def test_the_docs_configuration_finds_rpmref_proofs_without_an_editable_install():
    """Bug: without an editable install (PYTHONPATH=$PWD as the installation page says, or a
    non-editable pip install, which conf.py's checkout-first path shadows) sphinx-build
    stopped with "No module named 'rpmref.proofs'": proofs/ is rpmref.proofs only once
    installed, and the build runs the proofs. Here the editable install's finder is removed."""
    code = (
        "import runpy, sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
        "sys.modules.pop('rpmref', None)\n"
        f"runpy.run_path({str(DOCS / 'conf.py')!r})\n"
        "import rpmref.proofs.run\n"
        "print(rpmref.proofs.__file__)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=str(ROOT.parent))
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == ROOT / "proofs" / "__init__.py"


def test_readme_lists_every_command_of_the_parser():
    from rpmref.cli import build_parser
    generator = _load_generator()
    commands = [c for c, _ in generator.cli_commands(build_parser())
                if c.count(" ") == 1 and c != "rpmref balls" or c.startswith("rpmref balls ")]
    missing = [c for c in commands if f"`{c}`" not in README]
    assert not missing, missing


# ------------------------------------------------------------------ what may not appear
FORBIDDEN = ["SPEC" + ".md", "the " + "issue", "The " + "issue", "shared" + "/"]


def _text_files():
    for folder in ("docs", "rpmref", "proofs", "tests", "examples"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in {".md", ".py", ".txt", ".cff"} and "_build" not in path.parts:
                yield path
    yield ROOT / "README.md"
    yield ROOT / "CHANGELOG.md"


def test_no_page_or_source_cites_private_notes():
    hits = [f"{p.relative_to(ROOT)}: {word!r}" for p in _text_files()
            for word in FORBIDDEN if word in p.read_text(encoding="utf-8", errors="replace")]
    assert not hits, hits


def test_no_placeholder_is_left():
    marker = "TODO" + "(lead)"
    hits = [p.relative_to(ROOT) for p in _text_files() if marker in p.read_text(encoding="utf-8")]
    assert hits == []
    section = (DOCS / "reproducibility.md").read_text(encoding="utf-8").split(
        "## Spread across BLAS kernels", 1)[1]
    assert "OPENBLAS_CORETYPE=Haswell" in section and "| rbf |" in section


# ------------------------------------------------------------------ pages
PAGES = ["index", "theory", "proofs", "tutorials/discrete", "tutorials/gaussian", "tutorials/balls",
         "tutorials/structure", "api/index", "cli", "installation", "reproducibility", "development", "changelog", "citing"]


def _toctree_entries():
    entries = set()
    for path in DOCS.rglob("*.md"):
        if "_build" in path.parts or "_generated" in path.parts:
            continue
        folder = path.parent.relative_to(DOCS)
        for block in re.findall(r"```\{toctree\}\n(.*?)```", path.read_text(encoding="utf-8"), re.S):
            for line in block.splitlines():
                if line.strip() and not line.startswith(":"):
                    entries.add((folder / line.strip()).as_posix().lstrip("./"))
    return entries


def test_every_page_exists_and_is_in_a_toctree():
    entries = _toctree_entries()
    for page in PAGES:
        assert (DOCS / f"{page}.md").exists(), page
        assert page == "index" or page in entries, f"{page} is in no toctree"


def test_theory_has_the_sections_docstrings_point_to():
    titles = re.findall(r"^## (.+)$", THEORY, re.M)
    assert titles == ["Objects", "The model", "The ELBO", "Identities", "Critics", "Gaussian latents",
                      "The experiment"]


# ------------------------------------------------------------------ the identity table
def _table_rows():
    table = THEORY.split("(theory-identity-table)=", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| ID")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def _test_functions(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_identity_table_names_tests_that_exist():
    named = [t for row in _table_rows() for t in re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", row[2])]
    assert len(named) >= 25
    missing = [f"{f}::{t}" for f, t in named if t not in _test_functions(ROOT / f)]
    assert not missing, missing


def test_identity_table_and_verify_rows_match_one_to_one():
    from rpmref.verify import run_checks
    verify_ids = [row["id"] for row in run_checks(trials=1)]
    table_ids = [row[3] for row in _table_rows()]
    assert table_ids == [row[0] for row in _table_rows()]      # the row is named after its ID
    assert sorted(table_ids) == sorted(verify_ids)


def test_identity_table_proofs_exist_and_every_proof_is_named_on_the_page():
    from rpmref.proofs.catalogue import PROOFS
    for row in _table_rows():
        for pid in re.findall(r"\b([A-Z]+\d+)\b", row[4]):
            assert pid in PROOFS, pid
    for pid, entry in PROOFS.items():
        assert entry.wrong or re.search(rf"\b{re.escape(pid)}\b", THEORY), f"proof {pid} not on the theory page"


def test_identity_table_functions_exist():
    names = [n for row in _table_rows() for n in re.findall(r"\{py:func\}`([\w.]+)`", row[5])]
    assert len(names) >= 19
    for name in names:
        module, _, attr = name.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attr)), name


# ------------------------------------------------------------------ version, licence, citation
def test_version_has_one_source():
    setup = (ROOT / "setup.cfg").read_text(encoding="utf-8")
    assert re.search(r"^version = attr: rpmref\.__version__$", setup, re.M)
    assert re.search(rf'^version: "{re.escape(rpmref.__version__)}"$',
                     (ROOT / "CITATION.cff").read_text(encoding="utf-8"), re.M)
    assert f"## {rpmref.__version__}" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def test_version_flag_prints_the_package_version():
    done = subprocess.run([sys.executable, "-m", "rpmref", "--version"], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout == f"rpmref {rpmref.__version__}\n"


def test_licence_is_the_declared_mit_licence():
    setup = (ROOT / "setup.cfg").read_text(encoding="utf-8")
    assert re.search(r"^license = MIT$", setup, re.M)
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "rpmref developers" in text


def test_citation_names_the_paper():
    cff = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert "preferred-citation:" in cff and "arXiv:2107.02495" in cff
    assert 'family-names: "Aitchison"' in cff and 'family-names: "Ganev"' in cff


# ------------------------------------------------------------------ the generator
def test_cli_reference_is_what_each_command_prints_for_help():
    generator = _load_generator()
    reference = dict(generator.cli_commands())
    assert {"rpmref", "rpmref verify", "rpmref proofs", "rpmref balls", "rpmref balls train"} <= set(reference)
    env = {"COLUMNS": generator.HELP_WIDTH, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "rpmref", "balls", "train", "--help"], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)
    assert done.stdout == reference["rpmref balls train"]


@pytest.mark.parametrize("line, rendered", [
    ("P(z|x) P(z'|x')", r"P(z\|x) P(z'\|x')"),            # |x would be a substitution
    ("W* and l* maximise", r"W\* and l\* maximise"),      # a lone * would start emphasis
    ("a *fast* primitive", "a *fast* primitive"),         # real emphasis stays
    ("z_*: (T, 6)", r"z\_\*: (T, 6)"),                     # z_ would be a link target
    ("``a|b`` and :func:`x_`", "``a|b`` and :func:`x_`"),  # literals and roles untouched
    ("* item with W*", r"* item with W\*"),                # the list marker stays
])
def test_plain_text_escapes(line, rendered):
    assert _load_generator().escape_plain_text(line) == rendered


def test_plain_text_leaves_literal_and_doctest_blocks_verbatim():
    lines = ["A test::", "", "    assert x * y <= 1e-12 * n", "", "After: W*.", "",
             "Examples", "--------", ">>> z_ = a * b", "   [1 | 2]", "", "    W* again"]
    _load_generator().plain_text_docstring(lines)
    assert lines == ["A test::", "", "    assert x * y <= 1e-12 * n", "", r"After: W\*.", "",
                     "Examples", "--------", ">>> z_ = a * b", "   [1 | 2]", "", r"    W\* again"]


def test_plain_text_layout_gets_the_blank_lines_restructuredtext_needs():
    lines = ["Each layer exists twice:", "- a fast one", "  continued", "- a plain one",
             "posterior: Q, shape (n, n')", "  With it, Eq. 12.", "Entries are -inf.",
             "", "Parameters", "----------", "p : array", "    P(z|x)."]
    _load_generator().plain_text_docstring(lines)
    assert lines == ["Each layer exists twice:", "", "- a fast one", "  continued", "- a plain one",
                     "", "posterior: Q, shape (n, n')", "  With it, Eq. 12.", "", "Entries are -inf.",
                     "", "Parameters", "----------", "p : array", r"    P(z\|x)."]
