"""Generic argument checks that ``rpmref.exact.validation`` does not have (yet).

TO BE MERGED into ``rpmref.exact.validation`` (the one validation layer); kept
here, in one place, so the experiment's modules do not each write their own.
Everything else (``check_positive_int``, ``check_finite``, ``as_float_array``,
...) comes from ``rpmref.exact.validation`` directly.
"""
import math
import numbers


def check_real(value, name, low=None, high=None, low_open=False, high_open=False):
    """A real number (not a bool, not NaN) in the interval given; returns it as a float.

    low / high: bounds (None: unbounded); low_open / high_open: exclude the bound.
    TypeError for a non-number, ValueError naming the interval otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if math.isnan(value) or below or above:
        interval = (("(" if low_open else "[") + ("-inf" if low is None else f"{low:g}") + ", "
                    + ("inf" if high is None else f"{high:g}") + (")" if high_open else "]"))
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return value


def check_choice(value, name, choices):
    """``value`` must be one of ``choices`` (compared with ==); returns it."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def check_bool(value, name):
    """``value`` must be True or False (not 0/1, not a string); returns it."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return value
