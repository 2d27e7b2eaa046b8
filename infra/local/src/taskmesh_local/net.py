"""Ports and readiness probes, each speaking just enough of its protocol to get an answer."""

from __future__ import annotations

import contextlib
import http.client
import socket
import struct
from collections.abc import Iterator

__all__ = [
    "amqp_ready",
    "free_ports",
    "http_status",
    "mongo_ping",
    "port_open",
    "redis_ping",
]

HOST = "127.0.0.1"


def port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now; all bound at once, so they are distinct."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


@contextlib.contextmanager
def _connect(port: int, timeout: float) -> Iterator[socket.socket]:
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        yield sock


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def http_status(url_host_port: tuple[str, int], path: str, timeout: float = 2.0) -> int | None:
    """The status of GET ``path``, or None when nothing answers."""
    host, port = url_host_port
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def redis_ping(port: int, timeout: float = 1.0) -> bool:
    try:
        with _connect(port, timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def amqp_ready(port: int, timeout: float = 1.0) -> bool:
    """The broker answers the protocol header with a Connection.Start method frame."""
    try:
        with _connect(port, timeout) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            frame_type, _channel, _size = struct.unpack(">BHI", _recv_exactly(sock, 7))
            class_id, method_id = struct.unpack(">HH", _recv_exactly(sock, 4))
            return (frame_type, class_id, method_id) == (1, 10, 10)
    except (OSError, struct.error):
        return False


def _bson_ping() -> bytes:
    elements = b"\x10ping\x00" + struct.pack("<i", 1)
    elements += b"\x02$db\x00" + struct.pack("<i", 6) + b"admin\x00"
    return struct.pack("<i", len(elements) + 5) + elements + b"\x00"


def mongo_ping(port: int, timeout: float = 2.0) -> bool:
    """Send ``{ping: 1}`` as an OP_MSG and look for ``ok: 1.0`` in the reply."""
    body = struct.pack("<I", 0) + b"\x00" + _bson_ping()
    header = struct.pack("<iiii", 16 + len(body), 1, 0, 2013)
    try:
        with _connect(port, timeout) as sock:
            sock.sendall(header + body)
            (length,) = struct.unpack("<i", _recv_exactly(sock, 4))
            reply = _recv_exactly(sock, length - 4)
    except (OSError, struct.error):
        return False
    return b"\x01ok\x00" + struct.pack("<d", 1.0) in reply
