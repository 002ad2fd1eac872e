"""``pipesched logs`` against a daemon's REST API (``--url``): the bytes the daemon sends, under
the same ``==> step (attempt N) <==`` headers as a local read when every step is shown."""

from __future__ import annotations

import click

from scheduler.services.daemon_http import RemoteClient
from scheduler.services.remote_reads import remote_log, remote_run

SUCCESS = frozenset({"completed", "reused"})


def print_remote_logs(
    client: RemoteClient,
    run_ref: str,
    step: str | None,
    attempt: int | None,
    follow: bool,
    lines: int | None,
) -> int:
    """Print the asked logs (with ``follow``, until the step ends); the command's exit code."""
    out = click.get_binary_stream("stdout")
    detail = remote_run(client, run_ref)
    if step is not None:
        for chunk in remote_log(
            client, detail["id"], step, attempt=attempt, lines=lines, follow=follow
        ):
            out.write(chunk)
            out.flush()
        if not follow:
            return 0
        ended = remote_run(client, detail["id"])
        status = next(
            (s["status"] for s in ended["steps"] if step in (s["name"], s["display_name"])), None
        )
        return 0 if status in SUCCESS else 1
    if follow:
        raise click.UsageError("with --url, -f follows one step: give --step")
    started = sorted(
        (s for s in detail["steps"] if s["started_at"] is not None), key=lambda s: s["started_at"]
    )
    if not started:
        click.echo(f"error: run {detail['id']} has no step logs yet ({detail['status']})", err=True)
        return 1
    for index, shown in enumerate(started):
        prefix = b"" if index == 0 else b"\n"
        out.write(prefix + f"==> {shown['name']} (attempt {shown['attempt']}) <==\n".encode())
        data = b"".join(
            remote_log(client, detail["id"], shown["name"], attempt=None, lines=lines, follow=False)
        )
        if data and not data.endswith(b"\n"):
            data += b"\n"
        out.write(data)
    out.flush()
    return 0
