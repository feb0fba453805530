"""``python -m experiments.study CONFIG``: the same as ``ensembles-study CONFIG``."""

import sys

from experiments.study.cli import main

sys.exit(main())
