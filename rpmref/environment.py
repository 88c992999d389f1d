"""The software and hardware a result was computed on, for every results file.

The BLAS kernel changes rounding (OpenBLAS picks one per CPU, and
``OPENBLAS_CORETYPE`` overrides it), so a number is reproducible to the last
digit only on the same kernel: every results file records which one it used.
This module imports nothing else of rpmref's, so every part may use it.
"""
import os
import platform
import sys
from importlib import metadata

#: Environment variables that change which BLAS kernel runs or how many threads it uses.
BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                  "MKL_NUM_THREADS", "MKL_CBWR")


def _version(package):
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_model():
    """The CPU's model name (from /proc/cpuinfo where there is one), or ''.

    Returns
    -------
    str
        The model name, else ``platform.processor()`` (possibly '').

    Examples
    --------
    >>> from rpmref.environment import cpu_model
    >>> isinstance(cpu_model(), str)
    True
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def blas_libraries():
    """The BLAS libraries NumPy loaded (threadpoolctl), one dict each.

    Returns
    -------
    list of dict
        Keys ``library``, ``version``, ``kernel`` (the architecture, e.g. OpenBLAS's
        core type), ``threads``, ``threading_layer`` and ``path``.

    Examples
    --------
    >>> from rpmref.environment import blas_libraries
    >>> all(set(lib) == {"library", "version", "kernel", "threads", "threading_layer", "path"}
    ...     for lib in blas_libraries())
    True
    """
    import numpy  # noqa: F401  (threadpoolctl only sees libraries already loaded)
    from threadpoolctl import threadpool_info
    return [{"library": info.get("internal_api"), "version": info.get("version"),
             "kernel": info.get("architecture"), "threads": info.get("num_threads"),
             "threading_layer": info.get("threading_layer"), "path": info.get("filepath")}
            for info in threadpool_info() if info.get("user_api") == "blas"]


def environment():
    """What produced a result: package versions, Python, BLAS library and kernel, CPU.

    Returns
    -------
    dict
        JSON-ready, with keys ``rpmref``, ``numpy``, ``autograd``, ``python``,
        ``platform``, ``cpu``, ``cpu_count``, ``blas`` (a list, see
        :func:`blas_libraries`) and ``blas_environment`` (the BLAS_VARIABLES that are set).

    Examples
    --------
    >>> import json
    >>> from rpmref.environment import environment
    >>> record = environment()
    >>> sorted(record)
    ['autograd', 'blas', 'blas_environment', 'cpu', 'cpu_count', 'numpy', 'platform', 'python', 'rpmref']
    >>> json.loads(json.dumps(record)) == record
    True
    """
    return {
        "rpmref": _version("rpmref"),
        "numpy": _version("numpy"),
        "autograd": _version("autograd"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "blas": blas_libraries(),
        "blas_environment": {k: os.environ[k] for k in BLAS_VARIABLES if k in os.environ},
    }
