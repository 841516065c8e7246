"""Opening an application file, plain or gzip-compressed, told apart by its first two bytes.

POETS corpora (and this project's big benchmark instance) are distributed as ``.xml.gz``: every
reader of an application file opens it here, so that a compressed file is read as it is, in a
stream (a 10 M-device file is never inflated whole into memory), with the same line numbers (of
the decompressed XML) in error messages.  Compression is recognised by the gzip magic bytes
``1f 8b``, not by the name: a worker keeps the text a client sent under the name the user gave
(``app.xml.gz`` holding plain XML), and a ``.gz`` renamed ``.xml`` is still read.  A damaged
compressed file is ONE :class:`GraphError` naming the file and what is wrong with it.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import zlib
from functools import lru_cache
from typing import IO, cast

from pstack_tasks.exceptions import GraphError

__all__ = ["APP_SUFFIXES", "GZIP_MAGIC", "CheckedGzip", "app_name", "is_app_file", "is_gzip", "open_app",
           "read_text", "size_hint", "xml_bytes", "file_digest"]

GZIP_MAGIC = b"\x1f\x8b"
#: the names of application files: plain or gzip-compressed XML
APP_SUFFIXES = (".xml", ".xml.gz")
#: what an XML file may start with: a byte-order mark (UTF-8, UTF-16) or, after spaces, ``<``
_XML_STARTS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"<")


def is_app_file(name: str | os.PathLike[str]) -> bool:
    """Whether a file's name is an application file's (``X.xml`` or ``X.xml.gz``)."""
    return os.fspath(name).endswith(APP_SUFFIXES)


def app_name(path: str | os.PathLike[str]) -> str:
    """An application file's name without its suffix: ``ring`` for ``ring.xml`` and ``ring.xml.gz``
    (what files derived from it are named after: checker files, snapshots, checkpoints)."""
    name = os.path.basename(os.fspath(path))
    for suffix in APP_SUFFIXES[::-1]:
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return os.path.splitext(name)[0]


def is_gzip(path: str | os.PathLike[str]) -> bool:
    """Whether the file is gzip-compressed (its first bytes are the gzip magic)."""
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def file_digest(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes as they are on disk (a gzip file hashed compressed: a tenth
    of the bytes to read), hashed once per process while its size and mtime stay the same: psim's
    warm start and the parsed-instance cache both key on it, and a big file takes ~0.2 s to hash."""
    st = os.stat(path)
    return _digest(os.path.abspath(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=16)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest() if hasattr(hashlib, "file_digest") else _read_digest(f)


def _read_digest(f: IO[bytes]) -> str:
    """Python < 3.11's way to :func:`hashlib.file_digest`."""
    h = hashlib.sha256()
    while chunk := f.read(1 << 20):
        h.update(chunk)
    return h.hexdigest()


def size_hint(path: str | os.PathLike[str]) -> int:
    """The size of the XML in the file: its size, or for a gzip file the size its trailer gives
    (ISIZE, modulo 4 GiB: so never less than the compressed size)."""
    size = os.path.getsize(path)
    if size < 18 or not is_gzip(path):
        return size
    with open(path, "rb") as f:
        f.seek(-4, os.SEEK_END)
        return max(size, int.from_bytes(f.read(4), "little"))


def open_app(path: str, name: str | None = None) -> IO[bytes]:
    """The file's XML as a binary stream (decompressed as it is read, when it is gzip).

    Raises:
        OSError: the file cannot be opened or read (the caller says so in its own words).
        GraphError: it is named ``.gz`` and is neither gzip nor XML.  A damaged gzip stream
            raises it later, from ``read``, naming what is wrong.
    """
    name = name or path
    raw = open(path, "rb")
    try:
        head = raw.read(64)
        raw.seek(0)
    except OSError:
        raw.close()
        raise
    if head.startswith(GZIP_MAGIC):
        return cast(IO[bytes], CheckedGzip(raw, name))  # typeshed's GzipFile is a BufferedIOBase, not an IO
    if path.endswith(".gz") and head and not head.lstrip().startswith(_XML_STARTS):
        raw.close()
        raise GraphError(f"not a gzip file (it starts with {head[:2].hex(' ')}, not 1f 8b) and not XML", name)
    return raw


def xml_bytes(data: bytes, name: str = "<xml>") -> bytes:
    """XML given as bytes, decompressed when they are gzip (``run(Path("app.xml.gz").read_bytes())``)."""
    if not data.startswith(GZIP_MAGIC):
        return data
    with CheckedGzip(io.BytesIO(data), name) as f:
        return f.read()


def read_text(path: str | os.PathLike[str]) -> str:
    """The whole XML text of an application file (decompressed): what a client stores for a
    process, and what pcli's ``read()`` returns.

    Raises:
        OSError: the file cannot be read.
        GraphError: a damaged gzip file, or bytes that are not UTF-8.
    """
    name = os.fspath(path)
    with io.TextIOWrapper(open_app(name), encoding="utf-8") as f:  # newlines read as Path.read_text reads them
        try:
            return f.read()
        except UnicodeDecodeError as e:
            raise GraphError(f"not UTF-8 text ({e.reason})", name) from None


class CheckedGzip(gzip.GzipFile):
    """A gzip stream whose every way of being damaged is a one-line :class:`GraphError`."""

    def __init__(self, raw: IO[bytes], name: str) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self._raw, self.app_name = raw, name

    def read(self, size: int | None = -1) -> bytes:
        try:
            return super().read(size)
        except (OSError, EOFError, zlib.error) as e:
            raise GraphError(f"not a valid gzip file ({damage(e)})", self.app_name) from None

    def verify(self) -> None:
        """Read to the end: a damaged stream raises here (the XML reader may have stopped first
        on the garbage a damaged stream decompressed into: the damage is the error to report)."""
        while self.read(1 << 20):
            pass

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()  # GzipFile leaves a fileobj it was given open


def damage(e: BaseException) -> str:
    """What is wrong with a gzip stream, from the exception :mod:`gzip` or :mod:`zlib` raised."""
    text = str(e)
    if isinstance(e, EOFError):
        return "truncated: it ends before the end of the compressed data"
    if text.startswith("CRC check failed"):
        return "CRC check failed"
    if text.startswith("Incorrect length"):
        return "length check failed"
    if isinstance(e, zlib.error):
        return "corrupt compressed data: " + text.rpartition(": ")[2]
    if text.startswith("Not a gzipped file"):
        return "data after the compressed stream is not gzip"
    if isinstance(e, OSError) and e.strerror:
        return f"cannot read it: {e.strerror}"
    return text or type(e).__name__
