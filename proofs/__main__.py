"""``python -m proofs``: the same as ``rpmref proofs``."""
import sys

from proofs.cli import main

sys.exit(main())
