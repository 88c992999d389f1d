"""Symbolic (sympy) proofs of the identities in SPEC.md."""
