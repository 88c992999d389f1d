"""Symbolic (sympy) proofs of the identities of the paper (docs/theory.md, 'Identities').

One module per identity group, each registering its proofs by ID (see
``proofs.catalogue``): gibbs (L1), normalisation (N1), elbo (E1, E2, E3, E8),
optimal_prior (E4), energy_prior (E5, E6), infonce_bound (E7), deterministic
(E9, A1), gaussian (G1), wrong (deliberately wrong identities). The provers are
``logsums`` (log-coefficient method), ``sums`` (symbolic-size sums) and
``finite`` (symbolic tables). Run with ``rpmref proofs`` or ``python -m proofs``.
"""
