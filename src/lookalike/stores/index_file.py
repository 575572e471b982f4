"""The saved copy of a vector index beside the database: one file, written atomically.

Layout: ``MAGIC``, the header's length (little-endian u64), the header (JSON: format, kind, dim, the change-log
position it reflects, ...), the slots' image ids (i8), their live flags (u8), then faiss's own serialisation of
the index. A file that does not hold all of it is refused (``ValueError``) and the index is rebuilt.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from lookalike.stores.faiss_lazy import faiss
import numpy as np

MAGIC = b"LKVI\x01"
FORMAT_VERSION = 1


def write(path: str | os.PathLike[str], header: dict[str, object], ids: np.ndarray, live: np.ndarray,
          index: faiss.Index) -> None:
    """Write atomically: a temporary file, fsync, rename over ``path``, fsync the folder. A crash leaves the old
    file or the new one, never half of one."""
    path = Path(path)
    _remove_stale_temporaries(path)
    head = json.dumps({"format": FORMAT_VERSION, **header, "slots": len(ids)}).encode()
    blob = faiss.serialize_index(index)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(MAGIC + struct.pack("<Q", len(head)) + head)
            fh.write(ids.astype("<i8").tobytes())
            fh.write(live.astype(np.uint8).tobytes())
            fh.write(memoryview(blob))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def read_header(path: str | os.PathLike[str]) -> dict[str, object]:
    with open(path, "rb") as fh:
        head = fh.read(len(MAGIC) + 8)
        if not head.startswith(MAGIC) or len(head) < len(MAGIC) + 8:
            raise ValueError("not a lookalike vector index")
        (hlen,) = struct.unpack_from("<Q", head, len(MAGIC))
        return json.loads(fh.read(hlen))


def read(path: str | os.PathLike[str]) -> tuple[dict[str, object], np.ndarray, np.ndarray, faiss.Index]:
    """(header, ids, live, faiss index) of a saved index; ``ValueError`` for a file that is not a whole one."""
    with open(path, "rb") as fh:
        data = fh.read()
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 8:
        raise ValueError("not a lookalike vector index")
    (hlen,) = struct.unpack_from("<Q", data, len(MAGIC))
    off = len(MAGIC) + 8
    header = json.loads(data[off:off + hlen])
    if header.get("format") != FORMAT_VERSION:
        raise ValueError(f"vector index format {header.get('format')} is not {FORMAT_VERSION}")
    off += hlen
    n = int(header["slots"])
    ids = np.frombuffer(data, dtype="<i8", count=n, offset=off).astype(np.int64)
    off += 8 * n
    live = np.frombuffer(data, dtype=np.uint8, count=n, offset=off).astype(bool)
    off += n
    index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8, offset=off))
    if index.ntotal != n or index.d != int(header["dim"]):
        raise ValueError("vector index is inconsistent (slot count or dimension)")
    return header, ids, live, index


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary files of saves that were killed (kill -9 leaves them): removed when their process is gone."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            pid = int(tmp.name.rsplit(".", 2)[-2])
            os.kill(pid, 0)  # still running: its save is in progress
        except (ValueError, ProcessLookupError):
            tmp.unlink(missing_ok=True)
        except PermissionError:
            pass


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["MAGIC", "FORMAT_VERSION", "write", "read", "read_header"]
