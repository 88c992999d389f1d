"""The public API: every name in rpmref.__all__ exists, and submodules are not shadowed."""
import types

import rpmref


def test_every_public_name_is_exported():
    missing = [name for name in rpmref.__all__ if not hasattr(rpmref, name)]
    assert missing == []


def test_submodules_stay_modules():
    """`rpmref.train` must stay the module (the CLI registers `rpmref.train.add_parser`)."""
    for name in ("train", "balls", "compare", "gaussian", "verify"):
        __import__(f"rpmref.{name}")
        assert isinstance(getattr(rpmref, name), types.ModuleType), name
