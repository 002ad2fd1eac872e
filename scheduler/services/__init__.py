"""Every operation a user can do, written once, and the client that asks a running daemon.

Standard library only at import time, so that a read through a running daemon stays light."""
