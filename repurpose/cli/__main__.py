"""``python -m repurpose.cli``."""
import sys

from . import main

sys.exit(main())
