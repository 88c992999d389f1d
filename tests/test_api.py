"""The public API: every name in rpmref.__all__ exists, and subpackages are not shadowed."""
import types

import rpmref


def test_every_public_name_is_exported():
    missing = [name for name in rpmref.__all__ if not hasattr(rpmref, name)]
    assert missing == []


def test_subpackages_stay_modules():
    """Exported names never shadow a subpackage or module of the same name."""
    for name in ("exact", "balls", "gaussian", "cli", "verify",
                 "balls.trainer", "balls.compare", "balls.video", "gaussian.closed_form"):
        module = __import__(f"rpmref.{name}", fromlist=["_"])
        assert isinstance(module, types.ModuleType), name
    assert isinstance(rpmref.balls, types.ModuleType)
    assert rpmref.train is rpmref.balls.trainer.train  # the function; the module is trainer
