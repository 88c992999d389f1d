"""Select registered proofs by ID and run them, one result per identity."""
import numbers

import numpy as np

from .catalogue import PROOFS
from .core import run_entry

DEFAULT_MAX_SIZE = 3


def select(ids=None, include_wrong=False):
    """Registry entries for ``ids`` (all correct identities if None), in report order.

    ``ids`` is an ID ("E3"), comma-separated IDs ("E3,N1") or a sequence of them;
    ``include_wrong`` (a bool) adds the deliberately wrong identities. Raises ValueError
    naming any unknown ID and listing the known ones, or when ``ids`` names no ID at
    all ("", [] or ",,"); TypeError for ``ids`` not strings or ``include_wrong`` not a bool.
    """
    if not isinstance(include_wrong, (bool, np.bool_)):
        raise TypeError(f"include_wrong must be a bool, got {include_wrong!r}")
    if isinstance(ids, str):   # "E3" or "E3,N1": not the characters 'E', '3'
        ids = [ids]
    if ids is not None and (not np.iterable(ids) or not all(isinstance(item, str) for item in ids)):
        raise TypeError(f"ids must be proof IDs (strings such as 'E3'), got {ids!r}")
    if ids is not None:
        wanted = [pid.strip() for item in ids for pid in item.split(",") if pid.strip()]
        if not wanted:
            raise ValueError(f"ids names no proof ID, got {ids!r}; known: {', '.join(PROOFS)}")
        unknown = [pid for pid in wanted if pid.upper() not in PROOFS]
        if unknown:
            raise ValueError(f"unknown proof ID {', '.join(map(repr, unknown))}; "
                             f"known: {', '.join(PROOFS)}")
        wanted = {pid.upper() for pid in wanted}
        chosen = [e for pid, e in PROOFS.items() if pid in wanted]
    else:
        chosen = [e for e in PROOFS.values() if not e.wrong]
    if include_wrong:
        chosen += [e for e in PROOFS.values() if e.wrong and e not in chosen]
    return chosen


def run_proofs(entries, max_size=DEFAULT_MAX_SIZE, on_result=None):
    """Run each entry; ``on_result(result)`` is called as each finishes. Returns the results.

    ``max_size`` is an integer ≥ 1 (a NumPy integer too; bools refused); ``entries`` and
    ``on_result`` (a callable or None) are checked before any proof runs.
    """
    if not isinstance(max_size, numbers.Integral) or isinstance(max_size, (bool, np.bool_)):
        raise TypeError(f"max_size must be an integer, got {max_size!r}")
    if max_size < 1:
        raise ValueError(f"max_size must be an integer >= 1, got {max_size!r}")
    max_size = int(max_size)
    if on_result is not None and not callable(on_result):
        raise TypeError(f"on_result must be a callable or None, got {on_result!r}")
    if not np.iterable(entries) or isinstance(entries, (str, bytes)):
        raise TypeError(f"entries must come from select() (registry entries), got {entries!r}; "
                        f"run_proofs(select(['E3'])) runs E3")
    entries = list(entries)
    strays = [e for e in entries if not hasattr(e, "wrong")]
    if strays:
        raise TypeError(f"entries must come from select() (registry entries), got {strays[0]!r}; "
                        f"run_proofs(select(['E3'])) runs E3")
    results = []
    for entry in entries:
        result = run_entry(entry, max_size)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
