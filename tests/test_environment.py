"""rpmref.environment records what a result was computed on."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rpmref.environment import environment


def test_environment_names_versions_and_is_json():
    env = environment()
    assert env["numpy"] == np.__version__
    assert env["python"] == sys.version.split()[0]
    for key in ("rpmref", "autograd", "cpu", "cpu_count", "blas", "blas_environment"):
        assert key in env
    assert json.loads(json.dumps(env)) == env


def _environment_in_subprocess(extra_env):
    code = "import json; from rpmref.environment import environment; print(json.dumps(environment()))"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **extra_env},
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_blas_kernel_override_is_recorded():
    """OPENBLAS_CORETYPE picks another OpenBLAS kernel; the record must show it."""
    if not any(b["library"] == "openblas" for b in environment()["blas"]):
        pytest.skip("NumPy is not linked against OpenBLAS")
    env = _environment_in_subprocess({"OPENBLAS_CORETYPE": "Haswell"})
    assert [b["kernel"] for b in env["blas"]] == ["Haswell"] * len(env["blas"])
    assert env["blas_environment"]["OPENBLAS_CORETYPE"] == "Haswell"
