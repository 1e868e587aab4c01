"""``python -m multilinear`` runs the command-line interface."""

import sys

from multilinear.cli import main

sys.exit(main())
