"""``python -m scheduler.cli`` runs the same command as ``pipesched``."""

import sys

from scheduler.cli import main

sys.exit(main())
