"""The architecture, checked from the source: one-way imports, argparse only in the CLI,
no ctypes, and every package listed in setup.cfg.

Import direction: cli → (balls | gaussian | verify | testing | structure) → exact; strategies → exact.
``exact`` imports nothing else of ours (but the leaf ``environment``, which any part may
use; ``_lazy``, the package's import-on-first-use helper, is a leaf too); ``gaussian`` and ``balls`` import only ``exact``; ``structure`` imports ``exact``
and ``gaussian``; ``verify`` and the conformance kit
``testing`` import ``exact`` and ``gaussian``; the public hypothesis strategies
(``strategies``) import at most ``exact``; the proofs import nothing of rpmref's but the
CLI's entry point.
"""
import ast
import configparser
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rpmref"

#: part of the system -> the parts it may import (besides itself)
ALLOWED = {
    "environment": set(),
    "_lazy": set(),
    "exact": {"environment"},
    "gaussian": {"exact", "environment"},
    "balls": {"exact", "environment", "_lazy"},
    "verify": {"exact", "gaussian", "environment"},
    "strategies": {"exact", "environment"},
    "testing": {"exact", "gaussian", "environment"},
    "structure": {"exact", "gaussian", "environment"},
    "cli": {"exact", "gaussian", "balls", "verify", "testing", "proofs", "structure",
            "environment"},
}


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _part(path):
    rel = path.relative_to(PACKAGE).parts
    return rel[0].removesuffix(".py") if len(rel) > 1 or rel[0] != "__init__.py" else "__init__"


def _imports(path):
    """Every module name imported by ``path`` (absolute names, top level or inside functions)."""
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_flow_one_way(path):
    part = _part(path)
    if part in ("__init__", "__main__"):
        return  # the package's public face and ``python -m rpmref`` may import anything
    allowed = ALLOWED[part] | {part}
    ours = {name.split(".")[1] for name in _imports(path)
            if name.startswith("rpmref.") and len(name.split(".")) > 1}
    assert ours <= allowed, f"{path.name} ({part}) imports {sorted(ours - allowed)}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_argparse_only_in_the_cli_and_no_ctypes(path):
    top = {name.split(".")[0] for name in _imports(path)}
    assert "ctypes" not in top
    if _part(path) != "cli":
        assert "argparse" not in top


@pytest.mark.parametrize("path", sorted((ROOT / "proofs").glob("*.py")), ids=lambda p: p.name)
def test_proofs_use_relative_imports_only(path):
    """proofs/ is installed as rpmref.proofs: an absolute ``proofs.x`` import would break."""
    names = _imports(path)
    assert not [n for n in names if n == "proofs" or n.startswith("proofs.")]
    assert "argparse" not in {n.split(".")[0] for n in names}


def test_setup_cfg_lists_every_package():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in PACKAGE.rglob("__init__.py")}
    assert listed == on_disk | {"rpmref.proofs"}
    assert config["options"]["package_dir"].split() == ["rpmref.proofs", "=", "proofs"]
