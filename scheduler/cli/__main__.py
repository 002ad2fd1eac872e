"""``python -m scheduler.cli`` runs the same command as ``pipesched``."""

from scheduler.cli import main

main()
