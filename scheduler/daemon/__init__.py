"""The daemon: its start-up recipe and lifecycle (lock, systemd notify, recovery, reload, control)."""
