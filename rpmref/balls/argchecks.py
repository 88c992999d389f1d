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

    Parameters
    ----------
    value : float or int
        The argument.
    name : str
        Its name, for messages.
    low : float, optional
        Lower bound (None: unbounded).
    high : float, optional
        Upper bound (None: unbounded).
    low_open : bool, default False
        Exclude the lower bound.
    high_open : bool, default False
        Exclude the upper bound.

    Returns
    -------
    float
        The value.

    Raises
    ------
    TypeError
        For a bool or a non-number.
    ValueError
        For NaN or a value outside the interval (named in the message).

    Examples
    --------
    >>> from rpmref.balls.argchecks import check_real
    >>> check_real(0.9, "momentum", 0, 1, high_open=True)
    0.9
    >>> check_real(1, "momentum", 0, 1, high_open=True)
    Traceback (most recent call last):
    ...
    ValueError: momentum must be in [0, 1), got 1.0
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
    """``value`` must be one of ``choices`` (strings, compared with ==); returns it.

    Parameters
    ----------
    value : str
        The argument.
    name : str
        Its name, for messages.
    choices : sequence of str
        The allowed values.

    Returns
    -------
    str
        ``value``.

    Raises
    ------
    ValueError
        If ``value`` is not a string among ``choices``.

    Examples
    --------
    >>> from rpmref.balls.argchecks import check_choice
    >>> check_choice("gray", "channels", ("rgb", "gray"))
    'gray'
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def check_bool(value, name):
    """``value`` must be True or False (not 0/1, not a string); returns it.

    Parameters
    ----------
    value : bool
        The argument.
    name : str
        Its name, for messages.

    Returns
    -------
    bool
        ``value``.

    Raises
    ------
    TypeError
        For anything but a bool.

    Examples
    --------
    >>> from rpmref.balls.argchecks import check_bool
    >>> check_bool(1, "resume")
    Traceback (most recent call last):
    ...
    TypeError: resume must be True or False; got 1
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return value
