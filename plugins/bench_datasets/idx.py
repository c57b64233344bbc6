"""A strict reader of the IDX format (MNIST's on-disk format), plain or gzipped.

Strict because a silently truncated or mis-sized file would otherwise turn into
a reshape error, or worse a wrong dataset, far from its cause. The data is read
in one block into a single buffer: no per-sample Python work.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import Protocol

import torch

__all__ = ["IDXError", "read_idx"]

#: IDX element type codes; only unsigned bytes are supported (all of MNIST).
_TYPE_NAMES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "short (int16)",
    0x0C: "int (int32)",
    0x0D: "float (float32)",
    0x0E: "double (float64)",
}
_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


class _Stream(Protocol):
    """What the reader needs of a file: a plain one (``open(..., "rb")``) or a ``gzip.GzipFile``."""

    def read(self, n: int = -1, /) -> bytes | None: ...

    def readinto(self, buffer: memoryview, /) -> int | None: ...


class IDXError(ValueError):
    """An IDX file that cannot be read as what it claims to be."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def read_idx(path: Path | str) -> torch.Tensor:
    """The contents of an IDX file of unsigned bytes as a uint8 tensor of its shape.

    A name ending in ``.gz`` is read as gzip. Raises ``IDXError`` (a
    ``ValueError``) naming the file for a wrong magic number, an unsupported
    element type, data shorter or longer than the header's dimensions, or a
    truncated/corrupt gzip stream; ``FileNotFoundError`` if it does not exist.
    """
    path = Path(path)
    compressed = path.name.endswith(".gz")
    with open(path, "rb") as raw:
        if not compressed:
            return _read(raw, path, compressed=False)
        if raw.read(2) != _GZIP_MAGIC:
            raise IDXError(path, "named .gz but is not a gzip file (no gzip magic bytes 1f 8b)")
        raw.seek(0)
        with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            try:
                return _read(stream, path, compressed=True)
            except EOFError as exc:
                raise IDXError(path, f"truncated gzip stream ({exc})") from exc
            except (gzip.BadGzipFile, zlib.error) as exc:
                raise IDXError(path, f"corrupt gzip stream ({exc})") from exc


def _read_exact(stream: _Stream, n: int) -> bytes:
    data = stream.read(n)
    return data if data is not None else b""


def _read(stream: _Stream, path: Path, *, compressed: bool) -> torch.Tensor:
    head = _read_exact(stream, 4)
    if len(head) < 4:
        raise IDXError(path, f"file too short for an IDX header ({len(head)} bytes, need at least 4)")
    if head[0] != 0 or head[1] != 0:
        hint = ""
        if not compressed and head[:2] == _GZIP_MAGIC:
            hint = " (it looks gzip-compressed: give it a .gz suffix)"
        raise IDXError(path, f"wrong magic number 0x{head.hex()}: an IDX file starts with two "
                             f"zero bytes, a type code and the number of dimensions{hint}")
    code, ndim = head[2], head[3]
    if code != _UBYTE:
        what = _TYPE_NAMES.get(code, "unknown")
        raise IDXError(path, f"unsupported IDX type code 0x{code:02x} ({what}); only 0x08 "
                             f"(unsigned byte) is supported")
    if ndim == 0:
        raise IDXError(path, "IDX header declares 0 dimensions")
    dims_raw = _read_exact(stream, 4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise IDXError(path, f"truncated header: {ndim} dimensions declared but only "
                             f"{len(dims_raw)} of {4 * ndim} dimension bytes present")
    shape = struct.unpack(f">{ndim}I", dims_raw)
    expected = math.prod(shape)

    buffer = bytearray(expected)
    got = 0
    view = memoryview(buffer)
    while got < expected:  # GzipFile.readinto may return short counts
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    view.release()
    if got < expected:
        raise IDXError(path, f"truncated data: dimensions {list(shape)} need {expected} bytes, "
                             f"file has {got}")
    extra = 0
    while chunk := _read_exact(stream, _CHUNK):
        extra += len(chunk)
    if extra:
        raise IDXError(path, f"overlong data: dimensions {list(shape)} need {expected} bytes, "
                             f"file has {expected + extra} ({extra} trailing)")
    if expected == 0:
        return torch.zeros(shape, dtype=torch.uint8)
    return torch.frombuffer(buffer, dtype=torch.uint8).reshape(shape)
