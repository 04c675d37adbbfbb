"""gRPC calls framed by hand over cleartext HTTP/2, for requests grpcio will not send: a length prefix that
promises more than the message has, calls reset as soon as they are opened. Headers go out as HPACK literals
(no indexing, no Huffman); the answer is read only as far as its frames: nothing is decoded.
"""

from __future__ import annotations

import socket
import time

_DATA, _HEADERS, _RST_STREAM, _SETTINGS, _PING, _GOAWAY = 0, 1, 3, 4, 6, 7
_END_STREAM, _END_HEADERS, _ACK = 0x1, 0x4, 0x1


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def _literal(name: str, value: str) -> bytes:
    assert len(name) < 127 and len(value) < 127, "short header fields only (one-byte HPACK lengths)"
    return b"\x00" + bytes([len(name)]) + name.encode() + bytes([len(value)]) + value.encode()


def _opened(endpoint: str, timeout: float) -> socket.socket:
    host, port = endpoint.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(_SETTINGS, 0, 0, b""))
    return sock


def _call_headers(endpoint: str, path: str) -> bytes:
    headers = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", endpoint),
               ("content-type", "application/grpc"), ("te", "trailers")]
    return b"".join(_literal(k, v) for k, v in headers)


def resets_until_unread(endpoint: str, path: str, seconds: float) -> int | None:
    """Opens calls on one connection and resets each at once (HTTP/2 rapid reset), 200 at a time, for up to
    `seconds`; how many were sent when the server stopped reading them (a write then blocks for a second), or
    None when it read them all."""
    with _opened(endpoint, 1.0) as sock:
        headers, stream, ends = _call_headers(endpoint, path), 1, time.monotonic() + seconds
        while time.monotonic() < ends:
            burst = b"".join(_frame(_HEADERS, _END_HEADERS, n, headers) +
                             _frame(_RST_STREAM, 0, n, (8).to_bytes(4, "big"))  # CANCEL
                             for n in range(stream, stream + 400, 2))
            try:
                sock.sendall(burst)
            except TimeoutError:
                return stream // 2
            stream += 400
        return None


def grpc_call_ending(endpoint: str, path: str, message: bytes, declared_length: int, timeout: float = 5.0) -> str:
    """Sends one gRPC message whose length prefix says `declared_length`, ends the stream, and says how the
    server answered: "trailers" (the call ended with a HEADERS frame), "reset", "goaway", "closed" or "timeout"."""
    return _call(endpoint, path, message, declared_length, _END_STREAM, timeout)


def grpc_call_held(endpoint: str, path: str, message: bytes, declared_length: int, timeout: float = 5.0) -> str:
    """As `grpc_call_ending`, but the stream stays open, as a client still sending its message keeps it."""
    return _call(endpoint, path, message, declared_length, 0, timeout)


def _call(endpoint: str, path: str, message: bytes, declared_length: int, flags: int, timeout: float) -> str:
    with _opened(endpoint, timeout) as sock:
        sock.sendall(_frame(_HEADERS, _END_HEADERS, 1, _call_headers(endpoint, path)))
        sock.sendall(_frame(_DATA, flags, 1, b"\x00" + declared_length.to_bytes(4, "big") + message))
        return _outcome(sock, time.monotonic() + timeout)


def _outcome(sock: socket.socket, deadline: float) -> str:
    buffer = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            return "closed"
        buffer += chunk
        while len(buffer) >= 9 and len(buffer) >= 9 + int.from_bytes(buffer[:3], "big"):
            length, kind, flags = int.from_bytes(buffer[:3], "big"), buffer[3], buffer[4]
            stream, payload = int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF, buffer[9:9 + length]
            buffer = buffer[9 + length:]
            if kind == _SETTINGS and not flags & _ACK:
                sock.sendall(_frame(_SETTINGS, _ACK, 0, b""))
            elif kind == _PING and not flags & _ACK:
                sock.sendall(_frame(_PING, _ACK, 0, payload))
            elif kind == _GOAWAY:
                return "goaway"
            elif stream == 1 and kind == _RST_STREAM:
                return "reset"
            elif stream == 1 and kind == _HEADERS and flags & _END_STREAM:
                return "trailers"
    return "timeout"
