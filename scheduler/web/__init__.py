"""The web view: server-rendered pages over the services."""
