"""The Collector's `configcompression`: the compression types an exporter may name, their `compression_params`,
and compressing a body with each, through maintained libraries (zlib from the standard library, zstd through
`backports.zstd`, the standard library's `compression.zstd` for Python < 3.14, lz4 frames through `lz4`,
snappy block and framed formats through `cramjam`).

    compress("zstd", body, level=0)   # level 0 is the type's default, as in the Collector
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from core.confmap import ConfigError

# Every type the Collector accepts; "" and "none" send the body as it is.
TYPES = ("gzip", "zlib", "deflate", "snappy", "x-snappy-framed", "zstd", "lz4", "none", "")
_HUFFMAN_ONLY = -2


def validate(compression: str, level: int, key: str = "compression") -> None:
    """Raises ConfigError for an unknown type, or a level the type does not take (as ValidateParams does)."""
    if compression not in TYPES:
        raise ConfigError(key, f"unsupported compression type {compression!r} (expected one of "
                               f"{', '.join(t for t in TYPES if t)})")
    if compression in ("gzip", "zlib", "deflate"):
        if not -2 <= level <= 9:
            raise ConfigError("compression_params.level", f"{compression} takes -2 (Huffman only), -1 (default), "
                                                          f"0 (default) or 1 to 9, got {level}")
    elif compression != "zstd" and level != 0:
        raise ConfigError("compression_params.level", f"{compression} takes no level, got {level}")


def compress(compression: str, data: bytes, level: int = 0) -> bytes:
    """`data` compressed as `compression` (a validated type other than none) at `level`."""
    return _COMPRESSORS[compression](data, level)


def _deflate(wbits: int) -> Callable[[bytes, int], bytes]:
    def run(data: bytes, level: int) -> bytes:
        strategy = zlib.Z_HUFFMAN_ONLY if level == _HUFFMAN_ONLY else zlib.Z_DEFAULT_STRATEGY
        compressor = zlib.compressobj(-1 if level in (0, _HUFFMAN_ONLY) else level, zlib.DEFLATED, wbits,
                                      strategy=strategy)
        return compressor.compress(data) + compressor.flush()

    return run


def _zstd(data: bytes, level: int) -> bytes:
    from backports import zstd  # the standard library's compression.zstd from Python 3.14

    # The Collector's zstd library has four speeds and maps any level to the nearest; these are their levels.
    effective = level or -1
    speed = 1 if effective < 3 else 3 if effective < 6 else 7 if effective < 10 else 11
    return zstd.compress(data, level=speed)


def _lz4(data: bytes, _level: int) -> bytes:
    import lz4.frame

    return lz4.frame.compress(data)


def _snappy(framed: bool) -> Callable[[bytes, int], bytes]:
    def run(data: bytes, _level: int) -> bytes:
        import cramjam

        return bytes(cramjam.snappy.compress(data) if framed else cramjam.snappy.compress_raw(data))

    return run


_COMPRESSORS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _deflate(31), "zlib": _deflate(15), "deflate": _deflate(15),  # HTTP's deflate is zlib-wrapped
    "zstd": _zstd, "lz4": _lz4, "snappy": _snappy(False), "x-snappy-framed": _snappy(True),
}
