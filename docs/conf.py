"""Sphinx configuration of the rpmref documentation.

Build:  pip install -e ".[docs]" && sphinx-build -W --keep-going -b html docs docs/_build/html

Markdown pages through MyST; API entries by autodoc + napoleon (NumPy-style
docstrings); equations by MathJax. The CLI reference, the API pages, the proofs
report and the ``rpmref verify`` table are generated from the code at every build
(``_ext/rpmref_docs.py``). The code blocks of the pages are executed and their
printed output compared by the test suite (``tests/test_docs_snippets.py``).
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))          # the checkout's rpmref, also without an install

import rpmref  # noqa: E402


def _checkout_proofs_as_rpmref_proofs():
    """The checkout's proofs/ as rpmref.proofs, as pip installs it. Only an editable install
    maps it so; without one (PYTHONPATH=$PWD, or a non-editable pip install, which the
    checkout put first above shadows) the build failed: "No module named 'rpmref.proofs'"."""
    import importlib.util
    if importlib.util.find_spec("rpmref.proofs") is not None:
        return
    folder = HERE.parent / "proofs"
    spec = importlib.util.spec_from_file_location(
        "rpmref.proofs", folder / "__init__.py", submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["rpmref.proofs"] = module
    spec.loader.exec_module(module)
    rpmref.proofs = module


_checkout_proofs_as_rpmref_proofs()

project = "rpmref"
author = "rpmref developers"
copyright = "rpmref developers"
version = release = rpmref.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "rpmref_docs",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_generated", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True     # "$$ x $$" inside a line (the proofs report) is display math

autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "description"
autodoc_preserve_defaults = True
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False

html_theme = "furo"
html_title = f"rpmref {release}"
html_static_path = []
pygments_style = "sphinx"
