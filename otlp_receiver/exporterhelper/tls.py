"""Client TLS settings shared by the OTLP exporters (the Collector's `configtls` client keys)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from core.confmap import ConfigError


@dataclass
class TLSClientConfig:
    insecure: bool = False  # gRPC only: plaintext instead of TLS
    insecure_skip_verify: bool = False  # TLS without checking the server certificate
    ca_file: str = ""
    cert_file: str = ""  # client certificate, for mutual TLS
    key_file: str = ""

    def validate(self) -> None:
        for key in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, key)
            if path and not Path(path).is_file():
                raise ConfigError(key, f"no such file {path!r}")
        if bool(self.cert_file) != bool(self.key_file):
            raise ConfigError("", "cert_file and key_file go together")

    def read(self, key: str) -> bytes | None:
        path = getattr(self, key)
        return Path(path).read_bytes() if path else None

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file or None)
        if self.insecure_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context
