"""The registry of proofs and the record each proof fills in while it runs.

A proof is a function ``prove(proof, max_size)`` registered with :func:`register`
under an identity ID of docs/theory.md (E1-E9, N1, A1, ...). It derives expressions with
sympy and records every claim it checks through :meth:`Proof.check`; the identity
counts as *proved* only if every recorded check passed and nothing raised.
A check is a symbolic verdict (an expression that expands to 0, a sign sympy can
decide from the declared assumptions); ``None`` from sympy is never a verdict.
"""
import time
import traceback
from dataclasses import dataclass


@dataclass
class Step:
    """One line of a proof: ``ok`` is None for a definition or derivation shown,
    True/False for a claim that was checked."""
    text: str
    latex: str = ""
    ok: bool | None = None


@dataclass
class ProofResult:
    id: str
    title: str
    statement: str            # LaTeX of the identity (sympy.latex)
    assumptions: list
    steps: list
    status: str               # "proved" or "FAILED"
    seconds: float
    error: str = ""
    wrong: bool = False       # a deliberately wrong identity (must be FAILED)

    @property
    def checks(self):
        return [s for s in self.steps if s.ok is not None]


class Proof:
    """Collects the assumptions and steps of one proof while it runs."""

    def __init__(self):
        self.assumptions = []
        self.steps = []

    def assume(self, text):
        self.assumptions.append(text)

    def show(self, text, expr=None):
        """Record a definition or derivation step (not a verdict)."""
        self.steps.append(Step(text, _latex(expr)))

    def check(self, text, ok, expr=None):
        """Record a checked claim; ``ok`` must be a real bool, not sympy's None."""
        if ok is not True and ok is not False:
            raise TypeError(f"check {text!r}: verdict must be True or False, got {ok!r}")
        self.steps.append(Step(text, _latex(expr), ok))
        return ok


def _latex(expr):
    if expr is None:
        return ""
    if isinstance(expr, str):
        return expr
    import sympy
    return sympy.latex(expr)


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    statement: object         # () -> sympy expression or LaTeX string
    prove: object             # (Proof, max_size) -> None
    wrong: bool = False


REGISTRY = {}


def register(pid, title, statement, wrong=False):
    """Decorator: register ``prove(proof, max_size)`` under the ID ``pid``."""
    def decorate(prove):
        if pid in REGISTRY:
            raise ValueError(f"proof ID {pid!r} registered twice")
        REGISTRY[pid] = Entry(pid, title, statement, prove, wrong)
        return prove
    return decorate


def run_entry(entry, max_size):
    """Run one registered proof and return its :class:`ProofResult`."""
    proof = Proof()
    start = time.perf_counter()
    error = statement = ""
    try:
        statement = _latex(entry.statement())
        entry.prove(proof, max_size)
    except Exception as exc:  # a proof that raises is reported FAILED, with the reason
        error = f"{type(exc).__name__}: {exc}"
        proof.steps.append(Step("raised " + error, traceback.format_exc(limit=3), False))
    seconds = time.perf_counter() - start
    checks = [s for s in proof.steps if s.ok is not None]
    proved = not error and bool(checks) and all(s.ok for s in checks)
    return ProofResult(entry.id, entry.title, statement, proof.assumptions, proof.steps,
                       "proved" if proved else "FAILED", seconds, error, entry.wrong)
