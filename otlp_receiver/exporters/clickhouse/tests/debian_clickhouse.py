"""Debian's ClickHouse server (18.16, `apt-get install clickhouse-server`) on loopback, for the native-protocol
tests: the real server the driver talks to here. It predates Map columns, so it shows the start-up checks
against a real server; chdb_native_bridge.py covers the inserts."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from testing import free_port, wait_until

SERVER = Path("/usr/sbin/clickhouse-server")
USERS = {"default": "", "alice": "s3cret"}

_CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{data}/</path>
  <tmp_path>{data}/tmp/</tmp_path>
  <user_files_path>{data}/user_files/</user_files_path>
  <format_schema_path>{data}/format_schemas/</format_schema_path>
  <users_config>{users}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>5368709</mark_cache_size>
</yandex>
"""
_USER = ("<{name}><password>{password}</password><networks><ip>127.0.0.1</ip></networks>"
         "<profile>default</profile><quota>default</quota></{name}>")


@contextmanager
def debian_clickhouse(directory: Path) -> Iterator[int]:
    """Runs the server until the block ends; yields its native (TCP) port."""
    users = directory / "users.xml"
    users.write_text("<?xml version=\"1.0\"?><yandex><profiles><default/></profiles><quotas><default/></quotas><users>"
                     + "".join(_USER.format(name=name, password=password) for name, password in USERS.items())
                     + "</users></yandex>")
    tcp_port = free_port()
    config = directory / "config.xml"
    config.write_text(_CONFIG.format(http_port=free_port(), tcp_port=tcp_port, data=directory / "data", users=users))
    server = subprocess.Popen([str(SERVER), f"--config-file={config}"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: _listening(tcp_port) or server.poll() is not None, 30, "clickhouse-server to listen")
        if server.poll() is not None:
            raise RuntimeError(f"clickhouse-server exited: {server.communicate()[0][-2000:]}")
        yield tcp_port
    finally:
        server.terminate()
        try:
            server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
