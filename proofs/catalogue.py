"""Every proof module, imported in reading order so that each registers its proofs.

``PROOFS`` maps ID -> registry entry, in the order the report lists them.
"""
from . import (deterministic, elbo, energy_prior, gaussian, gibbs,  # noqa: F401  (registration)
                    infonce_bound, normalisation, optimal_prior, wrong)
from .core import REGISTRY

ORDER = ["L1", "N1", "E1", "E2", "E3", "E4", "E5", "E6", "E7", "E8", "E9", "A1", "G1",
         "WRONG-E2", "WRONG-N1"]
PROOFS = {pid: REGISTRY[pid] for pid in ORDER}
assert set(PROOFS) == set(REGISTRY), "a registered proof is missing from ORDER"
