"""Hostile-input fuzzing of every public function of rpmref.exact and of verify.run_checks.

Each case draws a valid problem (ordinary or extreme: subnormal entries, one-hot
rows, critics up to ±1.8e308), then corrupts zero, one or two arguments with a
hostile value: NaN/±inf, a negative entry, an unnormalised table, a wrong shape
or number of axes, an empty array, complex/object/string/bool/datetime dtypes,
None, dicts, masked or ragged input, float16/float32/integer/list/strided copies,
huge, negative, float and bool sizes, unknown methods, bad seeds and generators.

Whether the arguments are valid is decided here, by the documented rules
(``rpmref.exact.validation``'s module docstring) re-implemented independently.
The verdict on each call:

* valid arguments: the result must equal the 60-digit mpmath reference of
  ``tests/reference.py`` (tolerances of ``test_extremes_exact``), or — where no
  reference is cheap (Monte Carlo, large N) — satisfy the identities that pin it
  (finite, I_N ≤ log N, stderr ≥ 0, ...). Never NaN, never inf for a finite truth.
* invalid arguments: a ValueError or TypeError with a one-line message that names
  the corrupted argument.
* anything else — another exception type, a RuntimeWarning, a refusal of valid
  input, a result for invalid input — fails the test.

Sizes are bounded (≤ 4 states per variable, exact I_N only where the enumeration
is small, Monte Carlo work ≤ max_terms), so no case can run long: a size limit,
not a timer. ``test_zz_fuzz_counts`` runs last and prints the tally of cases and
outcomes (``pytest -s``); set RPMREF_FUZZ_REPORT=path to also write it as JSON.
"""
import collections
import json
import math
import numbers
import operator
import os
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra.numpy import arrays

import rpmref
from rpmref import exact, verify
from tests import reference as ref
from tests.strategies import conditionals, pmfs
from tests.test_extremes_exact import (
    assert_log_close, assert_prob_close, extreme_conditionals, extreme_critics, extreme_pmfs,
    log_scale)

COUNTS = collections.Counter()
EPS = np.finfo(float).eps
INT64_MAX = int(np.iinfo(np.int64).max)
FUZZ = settings(max_examples=350, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


class Invalid(Exception):
    """The test's own verdict: these arguments break a documented rule (message: which)."""

    def __init__(self, name, why):
        super().__init__(f"{name}: {why}")
        self.name = name


# --------------------------------------------------------------------------- the rules, re-implemented
def as_table(value, name):
    """The float64 array the documented rules accept, or Invalid."""
    if value is None or isinstance(value, (str, bytes, dict)) or isinstance(value, np.ma.MaskedArray):
        raise Invalid(name, "not an array")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.asarray(value)
    except Exception:
        raise Invalid(name, "ragged") from None
    if arr.dtype.kind not in "iuf":
        raise Invalid(name, f"dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.size == 0:
        raise Invalid(name, "empty")
    return arr


def require(condition, name, why):
    if not condition:
        raise Invalid(name, why)


def real_table(value, name, ndim=None):
    arr = as_table(value, name)
    require(ndim is None or arr.ndim == ndim, name, "ndim")
    require(np.all(np.isfinite(arr)), name, "not finite")
    return arr


def pmf_table(value, name, ndim=None):
    arr = real_table(value, name, ndim)
    require(np.all(arr >= 0), name, "negative")
    require(abs(arr.sum() - 1) <= max(1e-9, arr.size * EPS), name, "sum")
    return arr


def conditional_table(value, name, rows=None, event_axes=1, ndim=2, zero_allowed=None):
    """``zero_allowed``: a mask over the slices that may also be all zero."""
    arr = real_table(value, name, ndim)
    require(np.all(arr >= 0), name, "negative")
    if rows is not None:
        require(arr.shape[:len(rows)] == tuple(rows), name, "rows")
    axes = tuple(range(arr.ndim - event_axes, arr.ndim))
    m = int(np.prod(arr.shape[arr.ndim - event_axes:]))
    sums = arr.sum(axis=axes)
    good = np.abs(sums - 1) <= max(1e-9, m * EPS)
    if zero_allowed is not None:
        good |= (sums == 0) & zero_allowed
    require(np.all(good), name, "row sums")
    return arr


def integer(value, name, low=None, high=None):
    require(not isinstance(value, (bool, np.bool_)), name, "bool")
    try:
        v = operator.index(value)
    except TypeError:
        raise Invalid(name, "not an integer") from None
    require(low is None or v >= low, name, "too small")
    require(high is None or v <= high, name, "too large")
    return int(v)


def shape_is(arr, shape, name):
    require(arr.shape == tuple(shape), name, "shape")


# --------------------------------------------------------------------------- hostile values
HOSTILE_ARRAY_KINDS = [
    "keep", "keep", "nan", "inf", "-inf", "negative", "scale_up", "scale_down", "drop_row",
    "drop_col", "add_col_zeros", "ravel", "add_axis", "empty", "complex", "object", "string",
    "bool", "none", "dict", "masked", "ragged", "float32", "float16", "int_round", "list",
    "fortran", "strided", "datetime", "huge", "transpose"]


def hostile_array(draw, arr):
    """(value, kind): arr corrupted (or re-typed) in one of the ways above."""
    kind = draw(st.sampled_from(HOSTILE_ARRAY_KINDS))
    a = np.array(arr, dtype=float, copy=True)
    i = draw(st.integers(0, a.size - 1)) if a.size else 0
    if kind == "keep":
        return a, kind
    if kind in ("nan", "inf", "-inf"):
        a.flat[i] = float(kind)
        return a, kind
    if kind == "negative":
        a.flat[i] = -draw(st.sampled_from([0.1, 5e-324, 1e-12, 1.0]))
        return a, kind
    if kind == "scale_up":
        with np.errstate(over="ignore"):   # a 1e308 critic becomes inf: also hostile
            return a * 1.5, kind
    if kind == "scale_down":
        return a * 0.5, kind
    if kind == "drop_row":
        return a[:-1], kind
    if kind == "drop_col":
        return (a[..., :-1] if a.ndim else a), kind
    if kind == "add_col_zeros":
        return (np.concatenate([a, np.zeros(a.shape[:-1] + (1,))], axis=-1) if a.ndim else a), kind
    if kind == "ravel":
        return a.ravel(), kind
    if kind == "add_axis":
        return a[None], kind
    if kind == "empty":
        return np.zeros((0,) + a.shape[1:]), kind
    if kind == "complex":
        return a.astype(complex), kind
    if kind == "object":
        return a.astype(object), kind
    if kind == "string":
        return draw(st.sampled_from([str(a.tolist()), a.astype(str), "abc"])), kind
    if kind == "bool":
        return a > 0, kind
    if kind == "none":
        return None, kind
    if kind == "dict":
        return {"p": a}, kind
    if kind == "masked":
        return np.ma.masked_array(a, mask=np.zeros(a.shape, bool)), kind
    if kind == "ragged":
        rows = a.tolist() if a.ndim >= 2 else [a.tolist()]
        return [rows[0] + [0.0]] + rows[1:] if len(rows) > 1 else [[0.5], [0.25, 0.25]], kind
    if kind in ("float32", "float16"):
        with np.errstate(over="ignore"):  # a valid critic of 1e308 becomes inf: intended
            return a.astype(kind), kind
    if kind == "int_round":
        with np.errstate(invalid="ignore", over="ignore"):   # a 1e308 critic has no int64
            return np.rint(a).astype(np.int64), kind
    if kind == "list":
        return a.tolist(), kind
    if kind == "fortran":
        return np.asfortranarray(a), kind
    if kind == "strided":
        big = np.zeros((2,) + a.shape)
        big[0] = a
        return big[0] if a.ndim == 0 else np.moveaxis(np.repeat(a[..., None], 2, axis=-1), -1, 0)[0], kind
    if kind == "datetime":
        return np.zeros(a.shape, dtype="datetime64[D]"), kind
    if kind == "huge":
        a.flat[i] = draw(st.sampled_from([1e308, -1e308, 1.7976931348623157e308]))
        return a, kind
    if kind == "transpose":
        return a.T, kind
    raise AssertionError(kind)


HOSTILE_INTS = [0, 1, 2, 3, -1, -(2 ** 70), 2 ** 70, INT64_MAX, True, False, 3.0, 2.5, float("nan"),
                float("inf"), "3", None, np.int64(3), np.uint8(2), np.float64(2.0), 1 + 0j, [3],
                np.array(3), np.array([3])]


def hostile_int(draw, valid):
    return draw(st.one_of(st.just(valid), st.sampled_from(HOSTILE_INTS)))


# --------------------------------------------------------------------------- the verdict
def run_case(name, func, kwargs, corrupted, expect):
    """Call func(**kwargs). expect(kwargs) raises Invalid or returns a checker of the result."""
    try:
        checker = expect(kwargs)
        verdict = None
    except Invalid as exc:
        checker, verdict = None, exc
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            result = func(**kwargs)
        except (ValueError, TypeError) as exc:
            message = str(exc)
            assert verdict is not None, f"{name} refused valid input ({corrupted}): {message}"
            assert "\n" not in message, message
            # The message must name an argument that is at fault: one we corrupted or the one
            # the rules above single out (e.g. max_terms for an over-budget enumeration).
            at_fault = set(corrupted) | {verdict.name}
            named = [a for a in at_fault if re.search(rf"(?<![\w']){re.escape(a)}(?![\w'])", message)]
            assert named, f"{name}: message does not name any of {sorted(at_fault)}: {message}"
            COUNTS[(name, f"refused: {type(exc).__name__}")] += 1
            return
    assert verdict is None, f"{name} accepted invalid input ({verdict}) and returned {result!r}"
    outcome = checker(result)
    COUNTS[(name, outcome or "valid: matches reference")] += 1


def corrupt(draw, kwargs, array_args, scalar_args=()):
    """Corrupt 0–2 of the named arguments in place; returns the names corrupted."""
    names = list(array_args) + [s for s, _ in scalar_args]
    size = min(len(names), draw(st.sampled_from([0, 1, 1, 1, 2])))
    chosen = draw(st.lists(st.sampled_from(names), min_size=size, max_size=size, unique=True))
    corrupted = []
    for a in chosen:
        if a in array_args:
            kwargs[a], kind = hostile_array(draw, kwargs[a])
            if kind not in ("keep", "list", "fortran", "strided", "transpose"):
                corrupted.append(a)
            elif kind == "transpose" and np.ndim(kwargs[a]) >= 2 and np.shape(kwargs[a]) != np.shape(kwargs[a])[::-1]:
                corrupted.append(a)
        else:
            options = dict(scalar_args)[a]
            kwargs[a] = draw(options)
            corrupted.append(a)
    return corrupted


def finite_or_matching(result, expected):
    r = np.asarray(result, dtype=float)
    assert not np.isnan(r).any()
    return r


# --------------------------------------------------------------------------- problem strategies
@st.composite
def any_problem(draw, max_states=4):
    """(p_xx, enc, enc_prime, prior): ordinary (tests.strategies) or extreme tables."""
    n, n_prime = draw(st.integers(1, max_states)), draw(st.integers(1, max_states))
    k, k_prime = draw(st.integers(1, max_states)), draw(st.integers(1, max_states))
    if draw(st.booleans()):
        return (draw(pmfs((n, n_prime))), draw(conditionals(n, k)), draw(conditionals(n_prime, k_prime)),
                draw(pmfs((k, k_prime))))
    return (draw(extreme_pmfs((n, n_prime))), draw(extreme_conditionals(n, k)),
            draw(extreme_conditionals(n_prime, k_prime)), draw(extreme_pmfs((k, k_prime))))


MODEL_ARGS = ("p_xx", "enc", "enc_prime", "prior")


def model_tables(kw, with_prior=True):
    p_xx = pmf_table(kw["p_xx"], "p_xx", ndim=2)
    enc = conditional_table(kw["enc"], "enc", rows=p_xx.shape[:1])
    enc_prime = conditional_table(kw["enc_prime"], "enc_prime", rows=p_xx.shape[1:])
    if not with_prior:
        return p_xx, enc, enc_prime
    prior = pmf_table(kw["prior"], "prior", ndim=2)
    shape_is(prior, (enc.shape[1], enc_prime.shape[1]), "prior")
    return p_xx, enc, enc_prime, prior


# --------------------------------------------------------------------------- one test per function
@FUZZ
@given(st.data())
def test_fuzz_model_functions(data):
    """rpm_log_likelihood, rpm_posterior, expected_elbo, elbo_decomposition."""
    name = data.draw(st.sampled_from(["rpm_log_likelihood", "rpm_posterior", "expected_elbo",
                                      "elbo_decomposition"]))
    kwargs = dict(zip(MODEL_ARGS, data.draw(any_problem())))
    corrupted = corrupt(data.draw, kwargs, MODEL_ARGS)

    def expect(kw):
        tables = model_tables(kw)
        scale = log_scale(*tables)
        if name == "rpm_log_likelihood":
            return lambda r: assert_log_close(r, ref.mp_rpm_log_likelihood(*tables), scale)
        if name == "rpm_posterior":
            return lambda r: assert_prob_close(r, ref.mp_rpm_posterior(*tables))
        if name == "expected_elbo":
            return lambda r: assert_log_close(r, ref.mp_expected_elbo(*tables), scale)

        def check(d):
            joint = ref.mp_joint(*tables[:3])
            assert_log_close(d.elbo, ref.mp_expected_elbo(*tables), scale)
            assert_log_close(d.kl, ref.mp_kl_of_tables(joint, ref._mp_table(tables[3])), scale)
            assert_log_close(d.mutual_information, ref.mp_mutual_information(joint), scale)
            if math.isfinite(d.elbo):
                assert abs(d.elbo - (d.mutual_information - d.kl + d.constant)) <= 1e-12 * (1 + scale + abs(d.elbo))
        return check

    run_case(name, getattr(exact, name), kwargs, corrupted, expect)


@FUZZ
@given(st.data())
def test_fuzz_elbo_with_and_without_posterior(data):
    p_xx, enc, enc_prime, prior = data.draw(any_problem(max_states=3))
    kwargs = dict(p_xx=p_xx, enc=enc, enc_prime=enc_prime, prior=prior)
    if data.draw(st.booleans()):
        q = data.draw(extreme_pmfs((p_xx.size, prior.size)))
        rows = q.sum(axis=1, keepdims=True)
        q = np.where(rows > 0, q / np.where(rows > 0, rows, 1), 1.0 / prior.size)
        kwargs["posterior"] = q.reshape(p_xx.shape + prior.shape)
    corrupted = corrupt(data.draw, kwargs, tuple(kwargs))

    def expect(kw):
        tables = model_tables(kw)
        scale = log_scale(*tables)
        if kw.get("posterior") is None:
            return lambda r: assert_log_close(r, ref.mp_elbo(*tables), scale)
        # an all-zero slice is allowed (ELBO −inf) exactly where P_θ(x, x') = 0 (mpmath)
        no_mass = np.array(ref.mp_rpm_log_likelihood(*tables)) == -np.inf
        q = conditional_table(kw["posterior"], "posterior", rows=tables[0].shape, event_axes=2,
                              ndim=4, zero_allowed=no_mass)
        shape_is(q, tables[0].shape + tables[3].shape, "posterior")
        expected = np.array(ref.mp_elbo_general(*tables, q))
        expected[q.sum(axis=(2, 3)) == 0] = -np.inf
        return lambda r: assert_log_close(r, expected, 2 * scale + log_scale(q))

    run_case("elbo", rpmref.elbo, kwargs, corrupted, expect)


@FUZZ
@given(st.data())
def test_fuzz_data_and_latent_tables(data):
    """recognition_joint, optimal_prior, latent_marginals, data_marginals, data_constant."""
    name = data.draw(st.sampled_from(["recognition_joint", "optimal_prior", "latent_marginals",
                                      "data_marginals", "data_constant"]))
    p_xx, enc, enc_prime, _ = data.draw(any_problem())
    kwargs = dict(p_xx=p_xx) if name.startswith("data_") else dict(p_xx=p_xx, enc=enc, enc_prime=enc_prime)
    corrupted = corrupt(data.draw, kwargs, tuple(kwargs))

    def expect(kw):
        if name.startswith("data_"):
            p = pmf_table(kw["p_xx"], "p_xx", ndim=2)
            if name == "data_marginals":
                def check(r):
                    assert_prob_close(r[0], [math.fsum(row) for row in p])
                    assert_prob_close(r[1], [math.fsum(col) for col in p.T])
                return check
            expected = -ref.mp_entropy(p.sum(axis=1)) - ref.mp_entropy(p.sum(axis=0))
            return lambda r: assert_log_close(r, expected, log_scale(p))
        tables = model_tables(kw, with_prior=False)
        if name == "latent_marginals":
            def check(r):
                *_, p_z, p_zp = ref.mp_marginals(*tables)
                assert_prob_close(r[0], [float(v) for v in p_z])
                assert_prob_close(r[1], [float(v) for v in p_zp])
            return check
        return lambda r: assert_prob_close(r, [[float(v) for v in row] for row in ref.mp_joint(*tables)])

    run_case(name, getattr(exact, name), kwargs, corrupted, expect)


@FUZZ
@given(st.data())
def test_fuzz_empirical_rpm_pmf(data):
    n = data.draw(st.integers(1, 4))
    k, k_prime = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    kwargs = dict(enc_rows=data.draw(extreme_conditionals(n, k)),
                  enc_prime_rows=data.draw(extreme_conditionals(n, k_prime)),
                  prior=data.draw(extreme_pmfs((k, k_prime))))
    corrupted = corrupt(data.draw, kwargs, tuple(kwargs))

    def expect(kw):
        a = conditional_table(kw["enc_rows"], "enc_rows")
        b = conditional_table(kw["enc_prime_rows"], "enc_prime_rows", rows=a.shape[:1])
        prior = pmf_table(kw["prior"], "prior", ndim=2)
        shape_is(prior, (a.shape[1], b.shape[1]), "prior")
        return lambda r: assert_prob_close(r, ref.mp_empirical_rpm_pmf(a, b, prior))

    run_case("empirical_rpm_pmf", rpmref.empirical_rpm_pmf, kwargs, corrupted, expect)


@FUZZ
@given(st.data())
def test_fuzz_measures(data):
    """entropy, kl_divergence, mutual_information (with split)."""
    name = data.draw(st.sampled_from(["entropy", "kl_divergence", "mutual_information"]))
    shape = tuple(data.draw(st.lists(st.integers(1, 3), min_size=1 if name != "mutual_information" else 2,
                                     max_size=3)))
    p = data.draw(st.one_of(pmfs(shape), extreme_pmfs(shape)))
    if name == "entropy":
        kwargs, scalars = dict(p=p), ()
    elif name == "kl_divergence":
        kwargs, scalars = dict(p=p, q=data.draw(st.one_of(pmfs(shape), extreme_pmfs(shape)))), ()
    else:
        kwargs = dict(p_joint=p, split=data.draw(st.integers(1, len(shape) - 1)))
        scalars = (("split", st.sampled_from(HOSTILE_INTS)),)
    arrays_ = tuple(a for a in kwargs if a != "split")
    corrupted = corrupt(data.draw, kwargs, arrays_, scalars)

    def expect(kw):
        if name == "entropy":
            a = pmf_table(kw["p"], "p")
            return lambda r: assert_log_close(r, ref.mp_entropy(a.ravel()), log_scale(a))
        if name == "kl_divergence":
            a, b = pmf_table(kw["p"], "p"), pmf_table(kw["q"], "q")
            shape_is(b, a.shape, "q")
            return lambda r: assert_log_close(r, ref.mp_kl(a.ravel(), b.ravel()), log_scale(a, b))
        a = pmf_table(kw["p_joint"], "p_joint")
        split = integer(kw["split"], "split", low=1)
        require(a.ndim >= 2 and split < a.ndim, "split", "too many axes")
        table = a.reshape(int(np.prod(a.shape[:split])), -1)
        return lambda r: assert_log_close(r, ref.mp_mutual_information(table), log_scale(a))

    run_case(name, getattr(exact, name), kwargs, corrupted, expect)


@st.composite
def any_joint_and_critic(draw, max_latent=3):
    k, k_prime = draw(st.integers(1, max_latent)), draw(st.integers(1, max_latent))
    p = draw(st.one_of(pmfs((k, k_prime)), extreme_pmfs((k, k_prime))))
    f = draw(st.one_of(extreme_critics((k, k_prime)),
                       arrays(np.float64, (k, k_prime), elements=st.floats(-30, 30))))
    return p, f


def joint_and_critic(kw):
    p = pmf_table(kw["p_zz"], "p_zz", ndim=2)
    f = real_table(kw["f"], "f", ndim=2)
    shape_is(f, p.shape, "f")
    return p, f


@FUZZ
@given(st.data())
def test_fuzz_critic_functions(data):
    """energy_prior, log_partition, infonce_limit."""
    name = data.draw(st.sampled_from(["energy_prior", "log_partition", "infonce_limit"]))
    p, f = data.draw(any_joint_and_critic())
    kwargs = dict(p_zz=p, f=f)
    corrupted = corrupt(data.draw, kwargs, ("p_zz", "f"))

    def expect(kw):
        p_zz, critic = joint_and_critic(kw)
        scale = log_scale(p_zz)
        if name == "energy_prior":
            return lambda r: assert_prob_close(r, ref.mp_energy_prior(p_zz, critic))
        if name == "log_partition":
            return lambda r: assert_log_close(r, ref.mp_log_partition(p_zz, critic), scale)
        return lambda r: assert_log_close(r, ref.mp_infonce_limit(p_zz, critic), scale)

    run_case(name, getattr(exact, name), kwargs, corrupted, expect)


SEEDS = [None, 0, 7, -1, 1.5, "a", [1, 2], [-1], True, np.int64(3), np.random.SeedSequence(1),
         2 ** 70, b"x"]
METHODS = ["auto", "exact", "mc", "bogus", None, 3, b"mc", "EXACT"]
RNGS = [None, np.random.default_rng(0), 42, "x", np.random.RandomState(0)]


def _seed_ok(seed):
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return True
    if isinstance(seed, (bool, np.bool_, float, str, bytes)):
        return False
    values = seed if isinstance(seed, list) else [seed]
    return all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0 for v in values)


def _exact_terms(reachable, cells, n):
    if n == 1:
        return cells
    if (reachable - 1) * math.log10(n + reachable) > 30:
        return math.inf
    return math.comb(n - 2 + reachable, reachable - 1) * cells


@FUZZ
@given(st.data())
def test_fuzz_infonce_bound(data):
    p, f = data.draw(any_joint_and_critic(max_latent=2))
    kwargs = dict(p_zz=p, f=f, n=data.draw(st.integers(1, 4)),
                  method=data.draw(st.sampled_from(["auto", "exact", "mc"])),
                  n_batches=data.draw(st.sampled_from([2, 10, 50])),
                  rng=None, seed=data.draw(st.sampled_from([None, 0, 3])),
                  max_terms=data.draw(st.sampled_from([10 ** 7, 100, 1])))
    scalars = (("n", st.sampled_from(HOSTILE_INTS + [10 ** 6, 10 ** 18])),
               ("method", st.sampled_from(METHODS)),
               ("n_batches", st.sampled_from(HOSTILE_INTS)),
               ("rng", st.sampled_from(RNGS)), ("seed", st.sampled_from(SEEDS)),
               ("max_terms", st.sampled_from(HOSTILE_INTS + [10 ** 7])))
    corrupted = corrupt(data.draw, kwargs, ("p_zz", "f"), scalars)

    def expect(kw):
        p_zz, critic = joint_and_critic(kw)
        n = integer(kw["n"], "n", 1, INT64_MAX)
        require(isinstance(kw["method"], str) and kw["method"] in ("auto", "exact", "mc"), "method", "unknown")
        n_batches = integer(kw["n_batches"], "n_batches", 2, INT64_MAX)
        require(kw["rng"] is None or isinstance(kw["rng"], np.random.Generator), "rng", "not a Generator")
        require(_seed_ok(kw["seed"]), "seed", "bad seed")
        max_terms = integer(kw["max_terms"], "max_terms", 1)
        reachable = int(np.count_nonzero(p_zz.sum(axis=0)))
        exact_terms = _exact_terms(reachable, p_zz.size, n)
        method = kw["method"]
        use_exact = method == "exact" or (method == "auto" and exact_terms <= max_terms)
        if use_exact:
            require(exact_terms <= max_terms, "max_terms", "exact enumeration too large")
        else:
            require(n_batches * p_zz.size <= max_terms, "max_terms", "Monte Carlo work too large")
            require(kw["rng"] is None or kw["seed"] is None, "seed", "rng and seed")
        scale = log_scale(p_zz)

        def check(result):
            assert result.method == ("exact" if use_exact else "mc")
            assert not math.isnan(result.estimate) and not math.isnan(result.stderr)
            if use_exact:
                assert result.stderr == 0.0 and result.n_batches is None
                if n ** 1 <= 3 and np.count_nonzero(p_zz) ** n <= 64:
                    assert_log_close(result.estimate, ref.mp_infonce_enumerated(p_zz, critic, n), scale)
                    return "valid: matches reference"
                assert result.estimate <= math.log(n) + 1e-12 * (1 + abs(result.estimate))
                return "valid: identities hold"
            assert result.n_batches == n_batches and result.stderr >= 0
            if np.abs(critic).max() < 1e300:
                assert math.isfinite(result.estimate)
                assert result.estimate <= math.log(n) + 1e-9 * (1 + abs(result.estimate))
            return "valid: identities hold"
        return check

    run_case("infonce_bound", rpmref.infonce_bound, kwargs, corrupted, expect)


TOLERANCES = [1e-10, 0.0, 1e-3, -1.0, float("nan"), float("inf"), "1e-10", None, True, np.float32(1e-9),
              1 + 0j]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_run_checks_arguments(data):
    kwargs = dict(trials=1, seed=data.draw(st.integers(0, 5)), max_states=data.draw(st.integers(1, 3)),
                  tolerance=1e-10)
    scalars = (("trials", st.sampled_from(HOSTILE_INTS + [10 ** 7])),
               ("seed", st.sampled_from(HOSTILE_INTS)),
               ("max_states", st.sampled_from(HOSTILE_INTS + [10 ** 6, 33])),
               ("tolerance", st.sampled_from(TOLERANCES)))
    corrupted = corrupt(data.draw, kwargs, (), scalars)

    def expect(kw):
        trials = integer(kw["trials"], "trials", 1, verify.MAX_TRIALS)
        integer(kw["seed"], "seed", 0)
        integer(kw["max_states"], "max_states", 1, verify.MAX_STATES_LIMIT)
        require(trials <= 2 and kw["max_states"] <= 3, "trials", "kept small by the fuzz strategy")
        t = kw["tolerance"]
        require(isinstance(t, numbers.Real) and not isinstance(t, (bool, np.bool_)), "tolerance", "type")
        require(math.isfinite(t) and t >= 0, "tolerance", "value")

        def check(rows):
            assert {r["id"] for r in rows} >= {"E1", "E2", "E3", "E8", "N1", "A1"}
            if float(t) >= 1e-10:
                assert all(r["passed"] for r in rows), rows
            return "valid: identities hold"
        return check

    try:
        expect(kwargs)
    except Invalid as exc:
        if exc.name == "trials" and "small" in str(exc):
            return  # a valid but long run: not what this fuzz test spends time on
    run_case("run_checks", verify.run_checks, kwargs, corrupted, expect)


def test_zz_fuzz_counts():
    """Runs last: the tally of cases and outcomes (every function was reached, both ways)."""
    functions = {name for name, _ in COUNTS}
    report = {f"{name} | {outcome}": count for (name, outcome), count in sorted(COUNTS.items())}
    total = sum(COUNTS.values())
    print(f"\nfuzz cases: {total}")
    for line, count in report.items():
        print(f"  {count:5d}  {line}")
    if os.environ.get("RPMREF_FUZZ_REPORT"):
        with open(os.environ["RPMREF_FUZZ_REPORT"], "w") as fh:
            json.dump({"total": total, "outcomes": report}, fh, indent=1)
    if total == 0:
        pytest.skip("run with the other fuzz tests to get the tally")
    expected = {"rpm_log_likelihood", "rpm_posterior", "expected_elbo", "elbo_decomposition", "elbo",
                "recognition_joint", "optimal_prior", "latent_marginals", "data_marginals",
                "data_constant", "empirical_rpm_pmf", "entropy", "kl_divergence",
                "mutual_information", "energy_prior", "log_partition", "infonce_limit",
                "infonce_bound", "run_checks"}
    assert expected <= functions, expected - functions
    for name in expected:
        outcomes = {o for (n, o), _ in COUNTS.items() if n == name}
        assert any(o.startswith("valid") for o in outcomes), (name, outcomes)
        assert any(o.startswith("refused") for o in outcomes), (name, outcomes)
