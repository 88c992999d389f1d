"""``python -m rpmref`` is the ``rpmref`` command."""
import sys

from rpmref.cli import main

sys.exit(main())
