"""Real alert receivers for tests: an HTTP server on 127.0.0.1 in a thread, and a command that
appends the event it reads on stdin to a file. Either can be "down" (the server answers 503,
the command exits 1) to leave events pending."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

APPEND_STDIN = """\
import os, sys
out = sys.argv[1]
if os.path.exists(out + ".down"):
    sys.exit(1)
with open(out, "a") as file:
    file.write(sys.stdin.read().strip() + "\\n")
"""


class Receiver:
    """What the HTTP receiver got: each request's headers and JSON body, in order."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[int] = []  # statuses to answer first, one per request; then 200
        self.down = False
        self.url = ""
        self.lock = threading.Lock()

    @property
    def events(self) -> list[dict[str, Any]]:
        """The events taken (answered 2xx)."""
        with self.lock:
            return [json.loads(body) for headers, body in self.requests if headers["_ok"] == "1"]

    def tried(self) -> int:
        with self.lock:
            return len(self.requests)


@contextmanager
def http_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                if receiver.down:
                    status = 503
                else:
                    status = receiver.answers.pop(0) if receiver.answers else 200
                headers = {key.lower(): value for key, value in self.headers.items()}
                headers["_ok"] = "1" if 200 <= status < 300 else "0"
                receiver.requests.append((headers, body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def command_target(folder: Path) -> tuple[list[str], Path]:
    """An argv that appends each event to ``folder/events.jsonl``, and that file; while
    ``events.jsonl.down`` exists the command exits 1."""
    script = folder / "append_stdin.py"
    script.write_text(APPEND_STDIN)
    out = folder / "events.jsonl"
    return [sys.executable, str(script), str(out)], out


def command_events(out: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []
