"""``python -m proofs`` (from a checkout): the same as ``rpmref proofs``."""
import sys

from rpmref.cli.proofs import main

sys.exit(main())
