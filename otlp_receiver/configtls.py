"""TLS settings with the Collector's `configtls` keys, for servers (the `otlp` receiver) and clients (exporters).

    tls: {cert_file: server.crt, key_file: server.key, client_ca_file: ca.crt, min_version: "1.2"}

Every key of the Collector's `configtls.ServerConfig` and `ClientConfig` is accepted with its meaning. Two
TLS stacks serve them: Python's `ssl` (the HTTP server and client), which honours them all but
`curve_preferences`, and grpcio's (the gRPC server and client), which chooses TLS versions and cipher
suites itself (TLS 1.2 and 1.3, its own suites) and cannot skip verifying a server. A setting a stack
cannot honour fails start-up naming the key (`check_grpc`). Files are re-read when they change: the
certificate and key (and CAs) at most every `reload_interval`, the client CA at most once a second with
`client_ca_file_reload`, as the Collector does.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from core.confmap import ConfigError, Duration
from otlp_receiver.reloading import Reloading

T = TypeVar("T")

TLS_VERSIONS = {"1.0": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1, "1.2": ssl.TLSVersion.TLSv1_2,
                "1.3": ssl.TLSVersion.TLSv1_3}
DEFAULT_MIN_VERSION = "1.2"
_CLIENT_CA_RELOAD_SECONDS = 1.0

# Go's cipher suite names (crypto/tls) as OpenSSL spells them. TLS 1.3 suites cannot be chosen, in Go or here,
# so their names are accepted and change nothing.
SECURE_CIPHER_SUITES = {
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
}
INSECURE_CIPHER_SUITES = {  # Go's tls.InsecureCipherSuites(); RC4 and 3DES are gone from OpenSSL 3
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_RSA_WITH_RC4_128_SHA": "",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA": "",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA": "",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA": "",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": "",
}
CURVES = ("X25519", "P256", "P384", "P521", "X25519MLKEM768")


@dataclass
class TPMConfig:
    enabled: bool = False
    path: str = ""
    owner_auth: str = ""
    auth: str = ""

    def validate(self) -> None:
        if self.enabled:
            raise ConfigError("enabled", "procsight cannot read TLS keys from a TPM; give key_file or key_pem")


@dataclass
class TLSConfig:
    """The keys servers and clients share (the Collector's `configtls.Config`)."""

    ca_file: str = ""
    ca_pem: str = ""
    cert_file: str = ""
    cert_pem: str = ""
    key_file: str = ""
    key_pem: str = ""
    include_system_ca_certs_pool: bool = False
    min_version: str = ""  # "" means 1.2
    max_version: str = ""  # "" means the newest (1.3)
    cipher_suites: list[str] = field(default_factory=list)  # Go's names; TLS 1.2 only, as in Go
    include_insecure_cipher_suites: bool = False
    curve_preferences: list[str] = field(default_factory=list)
    reload_interval: Duration = Duration(0)  # 0: files are read once
    tpm: TPMConfig = field(default_factory=TPMConfig)

    def validate(self) -> None:
        for name in ("ca", "cert", "key"):
            if getattr(self, f"{name}_file") and getattr(self, f"{name}_pem"):
                raise ConfigError(f"{name}_pem", f"give {name}_file or {name}_pem, not both")
        if self.has_cert != self.has_key:
            raise ConfigError("", "a certificate and its key go together: give both (cert_file or cert_pem, "
                                  "key_file or key_pem) or neither")
        for key in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, key)
            if path and not Path(path).is_file():
                raise ConfigError(key, f"no such file: {path}")
        for key in ("min_version", "max_version"):
            version = getattr(self, key)
            if version and version not in TLS_VERSIONS:
                raise ConfigError(key, f"expected one of {', '.join(TLS_VERSIONS)}, got {version!r}")
        if self.max_version and TLS_VERSIONS[self.max_version] < TLS_VERSIONS[self.min_version or DEFAULT_MIN_VERSION]:
            raise ConfigError("min_version", "cannot be greater than max_version")
        self.openssl_ciphers()
        if self.curve_preferences:
            unknown = [c for c in self.curve_preferences if c not in CURVES]
            reason = (f"unknown curves {unknown} (expected {', '.join(CURVES)})" if unknown else
                      "Python's ssl module cannot order key-exchange curves; remove it to use OpenSSL's order")
            raise ConfigError("curve_preferences", reason)

    @property
    def has_cert(self) -> bool:
        return bool(self.cert_file or self.cert_pem)

    @property
    def has_key(self) -> bool:
        return bool(self.key_file or self.key_pem)

    @property
    def has_ca(self) -> bool:
        return bool(self.ca_file or self.ca_pem)

    def openssl_ciphers(self) -> str:
        """The TLS 1.2 cipher suites as an OpenSSL cipher string ("" for OpenSSL's defaults)."""
        names = []
        for suite in self.cipher_suites:
            if suite in SECURE_CIPHER_SUITES:
                names.append(SECURE_CIPHER_SUITES[suite])
            elif suite in INSECURE_CIPHER_SUITES and self.include_insecure_cipher_suites:
                if not INSECURE_CIPHER_SUITES[suite]:
                    raise ConfigError("cipher_suites", f"{suite} is not available in OpenSSL 3")
                names.append(INSECURE_CIPHER_SUITES[suite])
            elif suite in INSECURE_CIPHER_SUITES:
                raise ConfigError("cipher_suites", f"{suite} is insecure; set include_insecure_cipher_suites: true "
                                                   "to allow it")
            else:
                raise ConfigError("cipher_suites", f"invalid TLS cipher suite {suite!r} (use Go's names, e.g. "
                                                   "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)")
        return ":".join(name for name in names if name)

    def check_grpc(self) -> None:
        """Raises ConfigError for the settings grpcio's TLS cannot honour."""
        if (self.min_version or DEFAULT_MIN_VERSION) != DEFAULT_MIN_VERSION or self.max_version not in ("", "1.3"):
            raise ConfigError("min_version" if self.min_version not in ("", DEFAULT_MIN_VERSION) else "max_version",
                              "grpcio always offers TLS 1.2 and 1.3 and cannot be told otherwise; over gRPC use "
                              "min_version 1.2 (or leave it out) and no max_version")
        if self.cipher_suites:
            raise ConfigError("cipher_suites", "grpcio chooses its own cipher suites; remove it for gRPC")

    def read(self, name: str) -> bytes | None:
        """`ca`, `cert` or `key` as PEM bytes, from its file or its inline PEM; None when not given."""
        path, pem = getattr(self, f"{name}_file"), getattr(self, f"{name}_pem")
        if path:
            return Path(path).read_bytes()
        return pem.encode() if pem else None

    def files(self) -> list[str]:
        return [path for path in (self.ca_file, self.cert_file, self.key_file) if path]


@dataclass
class TLSServerConfig(TLSConfig):
    """`tls` of a server: its certificate and key, and `client_ca_file` to require client certificates (mTLS).
    `ca_file`/`ca_pem` have no effect on a server, as in the Collector."""

    client_ca_file: str = ""
    client_ca_file_reload: bool = False

    def validate(self) -> None:
        super().validate()
        if not (self.has_cert and self.has_key):
            raise ConfigError("", "a TLS server needs its certificate and key: set cert_file and key_file "
                                  "(or cert_pem and key_pem)")
        if self.client_ca_file and not Path(self.client_ca_file).is_file():
            raise ConfigError("client_ca_file", f"no such file: {self.client_ca_file}")

    def client_ca(self) -> bytes | None:
        """The CAs client certificates must chain to (with the system's when asked), or None without mTLS."""
        if not self.client_ca_file:
            return None
        pem = Path(self.client_ca_file).read_bytes()
        return system_ca_bundle() + pem if self.include_system_ca_certs_pool else pem

    def ssl_context(self) -> ssl.SSLContext:
        """A server context for Python's ssl (HTTP/1.1 over TLS)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        _apply_common(self, context)
        _load_cert_chain(context, self.read("cert"), self.read("key"))
        client_ca = self.client_ca()
        if client_ca is not None:
            context.load_verify_locations(cadata=client_ca.decode("ascii", "replace"))
            context.verify_mode = ssl.CERT_REQUIRED
        context.set_alpn_protocols(["http/1.1"])
        return context


@dataclass
class TLSClientConfig(TLSConfig):
    """`tls` of a client (exporters). Over gRPC `insecure: true` means plain text (unless a CA is given or the
    endpoint is https://); over HTTP the URL's scheme decides and `insecure` changes nothing, as upstream."""

    insecure: bool = False
    insecure_skip_verify: bool = False  # TLS without checking the server's certificate (HTTP only)
    server_name_override: str = ""  # the name the server's certificate must carry (and SNI)

    def check_grpc(self) -> None:
        super().check_grpc()
        if self.insecure_skip_verify:
            raise ConfigError("insecure_skip_verify", "grpcio always verifies the server's certificate; give the "
                                                      "server's CA (or certificate) in ca_file instead")

    def ca_bundle(self) -> bytes | None:
        """The CAs that verify the server, with the system's when asked; None for the system's alone."""
        ca = self.read("ca")
        if ca is None:
            return None
        return system_ca_bundle() + ca if self.include_system_ca_certs_pool else ca

    def ssl_context(self) -> ssl.SSLContext:
        """A client context for Python's ssl (HTTPS)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _apply_common(self, context)
        ca = self.ca_bundle()
        if ca is None:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        else:
            context.load_verify_locations(cadata=ca.decode("ascii", "replace"))
        if self.insecure_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.has_cert:
            _load_cert_chain(context, self.read("cert"), self.read("key"))
        return context


def _apply_common(config: TLSConfig, context: ssl.SSLContext) -> None:
    context.minimum_version = TLS_VERSIONS[config.min_version or DEFAULT_MIN_VERSION]
    if config.max_version:
        context.maximum_version = TLS_VERSIONS[config.max_version]
    ciphers = config.openssl_ciphers()
    if ciphers:
        context.set_ciphers(ciphers)


def _load_cert_chain(context: ssl.SSLContext, cert: bytes | None, key: bytes | None) -> None:
    """ssl loads a certificate and key from files only; inline PEMs pass through a private temporary file."""
    with tempfile.TemporaryDirectory(prefix="procsight-tls-") as directory:
        cert_path, key_path = Path(directory, "cert.pem"), Path(directory, "key.pem")
        for path, pem in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem or b"")
        context.load_cert_chain(str(cert_path), str(key_path))


def system_ca_bundle() -> bytes:
    """The system's CA certificates as PEM (for include_system_ca_certs_pool)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_bytes() + b"\n"
    return b""


def reloading(config: TLSConfig, build: Callable[[], T]) -> Reloading[T]:
    """`build` re-run when the TLS files change: all of them every `reload_interval`, and with
    `client_ca_file_reload` at least once a second."""
    files = config.files()
    interval = float(config.reload_interval)
    if isinstance(config, TLSServerConfig) and config.client_ca_file:
        files.append(config.client_ca_file)
        if config.client_ca_file_reload:
            interval = min(interval, _CLIENT_CA_RELOAD_SECONDS) if interval else _CLIENT_CA_RELOAD_SECONDS
    return Reloading(build, files, interval)
