"""Request bodies under attack: framing (chunked, Content-Length), strict decompression in every encoding
the Collector accepts, bombs in bounded memory, and open routes that never read a body."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import io
import os
import socket
import subprocess
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import cramjam
import lz4.frame
import psutil
import pytest
import requests
from backports import zstd

from otlp_receiver.receivers.otlp import http_server
from otlp_receiver.receivers.otlp.body import (
    MAX_FRAMES,
    MAX_SNAPPY_CHUNKS,
    SUPPORTED_ENCODINGS,
    BadBody,
    BodyTooLarge,
    decompress,
    read_chunked,
)
from otlp_receiver.receivers.otlp.tests.test_otlp_receiver import PROTOBUF, request_of
from otlp_receiver.service import Service
from testing import wait_until

TESTDATA = Path(__file__).parent / "testdata"
LIMIT = 1 << 20

COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "zlib": zlib.compress,
    "deflate": zlib.compress,
    "zstd": zstd.compress,
    "lz4": lz4.frame.compress,
    "snappy": lambda data: bytes(cramjam.snappy.compress_raw(data)),
    "x-snappy-framed": lambda data: bytes(cramjam.snappy.compress(data)),
}


def test_every_supported_encoding_has_a_compressor_here() -> None:
    assert set(COMPRESS) == set(SUPPORTED_ENCODINGS)


@pytest.mark.parametrize("encoding", sorted(COMPRESS))
def test_each_encoding_round_trips_and_refuses_a_cut_or_padded_stream(encoding: str) -> None:
    data = request_of(*(f"record {i}" for i in range(2000))).SerializeToString()
    compressed = COMPRESS[encoding](data)
    assert decompress(encoding, compressed, LIMIT) == data
    with pytest.raises(BadBody):
        decompress(encoding, compressed[: len(compressed) // 2], LIMIT)
    if encoding != "snappy":  # a raw snappy block has no end marker: its length header is its bound
        with pytest.raises(BadBody):
            decompress(encoding, compressed + b"trailing garbage", LIMIT)


@pytest.mark.parametrize("encoding", sorted(COMPRESS))
def test_each_encoding_stops_a_bomb_at_the_limit(encoding: str) -> None:
    bomb = COMPRESS[encoding](b"\x00" * (64 << 20))
    process = psutil.Process()
    before = process.memory_info().rss
    with pytest.raises(BodyTooLarge):
        decompress(encoding, bomb, LIMIT)
    assert process.memory_info().rss - before < 16 << 20


def test_gzip_reads_every_member_and_refuses_a_missing_crc_or_junk() -> None:
    one, two = gzip.compress(b"first"), gzip.compress(b"second")
    assert decompress("gzip", one + two, LIMIT) == b"firstsecond"  # RFC 1952: a series of members
    with pytest.raises(BadBody, match="truncated"):
        decompress("gzip", one[:-8], LIMIT)  # the CRC32 and ISIZE trailer cut off
    with pytest.raises(BadBody, match="truncated"):
        decompress("gzip", one + two[:-8], LIMIT)  # the second member's
    with pytest.raises(BadBody):
        decompress("gzip", one + b"\x00junk", LIMIT)
    with pytest.raises(BadBody, match="trailing bytes"):
        decompress("zlib", zlib.compress(b"one") + zlib.compress(b"two"), LIMIT)  # one zlib stream only


def test_members_read_across_feeds_cost_what_the_body_does() -> None:
    """Each member's leftover input was copied whole: 1,000 empty members before an 8 MB one cost 1.9 CPU-s."""
    pieces = [os.urandom(997) for _ in range(300)]  # incompressible: members straddle the 64 KiB feeds
    assert decompress("gzip", b"".join(map(gzip.compress, pieces)), LIMIT) == b"".join(pieces)
    big = os.urandom(8 << 20)
    started = time.process_time()
    assert decompress("gzip", gzip.compress(b"") * 1000 + gzip.compress(big, compresslevel=1), 16 << 20) == big
    assert time.process_time() - started < 0.5


def test_zstd_and_lz4_read_every_frame_skippable_ones_included() -> None:
    skippable = (0x184D2A50).to_bytes(4, "little") + (4).to_bytes(4, "little") + b"meta"
    assert decompress("zstd", skippable + zstd.compress(b"a") + zstd.compress(b"b"), LIMIT) == b"ab"
    assert decompress("lz4", lz4.frame.compress(b"a") + lz4.frame.compress(b"b"), LIMIT) == b"ab"
    with pytest.raises(BadBody, match="more than"):
        decompress("zstd", zstd.compress(b"") * (MAX_FRAMES + 1), LIMIT)
    with pytest.raises(BodyTooLarge):  # the limit holds across frames
        decompress("zstd", zstd.compress(b"\x00" * (LIMIT // 2 + 1)) * 2, LIMIT)


def test_snappy_framed_checks_each_chunk_crc() -> None:
    framed = bytearray(COMPRESS["x-snappy-framed"](b"hello world" * 100))
    framed[14] ^= 0xFF  # inside the first chunk's masked CRC-32C
    with pytest.raises(BadBody):
        decompress("x-snappy-framed", bytes(framed), LIMIT)


def test_snappy_framed_chunks_are_bounded_padding_included() -> None:
    """Five million 4-byte padding chunks in a 20 MB body were read one by one: 8.5 CPU-s."""
    padding = b"\xfe\x00\x00\x00"
    framed = COMPRESS["x-snappy-framed"](b"hello")
    assert decompress("x-snappy-framed", framed + padding * (MAX_SNAPPY_CHUNKS - 2), LIMIT) == b"hello"
    with pytest.raises(BadBody, match="more than 65536 chunks"):
        decompress("x-snappy-framed", framed + padding * (5_000_000), LIMIT)


def test_unknown_encoding_is_refused() -> None:
    with pytest.raises(BadBody, match="unsupported Content-Encoding 'br'"):
        decompress("br", b"x", LIMIT)


# -- on a live receiver -------------------------------------------------------------------------------


def test_chunks_of_a_few_bytes_and_blanks_after_a_size_are_refused() -> None:
    """A byte a chunk, a 4.5 MB body took 8 s of the receiver's CPU to frame."""
    with pytest.raises(BadBody, match="chunks averaging under"):
        read_chunked(io.BytesIO(b"1\r\nX\r\n" * 5000 + b"0\r\n\r\n"), 1 << 20)
    kilobyte_chunks = (b"400\r\n" + b"y" * 1024 + b"\r\n") * 5000 + b"0\r\n\r\n"
    assert read_chunked(io.BytesIO(kilobyte_chunks), 8 << 20) == b"y" * 1024 * 5000
    assert read_chunked(io.BytesIO(b"5 ;name=value\r\nhello\r\n0\r\n\r\n"), 100) == b"hello"  # blanks before `;`
    with pytest.raises(BadBody, match="malformed chunk size"):  # blanks with no extension: a strict proxy refuses
        read_chunked(io.BytesIO(b"5 \t\r\nhello\r\n0\r\n\r\n"), 100)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    started = Service.from_config_file(TESTDATA / "basic.yaml", {"DATA_DIR": str(tmp_path / "data")})
    started.start()
    yield started
    started.shutdown(timeout=5)


def raw_request(endpoint: str, head: str, body: bytes = b"", stream_bytes: int = 0) -> bytes:
    """Sends a hand-made request (then `stream_bytes` more of filler) and returns the whole answer."""
    host, port = endpoint.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        filler = b"A" * (1 << 20)
        try:
            for _ in range(stream_bytes // len(filler)):
                sock.sendall(filler)
        except OSError:
            pass  # the server answered and closed: what the test wants
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
        return answer


def test_chunk_size_minus_one_on_an_open_route_reads_nothing(service: Service) -> None:
    process = psutil.Process()
    before = process.memory_info().rss
    head = "GET /healthz HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n-1\r\n"
    answer = raw_request(service.http_endpoint(), head, stream_bytes=256 << 20)
    assert answer.startswith(b"HTTP/1.1 200") and b"Connection: close" in answer
    assert process.memory_info().rss - before < 64 << 20


@pytest.mark.parametrize("size_line", ["-1", "0x10", "1_0", " +5", "fffffffffffffffff"])
def test_malformed_chunk_sizes_are_400(service: Service, size_line: str) -> None:
    head = ("POST /v1/logs HTTP/1.1\nHost: x\nContent-Type: application/x-protobuf\n"
            f"Transfer-Encoding: chunked\n\n{size_line}\r\n")
    answer = raw_request(service.http_endpoint(), head, stream_bytes=8 << 20)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:80]


@pytest.mark.parametrize("length", ["²", "-1", "1e3", "12 34"])
def test_content_length_that_is_not_decimal_digits_is_400(service: Service, length: str) -> None:
    head = f"POST /v1/logs HTTP/1.1\nHost: x\nContent-Type: application/x-protobuf\nContent-Length: {length}\n\n"
    answer = raw_request(service.http_endpoint(), head)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
    assert b"Content-Length" in answer


def test_two_gzip_members_are_both_accepted_not_half_stored(service: Service) -> None:
    """The Collector's Go gzip reader reads every member; the records of both arrive, as protobuf merges them."""
    body = gzip.compress(request_of("member one").SerializeToString()) + gzip.compress(
        request_of("member two").SerializeToString())
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs", data=body,
                             headers={**PROTOBUF, "Content-Encoding": "gzip"}, timeout=10)
    assert response.status_code == 200, response.content
    accepted = service.telemetry.counter("procsight_receiver_accepted_log_records_total", "")
    assert accepted.value(transport="http") == 2


def test_two_content_encoding_lines_are_400_not_the_first_alone(service: Service) -> None:
    """`gzip` then `identity`: read by the first line the body is gzip, by the last it is not."""
    body = gzip.compress(request_of("two encodings").SerializeToString())
    head = (f"POST /v1/logs HTTP/1.1\nHost: x\nContent-Type: application/x-protobuf\nContent-Length: {len(body)}\n"
            "Content-Encoding: gzip\nContent-Encoding: identity\nConnection: close\n")
    answer = raw_request(service.http_endpoint(), head, body)
    assert answer.startswith(b"HTTP/1.1 400") and b"gzip, identity" in answer, answer[:200]
    rejected = service.telemetry.counter("procsight_receiver_rejected_requests_total", "")
    assert rejected.value(transport="http", reason="bad_body") == 1


@pytest.mark.parametrize("encoding", ["zstd", "lz4", "snappy", "x-snappy-framed", "zlib"])
def test_records_in_every_encoding_are_delivered(service: Service, encoding: str) -> None:
    body = COMPRESS[encoding](request_of(f"sent as {encoding}").SerializeToString())
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs", data=body,
                             headers={**PROTOBUF, "Content-Encoding": encoding}, timeout=10)
    assert response.status_code == 200
    pipeline = service.pipelines["logs"]
    wait_until(lambda: pipeline.spool.uncommitted_entries() == 0, what="the record delivered")


def test_a_zstd_bomb_is_413(service: Service) -> None:
    bomb = zstd.compress(b"\x00" * (256 << 20))
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs", data=bomb,
                             headers={**PROTOBUF, "Content-Encoding": "zstd"}, timeout=30)
    assert response.status_code == 413


# -- framing two parties could read differently (request smuggling) ------------------------------------

SMUGGLED = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize(("framing", "status"), [
    (f"Content-Length: 0\nContent-Length: {len(SMUGGLED)}", 400),  # which length ends the body?
    (f"Content-Length: {len(SMUGGLED)}\nTransfer-Encoding: chunked", 400),
    ("Transfer-Encoding: xchunkedx", 501),  # only `chunked` alone is a framing this server reads
    ("Transfer-Encoding: gzip, chunked", 501),
    ("Transfer-Encoding: foo", 501),
    (f"Content-Length : {len(SMUGGLED)}", 400),  # white space before the colon: another header to some
    ("Transfer-Encoding: \x0bchunked", 400),  # VT and FF are no white space of HTTP's (Python strips them)
    (f"Content-Length: \x0c{len(SMUGGLED)}", 400),
    ("Transfer-Encoding:\n chunked", 400),  # a folded line (obs-fold)
    ("X-Note: a\x00b", 400),
])
def test_ambiguous_framing_is_refused_and_the_connection_closed(service: Service, framing: str,
                                                                 status: int) -> None:
    head = f"POST /v1/logs HTTP/1.1\nHost: x\nContent-Type: application/x-protobuf\n{framing}\n\n"
    answer = raw_request(service.http_endpoint(), head, SMUGGLED.encode())
    assert answer.startswith(f"HTTP/1.1 {status}".encode()), answer[:80]
    assert answer.count(b"HTTP/1.") == 1, answer  # the hidden request was never served
    assert b"Connection: close" in answer
    rejected = service.telemetry.counter("procsight_receiver_rejected_requests_total", "")
    assert rejected.value(transport="http", reason="bad_request" if status == 400 else "not_implemented") == 1


@pytest.mark.parametrize(("head", "status"), [
    ("GET /healthz HTTP/1.1\n\n", 400),  # HTTP/1.1 requires a Host (RFC 9112 section 3.2)
    ("GET /healthz HTTP/1.1\nHost: a\nHost: b\n\n", 400),  # which one would a proxy in front route by?
    ("GET /healthz HTTP/1.0\n\n", 200),  # HTTP/1.0 had none
])
def test_an_http_1_1_request_needs_exactly_one_host(service: Service, head: str, status: int) -> None:
    answer = raw_request(service.http_endpoint(), head)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:80]


def test_a_bare_cr_in_a_header_is_400_and_the_next_request_is_not_read_as_a_body(service: Service) -> None:
    """The stdlib parser reads `X-A: a<CR>Transfer-Encoding: chunked` as two headers; a proxy in front, as one."""
    answer = raw_request(service.http_endpoint(), "GET /healthz HTTP/1.1\nHost: x\nX-A: a\rTransfer-Encoding: "
                                                  "chunked\n\n", SMUGGLED.encode())
    assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
    assert b"bare CR" in answer and answer.count(b"HTTP/1.") == 1, answer


def test_a_multipart_content_type_is_415_not_a_framing_error(service: Service) -> None:
    """The stdlib header parser notes a multipart type without its body as a defect: not a framing fault."""
    head = ("POST /v1/logs HTTP/1.1\nHost: x\nContent-Type: multipart/form-data; boundary=abc\n"
            "Content-Length: 5\n\n")
    answer = raw_request(service.http_endpoint(), head, b"hello")
    assert answer.startswith(b"HTTP/1.1 415"), answer[:80]


@pytest.mark.parametrize(("request_line", "status"), [("GARBAGE", 400), ("GET /healthz HTTP/9.9", 505)])
def test_a_malformed_request_line_gets_a_status_line_and_is_counted(service: Service, request_line: str,
                                                                    status: int) -> None:
    answer = raw_request(service.http_endpoint(), f"{request_line}\n")
    assert answer.startswith(f"HTTP/1.1 {status}".encode()), answer[:80]
    rejected = service.telemetry.counter("procsight_receiver_rejected_requests_total", "")
    assert sum(rejected.value(transport="http", reason=r) for r in ("bad_request", "http_version")) == 1


def test_headers_past_one_mebibyte_are_431_whatever_their_count(service: Service) -> None:
    """clickhouse_connect raises http.client's header count limit for the whole process to 10,000."""
    process = psutil.Process()
    before = process.memory_info().rss
    head = "GET /healthz HTTP/1.1\nHost: x\n" + "".join(f"X-Fill-{i}: {'a' * 60_000}\n" for i in range(40)) + "\n"
    answer = raw_request(service.http_endpoint(), head)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:80]
    assert process.memory_info().rss - before < 32 << 20
    rejected = service.telemetry.counter("procsight_receiver_rejected_requests_total", "")
    assert rejected.value(transport="http", reason="headers_too_large") == 1


@pytest.mark.parametrize(("over", "status"), [(-1, b"200"), (1, b"431")])
def test_the_header_bound_is_one_mebibyte_to_the_byte(service: Service, over: int, status: bytes) -> None:
    """The bound was counted at the socket, after the first buffered read: 1.11 MB of headers got a 200."""
    lines = ["GET /healthz HTTP/1.1", "Host: x", *(f"X-Fill-{i}: {'a' * 60_000}" for i in range(17)), "X-Last: "]
    sent = sum(len(line) + 2 for line in lines) + 2  # each line and the blank one end in CRLF
    head = "\n".join([*lines[:-1], lines[-1] + "b" * (http_server.MAX_HEADER_BYTES + over - sent)]) + "\n\n"
    assert len(head.replace("\n", "\r\n")) == http_server.MAX_HEADER_BYTES + over
    assert raw_request(service.http_endpoint(), head).startswith(b"HTTP/1.1 " + status)


def test_the_listen_backlog_holds_a_burst_of_connections(service: Service) -> None:
    """socketserver's default backlog of 5 sent a burst's later SYNs into a one-second retry; `ss` shows a
    listening socket's backlog as its Send-Q."""
    port = service.http_endpoint().rsplit(":", 1)[1]
    listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True)
    assert int(listening.stdout.split()[2]) >= 128, listening.stdout


def test_a_trickled_body_ends_at_a_deadline_even_without_read_timeout(service: Service,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """read_timeout is 0 (confighttp's "none") in basic.yaml; a body sent a byte at a time held a thread for ever."""
    monkeypatch.setattr(http_server, "UNSET_BODY_DEADLINE", 1.0)
    host, port = service.http_endpoint().rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                     b"Content-Length: 100\r\n\r\n")
        started = time.monotonic()
        with contextlib.suppress(OSError):
            while time.monotonic() - started < 8:
                sock.sendall(b"\x0a")
                time.sleep(0.5)
                sock.setblocking(False)
                try:
                    if sock.recv(1) == b"":
                        break  # closed by the server
                except BlockingIOError:
                    pass
                finally:
                    sock.setblocking(True)
        assert time.monotonic() - started < 5


def test_a_chunk_line_past_the_limit_is_refused_not_read_on_as_data(service: Service) -> None:
    """Read in part, the rest of a 64 KiB chunk extension was taken for chunk data: the request it hid was then
    served on the same connection, where a proxy reading the whole line sees one request."""
    hidden = f"\r\n{SMUGGLED}\r\n"
    body = (b"1;" + b"a" * 65535 + b"Z\r\n0\r\n" + f"{len(hidden):x}\r\n{hidden}\r\n0\r\n\r\n".encode())
    head = "POST /v1/logs HTTP/1.1\nHost: x\nContent-Type: application/x-protobuf\nTransfer-Encoding: chunked\n"
    answer = raw_request(service.http_endpoint(), head, body)
    assert answer.startswith(b"HTTP/1.1 400") and answer.count(b"HTTP/1.") == 1, answer[:200]


@pytest.mark.parametrize(("head", "ending"), [
    ("POST /v1/logs HTTP/1.1\nHost: x\nContent-Type: application/x-protobuf\nTransfer-Encoding: chunked\n",
     b" \r\n"),  # chunk data not ended by CRLF alone
    ("POST /v1/logs HTTP/1.0\nContent-Type: application/x-protobuf\nTransfer-Encoding: chunked\n",
     b"\r\n"),  # chunked in HTTP/1.0 (RFC 9112 section 6.1)
    ("POST /v1/logs HTTP/1.10\nHost: x\nContent-Type: application/x-protobuf\nTransfer-Encoding: chunked\n",
     b"\r\n"),
])
def test_framing_outside_http_1_1_grammar_is_400(service: Service, head: str, ending: bytes) -> None:
    payload = request_of("framed oddly").SerializeToString()
    body = f"{len(payload):x}\r\n".encode() + payload + ending + b"0\r\n\r\n"
    answer = raw_request(service.http_endpoint(), head, body)
    assert answer.startswith(b"HTTP/1.") and answer.split(b" ", 2)[1] == b"400", answer[:200]


def test_connections_past_the_cap_are_closed_at_once_when_none_waits_and_served_again_after(
        service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of connections each held a thread; past the cap, with every one inside a request, a new one is
    closed and counted."""
    monkeypatch.setattr(http_server, "MAX_OPEN_CONNECTIONS", 8)
    host, port = service.http_endpoint().rsplit(":", 1)
    busy = [socket.create_connection((host, int(port)), timeout=5) for _ in range(8)]
    try:
        for connection in busy:  # inside their bodies (100 Continue says so): not waiting for a request
            connection.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                               b"Content-Length: 10\r\nExpect: 100-continue\r\n\r\n")
            assert connection.recv(64).startswith(b"HTTP/1.1 100")
        extra = raw_request(service.http_endpoint(), "GET /healthz HTTP/1.1\nHost: x\n")
        assert extra == b"", extra[:80]  # closed without an answer
        rejected = service.telemetry.counter("procsight_receiver_rejected_requests_total", "")
        assert rejected.value(transport="http", reason="too_many_connections") == 1
    finally:
        for connection in busy:
            connection.close()
    wait_until(lambda: raw_request(service.http_endpoint(), "GET /healthz HTTP/1.1\nHost: x\nConnection: close\n")
               .startswith(b"HTTP/1.1 200"), what="a new connection served once the others closed")


def test_past_the_cap_a_new_connection_takes_the_place_of_a_waiting_one_of_the_peer_holding_most(
        service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """One client kept all 2,048 connections with a GET /healthz on each every 20 s, and no one else got in."""
    monkeypatch.setattr(http_server, "MAX_OPEN_CONNECTIONS", 8)
    host, port = service.http_endpoint().rsplit(":", 1)

    def kept_alive(source: str) -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection(host, int(port), timeout=5, source_address=(source, 0))
        connection.request("GET", "/healthz")
        assert connection.getresponse().read()
        return connection

    own = [kept_alive("127.0.0.1") for _ in range(2)]  # the longest waiting, but of the peer holding fewer
    hoarded = [kept_alive("127.0.0.2") for _ in range(6)]
    try:
        newcomer = raw_request(service.http_endpoint(), "GET /healthz HTTP/1.1\nHost: x\nConnection: close\n")
        assert newcomer.startswith(b"HTTP/1.1 200"), newcomer[:80]
        assert [closed_by_server(c) for c in hoarded] == [True, False, False, False, False, False]
        for connection in own:
            connection.request("GET", "/healthz")
            assert connection.getresponse().status == 200
    finally:
        for connection in own + hoarded:
            connection.close()


def closed_by_server(connection: http.client.HTTPConnection) -> bool:
    assert connection.sock is not None
    connection.sock.settimeout(1.0)
    try:
        return connection.sock.recv(1, socket.MSG_PEEK) == b""
    except TimeoutError:
        return False


def test_a_tenants_bodies_on_their_way_in_are_bounded(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """One tenant held 110 bodies of 20 MB a byte short: the memory limiter then refused every tenant."""
    monkeypatch.setattr(http_server, "MAX_TENANT_ARRIVING_BYTES", 1 << 20)
    host, port = service.http_endpoint().rsplit(":", 1)
    url = f"http://{service.http_endpoint()}/v1/logs"
    payload = request_of("small").SerializeToString()
    held = socket.create_connection((host, int(port)), timeout=5)
    try:
        held.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                     b"Content-Length: 900000\r\n\r\n" + b"\x00" * 1000)  # and no more
        wait_until(lambda: requests.post(url, data=b"\x00" * 200_000, headers=PROTOBUF, timeout=5).status_code == 429,
                   what="a second large body refused while the first arrives")
        refused = requests.post(url, data=b"\x00" * 200_000, headers=PROTOBUF, timeout=5)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
        rejected = service.telemetry.counter("procsight_receiver_rejected_requests_total", "")
        assert rejected.value(transport="http", reason="tenant_bodies_arriving") >= 2
        assert requests.post(url, data=payload, headers=PROTOBUF, timeout=5).status_code == 200  # fits beside it
    finally:
        held.close()
    big = request_of("x" * 150_000).SerializeToString()
    wait_until(lambda: requests.post(url, data=big, headers=PROTOBUF, timeout=5).status_code == 200,
               what="a large body taken once the held one is gone")
