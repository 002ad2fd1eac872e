"""A unix socket whose path is longer than the kernel's 107 bytes still binds and connects."""

from __future__ import annotations

import socket
from pathlib import Path

from scheduler.core.socketpath import SUN_PATH_MAX, socket_address


def test_a_socket_deeper_than_107_bytes_binds_and_answers(tmp_path: Path):
    folder = tmp_path / ("deep-" * 12) / ("folder-" * 6)
    folder.mkdir(parents=True)
    path = folder / "pipesched.sock"
    assert len(str(path).encode()) > SUN_PATH_MAX
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with socket_address(path) as address:
            server.bind(address)
        server.listen(1)
        assert path.is_socket()  # the file is where it was asked for
        with socket_address(path) as address:
            client.connect(address)
        accepted, _ = server.accept()
        with accepted:
            client.sendall(b"ping")
            assert accepted.recv(4) == b"ping"
    finally:
        client.close()
        server.close()


def test_a_short_path_is_used_as_it_is(tmp_path: Path):
    with socket_address(tmp_path / "s.sock") as address:
        assert address == str(tmp_path / "s.sock")
