"""HTTP request bodies: framing (Content-Length, chunked) and decompression, always within a byte limit.

Every reader here stops at `limit` bytes of the decoded body, whatever the client claims, so a
hostile request costs at most `limit` bytes of memory: a chunk size of `-1` or `0x...`, a
Content-Length of `²`, a decompression bomb or a body that never ends are refused, not read.

Decompression is strict: the stream must end exactly where the body ends. A missing trailer (gzip's
CRC, a cut zstd frame) or trailing bytes are a 400, never a silently shorter request. Formats whose
specification makes a body a series of members or frames (gzip's RFC 1952, zstd's RFC 8878, the LZ4 frame
format) are read to the last one (up to MAX_FRAMES), as the Collector's Go readers do. The encodings are
those the Collector's HTTP server accepts by default (`compression_algorithms`: gzip, zstd, zlib, deflate,
snappy, x-snappy-framed, lz4).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from email.errors import MissingHeaderBodySeparatorDefect
from email.message import Message
from typing import BinaryIO, Protocol

import cramjam
import lz4.frame
from backports import zstd

# What the Collector's confighttp accepts when `compression_algorithms` is not set; `x-gzip` is the
# old name of gzip some clients still send, `identity` the explicit "not compressed".
SUPPORTED_ENCODINGS = ("gzip", "x-gzip", "zstd", "zlib", "deflate", "snappy", "x-snappy-framed", "lz4")
# Framing costs per chunk: a 4.5 MB body sent a byte a chunk took 8 s of the receiver's CPU. Clients send
# kilobytes a chunk; past this many chunks, their average must be at least this large.
_MANY_CHUNKS = 1024
_MIN_AVERAGE_CHUNK = 64
_HEX_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")  # int(x, 16) alone would take "-1", "0x10" and "1_0"
_DECIMAL = re.compile(r"[0-9]{1,19}")  # str.isdigit alone would take "²"
_LINE_LIMIT = 65537
_OWS = " \t"  # the only white space around a header value (RFC 9110 section 5.6.3); not VT, FF or NUL
# Control characters other than HTAB in a header value: obs-fold (a line break), NUL, VT, FF. The stdlib
# parser keeps them, and a proxy in front may read `Transfer-Encoding: \x0bchunked` another way.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
MAX_FRAMES = 1024  # gzip members or zstd/lz4 frames in one body: each costs a decompressor
_FEED = 1 << 16  # compressed bytes given a decompressor at a time


class BodyTooLarge(Exception):
    """The body (or what it decompresses to) is larger than the limit: 413."""


class BadBody(Exception):
    """The body is malformed (framing or compression): 400."""


class UnsupportedTransfer(BadBody):
    """A Transfer-Encoding other than `chunked` alone: 501, as RFC 9112 section 6.1 asks."""


class _Decompressor(Protocol):
    eof: bool
    unused_data: bytes

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


def check_framing(headers: Message, version: str = "HTTP/1.1") -> None:
    """Refuses what two parties could frame differently (request smuggling, RFC 9112 sections 3.2, 5 and 6):
    a header name with white space in it or around it (`Content-Length : 5`), Content-Lengths that differ,
    Content-Length together with Transfer-Encoding, any Transfer-Encoding but `chunked` alone, and an
    HTTP/1.1 request without exactly one Host (proxies route by it, and two may pick different ones)."""
    # The stdlib parser stops at a line that is no header (`Content-Length : 5`) and keeps the rest as a
    # defect: the headers after it, a Content-Length among them, would be lost and the body read as a request.
    if any(isinstance(defect, MissingHeaderBodySeparatorDefect) for defect in headers.defects) or any(
            not name or " " in name or "\t" in name for name in headers):
        raise BadBody("a malformed header line (white space in or after a header name?)")
    if controlled := next((name for name, value in headers.items() if _CONTROL.search(value)), None):
        raise BadBody(f"a control character or a folded line in header {controlled[:40]!r}")
    if version == "HTTP/1.1" and len(headers.get_all("Host") or ()) != 1:
        raise BadBody("an HTTP/1.1 request needs exactly one Host header")
    lengths = {value.strip(_OWS) for value in headers.get_all("Content-Length") or ()}
    if len(lengths) > 1:
        raise BadBody("Content-Length given more than once with different values")
    encodings = headers.get_all("Transfer-Encoding") or []
    if encodings and lengths:
        raise BadBody("both Content-Length and Transfer-Encoding: the body's end is ambiguous")
    if encodings and version != "HTTP/1.1":  # RFC 9112 section 6.1: an HTTP/1.0 message's framing is faulty
        raise BadBody("Transfer-Encoding in an HTTP/1.0 request: send Content-Length")
    if encodings and (len(encodings) > 1 or encodings[0].strip(_OWS).lower() != "chunked"):
        raise UnsupportedTransfer(f"unsupported Transfer-Encoding {', '.join(encodings)[:60]!r}; only chunked")


def _chunked(headers: Message) -> bool:
    return (headers.get("Transfer-Encoding") or "").strip(_OWS).lower() == "chunked"


def has_body(headers: Message) -> bool:
    """Whether the request announces a body (which the connection must read or be closed after)."""
    if _chunked(headers):
        return True
    length = headers.get("Content-Length")
    return length is not None and length.strip(_OWS) not in ("", "0")


def read_body(rfile: BinaryIO, headers: Message, limit: int) -> bytes:
    """The raw (still compressed) request body, at most `limit` bytes (framing checked by `check_framing`)."""
    if _chunked(headers):
        return read_chunked(rfile, limit)
    length = content_length(headers.get("Content-Length"))
    if length > limit:
        raise BodyTooLarge(f"Content-Length {length} is over the limit of {limit} bytes")
    data = rfile.read(length)
    if len(data) != length:
        raise BadBody(f"the body ended after {len(data)} of {length} bytes")
    return data


def content_length(header: str | None) -> int:
    if header is None:
        return 0
    header = header.strip(_OWS)
    if not _DECIMAL.fullmatch(header):
        raise BadBody(f"invalid Content-Length {header[:40]!r}: expected decimal digits")
    return int(header)


def read_chunked(rfile: BinaryIO, limit: int) -> bytes:
    """A `Transfer-Encoding: chunked` body, refusing before reading once the sizes pass `limit`."""
    parts: list[bytes] = []
    total = 0
    while True:
        line = _line(rfile)
        # Blanks may stand only around a chunk extension's `;` (RFC 9112 7.1.1): `5 \t` would be framed
        # differently by a strict proxy in front.
        size_field = line.split(b";")[0].rstrip(b" \t") if b";" in line else line
        if not _HEX_SIZE.fullmatch(size_field):
            raise BadBody(f"malformed chunk size {size_field[:40]!r}: expected hexadecimal digits")
        size = int(size_field, 16)
        if size == 0:
            _skip_trailers(rfile)
            return b"".join(parts)
        total += size
        if total > limit:
            raise BodyTooLarge(f"chunked body over the limit of {limit} bytes")
        chunk = rfile.read(size)
        if len(chunk) != size or rfile.readline(3) not in (b"\r\n", b"\n"):
            raise BadBody("chunked body cut short or a chunk not followed by CRLF")
        parts.append(chunk)
        if len(parts) > _MANY_CHUNKS and total < len(parts) * _MIN_AVERAGE_CHUNK:
            raise BadBody(f"chunks averaging under {_MIN_AVERAGE_CHUNK} bytes: send the body in larger chunks")


def _skip_trailers(rfile: BinaryIO) -> None:
    for _ in range(100):
        if not _line(rfile):
            return
    raise BadBody("more than 100 trailer lines")


def _line(rfile: BinaryIO) -> bytes:
    """One chunk-size or trailer line without its line ending. A line longer than the limit is refused, not
    read on as data: what follows its first part would be taken for chunk data here and for the next request
    by a proxy that reads the whole line."""
    line = rfile.readline(_LINE_LIMIT)
    if not line.endswith(b"\n"):
        raise BadBody(f"a chunk-size or trailer line longer than {_LINE_LIMIT - 2} bytes, or cut short")
    return line.rstrip(b"\r\n")


def check_encoding(encoding: str) -> None:
    """Refuses an unsupported Content-Encoding (lower case) before the body is read."""
    if encoding not in ("", "identity") and encoding not in _DECODERS:
        raise BadBody(f"unsupported Content-Encoding {encoding!r}; use one of {', '.join(SUPPORTED_ENCODINGS)}")


def decompress(encoding: str, data: bytes, limit: int) -> bytes:
    """`data` decoded from `encoding` (a Content-Encoding value, lower case), at most `limit` bytes."""
    check_encoding(encoding)
    decoder = _DECODERS.get(encoding)
    if decoder is None:
        return data
    try:
        return decoder(data, limit)
    except (BodyTooLarge, BadBody):
        raise
    except Exception as exc:  # each library has its own error type; all mean a corrupt body
        raise BadBody(f"body is not valid {encoding}: {exc}") from exc


def _stream(new: Callable[[], _Decompressor], name: str, frames: bool = False) -> Callable[[bytes, int], bytes]:
    """A decoder for a format with a streaming decompressor that takes `max_length` (zlib, zstd, lz4);
    `frames`: the body may be several members or frames, one after another, read to the last."""

    def decode(data: bytes, limit: int) -> bytes:
        output = bytearray()
        view = memoryview(data)
        decompressor, members, position, carried = new(), 1, 0, b""
        while carried or position < len(view):
            # Fed a slice at a time: the bytes after a member's end (`unused_data`) are then at most one slice,
            # where fed whole, each of 1,024 members copied the rest of a 20 MB body (seconds of CPU).
            chunk = carried or view[position:position + _FEED]
            if not carried:
                position += len(chunk)
            output += decompressor.decompress(chunk, limit + 1 - len(output))
            if len(output) > limit:  # a decompression bomb stops here, having produced limit + 1 bytes
                raise BodyTooLarge(f"{name} body decompresses to more than {limit} bytes")
            carried = decompressor.unused_data if decompressor.eof else b""
            if decompressor.eof and (carried or position < len(view)):
                if not frames:
                    raise BadBody(f"{name} body has trailing bytes after the end of the stream; send one stream")
                members += 1
                if members > MAX_FRAMES:
                    raise BadBody(f"{name} body has more than {MAX_FRAMES} members or frames")
                decompressor = new()
        if not decompressor.eof:
            raise BadBody(f"{name} body is truncated (the stream has no end{' or CRC' if name == 'gzip' else ''})")
        return bytes(output)

    return decode


_SNAPPY_STREAM_ID = b"\xff\x06\x00\x00sNaPpY"
_SNAPPY_CHUNK_MAX = 65536  # the framing format's bound on a chunk's uncompressed size
# Chunks in one x-snappy-framed body. A 20 MB body of 4-byte padding chunks is 5 million of them, 8.5 CPU-s read
# one by one; a writer frames up to 64 KiB per chunk, so a 20 MiB limit takes 320.
MAX_SNAPPY_CHUNKS = 65_536


def _snappy(data: bytes, limit: int) -> bytes:
    """Snappy as the Collector reads it: framed when the stream identifier starts it, else a raw block."""
    if data.startswith(_SNAPPY_STREAM_ID):
        return _snappy_framed(data, limit)
    size = _uvarint(data)
    if size > limit:
        raise BodyTooLarge(f"snappy body decompresses to {size} bytes, over the limit of {limit}")
    return bytes(cramjam.snappy.decompress_raw(data))


def _snappy_framed(data: bytes, limit: int) -> bytes:
    """The framing format chunk by chunk (each at most 64 KiB decoded, CRC checked by cramjam)."""
    parts: list[bytes] = []
    total = 0
    position = chunks = 0
    while position < len(data):
        chunks += 1
        if chunks > MAX_SNAPPY_CHUNKS:
            raise BadBody(f"x-snappy-framed body has more than {MAX_SNAPPY_CHUNKS} chunks; frame up to 64 KiB in each")
        if position + 4 > len(data):
            raise BadBody("x-snappy-framed body ends inside a chunk header")
        kind = data[position]
        length = int.from_bytes(data[position + 1:position + 4], "little")
        end = position + 4 + length
        if end > len(data):
            raise BadBody("x-snappy-framed body ends inside a chunk")
        chunk = data[position:end]
        position = end
        if kind == 0xFF:
            if chunk != _SNAPPY_STREAM_ID:
                raise BadBody("x-snappy-framed stream identifier is malformed")
            continue
        if kind in (0x00, 0x01):
            if kind == 0x00 and _uvarint(chunk[8:]) > _SNAPPY_CHUNK_MAX:
                raise BadBody("x-snappy-framed chunk larger than 64 KiB")
            part = bytes(cramjam.snappy.decompress(_SNAPPY_STREAM_ID + chunk))
            total += len(part)
            if total > limit:
                raise BodyTooLarge(f"x-snappy-framed body decompresses to more than {limit} bytes")
            parts.append(part)
        elif kind < 0x80:
            raise BadBody(f"x-snappy-framed chunk type {kind:#x} is reserved and unskippable")
    return b"".join(parts)


def _uvarint(data: bytes) -> int:
    """The little-endian base-128 length a snappy block starts with."""
    value = 0
    for index, byte in enumerate(data[:10]):
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value
    raise BadBody("snappy block has no valid length header")


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _stream(lambda: zlib.decompressobj(wbits=31), "gzip", frames=True),
    "x-gzip": _stream(lambda: zlib.decompressobj(wbits=31), "gzip", frames=True),
    # The Collector reads both `zlib` and `deflate` with the zlib reader (RFC 1950, as HTTP's deflate means).
    "zlib": _stream(lambda: zlib.decompressobj(wbits=15), "zlib"),
    "deflate": _stream(lambda: zlib.decompressobj(wbits=15), "deflate"),
    "zstd": _stream(zstd.ZstdDecompressor, "zstd", frames=True),
    "lz4": _stream(lz4.frame.LZ4FrameDecompressor, "lz4", frames=True),
    "snappy": _snappy,
    "x-snappy-framed": _snappy,
}
assert set(_DECODERS) == set(SUPPORTED_ENCODINGS)
