"""A package's exported names, imported from their modules on first use (PEP 562).

``rpmref`` and ``rpmref.balls`` export names from modules that load NumPy and
autograd; importing those on first use keeps the ``rpmref`` command's first import
light, so that it can handle a Ctrl-C before the heavy imports run. This module
imports nothing heavy itself.
"""
import importlib
import importlib.util
import sys


def lazy_exports(package, exports, public):
    """``(__getattr__, __dir__)`` for the package named ``package``.

    Parameters
    ----------
    package : str
        The package's ``__name__`` (it must be in ``sys.modules``: call this from its
        ``__init__``).
    exports : dict
        Module name → the names it defines that the package exports.
    public : sequence of str
        The package's ``__all__``.

    Returns
    -------
    tuple of callable
        ``__getattr__(name)``: an exported name, imported from its module and cached in the
        package; else a submodule of that name, imported (as eager imports used to make
        every submodule an attribute); else AttributeError. ``__dir__()``: the package's
        names and ``public``.

    Examples
    --------
    >>> import rpmref
    >>> rpmref.recognition_joint.__module__
    'rpmref.exact.discrete'
    """
    module_of = {name: module for module, names in exports.items() for name in names}
    namespace = vars(sys.modules[package])

    def __getattr__(name):
        if name in module_of:
            value = getattr(importlib.import_module(module_of[name]), name)
        elif not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}"):
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__
