"""The binary cache of a ``.tns`` file: ``<file>.mlcache`` beside it, mapped copy-on-write when fresh."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from multilinear.tensor.sparse import SparseTensor

CACHE_FORMAT = 2
CACHE_SUFFIX = ".mlcache"


def cache_path_for(path: str | os.PathLike[str]) -> Path:
    """Where the binary cache of ``path`` lives: ``<path>.mlcache`` beside it."""
    source = Path(path)
    return source.with_name(source.name + CACHE_SUFFIX)


# Layout: 8 magic bytes, a little-endian uint64 header length, a JSON header, then the arrays, each at an
# offset that is a multiple of 64 bytes. The header holds the key (source path, size, mtime_ns), the
# inferred shape, nnz, per-mode maxima and, for every array, its dtype and offset. Loading checks the
# magic, the key and the file size (so a truncated or garbled cache is ignored), does not re-validate the
# data (it was validated when the cache was written) and maps the arrays copy-on-write instead of copying
# them. Indices are kept as int64, the dtype SparseTensor holds: a compact dtype (2-4 bytes) would halve
# the file but force an (nnz, N) widening copy on every load, which measured 0.1-0.2 s for 10^7 nonzeros
# here and capped the speed-up over parsing near 15x; mapped, a load takes milliseconds and the pages
# come from the OS page cache as the data is used.
_CACHE_MAGIC = b"MLTNSC01"
_ALIGN = 64


def _cache_key(source: Path, stat: os.stat_result) -> dict[str, Any]:
    return {
        "format": CACHE_FORMAT,
        "source": str(source.resolve()),
        "size": int(stat.st_size),
        "mtime_ns": int(stat.st_mtime_ns),
    }


def _aligned(offset: int) -> int:
    return -(-offset // _ALIGN) * _ALIGN


def write_cache(
    cache_path: Path,
    source: Path,
    stat: os.stat_result,
    tensor: SparseTensor,
    had_duplicates: bool,
    maxima: np.ndarray,
) -> None:
    """Write the cache atomically (temporary file, then rename); skip silently when that is not possible."""
    arrays = [("values", tensor.values), ("indices", tensor.indices)]
    layout = []
    offset = 0
    for name, array in arrays:
        layout.append({"name": name, "dtype": array.dtype.str, "offset": offset})
        offset = _aligned(offset + array.nbytes)
    meta = {
        **_cache_key(source, stat),
        "shape": [int(m) + 1 for m in maxima],  # inferred, whatever shape the caller gave this time
        "nnz": tensor.nnz,
        "had_duplicates": bool(had_duplicates),
        "maxima": [int(m) for m in maxima],
        "arrays": layout,
        "data_bytes": offset,
    }
    header = json.dumps(meta).encode()
    data_start = _aligned(len(_CACHE_MAGIC) + 8 + len(header))
    try:
        fd, temporary = _create_temporary(cache_path)
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(_CACHE_MAGIC)
            handle.write(np.uint64(len(header)).astype("<u8").tobytes())
            handle.write(header)
            for (_, array), entry in zip(arrays, layout):
                handle.seek(data_start + entry["offset"])
                handle.write(memoryview(np.ascontiguousarray(array)))
            handle.truncate(data_start + offset)
        os.replace(temporary, cache_path)
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass


def _create_temporary(cache_path: Path) -> tuple[int, Path]:
    """A new file beside the cache, with the permissions the umask gives (mkstemp would make it 0600)."""
    temporary = cache_path.with_name(f"{cache_path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temporary


def _map_array(
    cache_path: Path, data_start: int, entry: dict[str, Any], dtype: type, shape: tuple[int, ...]
) -> np.ndarray:
    """A copy-on-write memory map of one cached array, as a plain ndarray (writes stay private)."""
    if np.dtype(entry["dtype"]) != np.dtype(dtype):
        raise ValueError(f"cached {entry['name']} has dtype {entry['dtype']}")
    if shape[0] == 0:
        return np.zeros(shape, dtype=dtype)
    mapped = np.memmap(
        cache_path, dtype=dtype, mode="c", offset=data_start + int(entry["offset"]), shape=shape
    )
    return np.asarray(mapped)


def load_cache(cache_path: Path, source: Path, stat: os.stat_result) -> tuple[SparseTensor, bool] | None:
    """The cached tensor and whether its source had duplicates, or None when missing, stale or corrupt."""
    try:
        with open(cache_path, "rb") as handle:
            if handle.read(len(_CACHE_MAGIC)) != _CACHE_MAGIC:
                return None
            header_length = int(np.frombuffer(handle.read(8), dtype="<u8")[0])
            if header_length > 1 << 20:
                return None
            meta = json.loads(handle.read(header_length))
            total_size = os.fstat(handle.fileno()).st_size
        if any(meta.get(k) != v for k, v in _cache_key(source, stat).items()):
            return None
        data_start = _aligned(len(_CACHE_MAGIC) + 8 + header_length)
        if total_size != data_start + int(meta["data_bytes"]):
            return None
        shape = tuple(int(s) for s in meta["shape"])
        nnz = int(meta["nnz"])
        entries = {entry["name"]: entry for entry in meta["arrays"]}
        values = _map_array(cache_path, data_start, entries["values"], np.float64, (nnz,))
        indices = _map_array(cache_path, data_start, entries["indices"], np.int64, (nnz, len(shape)))
        tensor = SparseTensor._trusted(indices, values, shape)
        tensor._cache["tns_maxima"] = tuple(int(m) for m in meta["maxima"])
        return tensor, bool(meta["had_duplicates"])
    except (OSError, ValueError, KeyError, TypeError, IndexError, json.JSONDecodeError, UnicodeDecodeError):
        return None
