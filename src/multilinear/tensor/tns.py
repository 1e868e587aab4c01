"""FROSTT ``.tns`` files: fast parallel reading with a binary cache, and round-trip-exact writing.

Format: one nonzero a line, ``N`` 1-based indices and then the value, separated by spaces or tabs; lines
whose first non-blank character is ``#`` and blank lines are skipped, as is a ``#`` comment after the value.
Indices and values may carry an explicit ``+`` sign. Files ending in ``.gz`` (or starting
with the gzip magic bytes) are decompressed transparently.

Reading parses the raw bytes with a numba kernel (:mod:`multilinear.kernels.tns_parse`) in parallel chunks;
values are converted exactly (the same double as Python's ``float``). A successful read writes a cache
``<file>.mlcache`` beside the file (raw int64 indices and float64 values), keyed by the file's absolute
path, size and modification time; the next read of an unchanged file maps it copy-on-write, without
parsing, copying or re-validating.
"""

from __future__ import annotations

import contextlib
import gzip
import mmap
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from multilinear._core.threads import default_threads
from multilinear._core.validation import check_choice
from multilinear.tensor import tns_cache
from multilinear.tensor.sparse import SparseTensor, _linear_keys, _merge_duplicates

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK_MIN_BYTES = 1 << 20
_PARALLEL_MIN_BYTES = 1 << 23  # smaller files are parsed by one thread: waking others costs more
_PARALLEL_MIN_ROWS = 1 << 20
_FALLBACK_CAPACITY = 64
_WRITE_BLOCK_ROWS = 1 << 18


# ---------------------------------------------------------------------------------------------- reading
def read_tns(
    path: str | os.PathLike[str],
    *,
    shape: Any = None,
    cache: bool = True,
    duplicates: str = "sum",
) -> SparseTensor:
    """Read a FROSTT ``.tns`` file (plain or gzip) into a :class:`SparseTensor`.

    Parameters
    ----------
    path : str or path-like
        The file. Gzip is detected from the ``.gz`` suffix or the magic bytes.
    shape : sequence of int, optional
        Size of each mode. Indices larger than it are an error. Inferred from the largest index of each
        mode when not given.
    cache : bool
        Use and write the binary cache ``<path>.mlcache`` (ignored when stale or corrupt; not written when the
        directory is read-only).
    duplicates : {"sum", "error"}
        Coordinates appearing on several lines: add their values, or raise.

    Returns
    -------
    SparseTensor
        ``indices`` (nnz, N) int64 0-based, ``values`` (nnz,) float64.

    Raises
    ------
    ValueError
        Malformed input, with the file name, the 1-based line number and the problem: wrong number of
        fields, an index that is not an integer or is below 1 or above ``shape``, a value that is not a
        finite number.
    FileNotFoundError
        When ``path`` does not exist.
    """
    check_choice(duplicates, "duplicates", ("sum", "error"))
    source = Path(path)
    stat = source.stat()
    limits = None if shape is None else _check_shape(shape)
    cache_path = tns_cache.cache_path_for(source)
    if cache:
        cached = tns_cache.load_cache(cache_path, source, stat)
        if cached is not None:
            tensor, had_duplicates = cached
            usable = not (duplicates == "error" and had_duplicates)
            if usable and limits is not None:
                usable = len(limits) == tensor.ndim and all(
                    hi < size for hi, size in zip(tensor._cache["tns_maxima"], limits)
                )
                if usable:
                    tensor = SparseTensor._trusted(tensor.indices, tensor.values, limits)
            if usable:
                return tensor
    tensor, had_duplicates, maxima = _parse_file(source, limits, duplicates)
    if cache and tensor.nnz:
        tns_cache.write_cache(cache_path, source, stat, tensor, had_duplicates, maxima)
    return tensor


def _check_shape(shape: Any) -> tuple[int, ...]:
    dims = tuple(np.atleast_1d(np.asarray(shape)).tolist())
    if not dims or not all(isinstance(s, int) and s >= 1 for s in dims):
        raise ValueError(f"shape must be a sequence of positive integers, got {shape!r}")
    return dims


def _read_bytes(source: Path) -> bytes | mmap.mmap:
    """The text of ``source``: memory-mapped when plain (no copy), decompressed when gzip."""
    with open(source, "rb") as handle:
        magic = handle.read(2)
        if not (source.name.endswith(".gz") or magic == _GZIP_MAGIC):
            if os.fstat(handle.fileno()).st_size == 0:
                return b""
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        handle.seek(0)
        compressed = handle.read()
    try:
        return gzip.decompress(compressed)
    except (OSError, EOFError) as exc:
        raise ValueError(f"{source}: not a valid gzip file ({exc})") from None


@contextlib.contextmanager
def _dynamic_schedule() -> Iterator[None]:
    """numba hands out prange iterations one at a time inside the block (instead of equal static shares)."""
    import numba

    previous = numba.set_parallel_chunksize(1)
    try:
        yield
    finally:
        numba.set_parallel_chunksize(previous)


def _first_data_line(data: bytes | mmap.mmap) -> tuple[int, int, bytes] | None:
    """(1-based line number, byte offset, text) of the first line that is neither blank nor a comment."""
    pos = 0
    line = 1
    size = len(data)
    while pos < size:
        end = data.find(b"\n", pos)
        if end < 0:
            end = size
        text = data[pos:end]
        stripped = text.strip()
        if stripped and not stripped.startswith(b"#"):
            return line, pos, text
        pos = end + 1
        line += 1
    return None


def _chunk_bounds(data: bytes | mmap.mmap) -> tuple[np.ndarray, np.ndarray]:
    """Split ``data`` into byte ranges that end just after a line break (the last one at the end).

    Many more chunks than threads, handed out one at a time: a thread the (shared) machine delays does not
    hold up the others for long.
    """
    size = len(data)
    nchunks = max(1, min(16 * default_threads(), size // _CHUNK_MIN_BYTES))
    starts = [0]
    for k in range(1, nchunks):
        cut = data.find(b"\n", k * size // nchunks)
        if cut < 0:
            break
        if cut + 1 > starts[-1] and cut + 1 < size:
            starts.append(cut + 1)
    stops = [*starts[1:], size]
    return np.asarray(starts, dtype=np.int64), np.asarray(stops, dtype=np.int64)


def _parse_file(
    source: Path, limits: tuple[int, ...] | None, duplicates: str
) -> tuple[SparseTensor, bool, np.ndarray]:
    from multilinear.kernels import tns_float, tns_parse

    data = _read_bytes(source)
    first = _first_data_line(data)
    if first is None:
        if limits is None:
            raise ValueError(
                f"{source}: no data lines (only comments or blank lines); pass shape= to read it"
            )
        empty = SparseTensor._trusted(
            np.zeros((0, len(limits)), dtype=np.int64), np.zeros(0, dtype=np.float64), limits
        )
        return empty, False, np.full(len(limits), -1, dtype=np.int64)
    line_number, _, text = first
    nfields = len(text.split(b"#", 1)[0].split())  # a trailing comment is not a field
    if nfields < 2:
        raise ValueError(
            f"{source}, line {line_number}: expected at least 2 fields (indices then a value), "
            f"found {nfields}: {_show(text)}"
        )
    nmodes = nfields - 1
    if limits is not None and len(limits) != nmodes:
        raise ValueError(
            f"{source}, line {line_number}: {nmodes} indices per line but shape {limits} has "
            f"{len(limits)} modes"
        )
    limit_array = np.zeros(nmodes, dtype=np.int64) if limits is None else np.asarray(limits, np.int64)

    buffer = np.frombuffer(data, dtype=np.uint8)
    parallel = len(data) >= _PARALLEL_MIN_BYTES
    if parallel:
        starts, stops = _chunk_bounds(data)
    else:
        starts, stops = np.array([0], dtype=np.int64), np.array([len(data)], dtype=np.int64)
    nchunks = starts.shape[0]
    newlines = np.empty(nchunks, dtype=np.int64)
    if parallel:
        with _dynamic_schedule():
            tns_parse.count_newlines(buffer, starts, stops, newlines)
    else:
        newlines[0] = tns_parse.count_newlines_range(buffer, 0, len(data))
    reserved = newlines.copy()
    if len(data) and data[-1:] != b"\n":
        reserved[-1] += 1
    first_rows = np.concatenate(([0], np.cumsum(reserved)[:-1])).astype(np.int64)
    total = int(reserved.sum())
    first_lines = np.concatenate(([0], np.cumsum(newlines)[:-1])).astype(np.int64)

    indices = np.empty((total, nmodes), dtype=np.int64)
    values = np.empty(total, dtype=np.float64)
    maxima = np.empty((nchunks, nmodes), dtype=np.int64)
    fallback_rows = np.empty((nchunks, _FALLBACK_CAPACITY), dtype=np.int64)
    fallback_lines = np.empty((nchunks, _FALLBACK_CAPACITY), dtype=np.int64)
    fallback_spans = np.empty((nchunks, _FALLBACK_CAPACITY, 2), dtype=np.int64)
    status = np.zeros((nchunks, tns_parse.STATUS_WIDTH), dtype=np.int64)
    tables = (*tns_float.power_of_five_table(), tns_float.exact_powers_of_ten())
    if parallel:
        with _dynamic_schedule():
            tns_parse.parse_chunks(
                buffer, starts, stops, first_rows, nmodes, limit_array, *tables,
                indices, values, maxima, fallback_rows, fallback_lines, fallback_spans, status,
            )  # fmt: skip
    else:
        tns_parse.parse_range(
            buffer, 0, len(data), nmodes, limit_array, *tables, indices, values, 0, maxima[0],
            fallback_rows[0], fallback_lines[0], fallback_spans[0], status[0],
        )  # fmt: skip

    # The first problem in file order wins: a parse error, or a value only Python could convert (found
    # below) that turns out not to be finite.
    failed = np.flatnonzero(status[:, tns_parse.ST_ERROR])
    last_chunk = int(failed[0]) if failed.size else nchunks - 1
    error_line = int(first_lines[last_chunk] + status[last_chunk, tns_parse.ST_ERROR_LINE] + 1)
    for c in range(last_chunk + 1):
        count = int(status[c, tns_parse.ST_FALLBACKS])
        if count == 0:
            continue
        rows, lines, spans = fallback_rows[c], fallback_lines[c], fallback_spans[c]
        if count > _FALLBACK_CAPACITY:  # parse the chunk again, recording every fallback token
            rows = np.empty(count, dtype=np.int64)
            lines = np.empty(count, dtype=np.int64)
            spans = np.empty((count, 2), dtype=np.int64)
            tns_parse.parse_range(
                buffer, int(starts[c]), int(stops[c]), nmodes, limit_array, *tables,
                indices, values, int(first_rows[c]), maxima[c], rows, lines, spans, status[c],
            )  # fmt: skip
        for k in range(count):
            token = data[int(spans[k, 0]) : int(spans[k, 1])]
            number = float(token)
            line = int(first_lines[c] + lines[k] + 1)
            if not np.isfinite(number):
                if failed.size and error_line < line:
                    break
                raise ValueError(f"{source}, line {line}: value {_show(token)} is not finite")
            values[int(rows[k])] = number
    if failed.size:
        c = int(failed[0])
        raise ValueError(
            _explain_error(
                source,
                data,
                int(status[c, tns_parse.ST_ERROR]),
                error_line,
                int(status[c, tns_parse.ST_ERROR_FIELD]),
                int(status[c, tns_parse.ST_ERROR_OFFSET]),
                nmodes,
                limits,
            )
        )

    rows_written = status[:, tns_parse.ST_ROWS].copy()
    nnz = int(rows_written.sum())
    if not np.array_equal(rows_written, reserved):
        tns_parse.compact_rows(indices, values, first_rows, rows_written)
        indices, values = indices[:nnz], values[:nnz]
        if nnz < 0.875 * total:
            indices, values = indices.copy(), values.copy()
    column_max = maxima.max(axis=0)
    dims = limits if limits is not None else tuple(int(m) + 1 for m in column_max)
    indices, values, had_duplicates = _handle_duplicates(source, indices, values, dims, duplicates)
    return SparseTensor._trusted(indices, values, dims), had_duplicates, column_max


def _handle_duplicates(
    source: Path, indices: np.ndarray, values: np.ndarray, dims: tuple[int, ...], duplicates: str
) -> tuple[np.ndarray, np.ndarray, bool]:
    from multilinear.kernels import tns_parse

    if indices.shape[0] < 2:
        return indices, values, False
    rows = indices.shape[0]
    if rows >= _PARALLEL_MIN_ROWS:
        with _dynamic_schedule():
            ordered = tns_parse.rows_strictly_increasing(indices, 16 * default_threads())
    else:
        ordered = tns_parse.rows_increasing_range(indices, 0, rows)
    if ordered:
        return indices, values, False  # sorted, hence no duplicates: the common case for .tns files
    keys = _linear_keys(indices, dims)
    if keys is not None:
        sorted_keys = np.sort(keys)
        repeated = sorted_keys[1:] == sorted_keys[:-1]
        if not repeated.any():
            return indices, values, False
        if duplicates == "error":
            key = sorted_keys[int(np.argmax(repeated))]
            first_row, second_row = np.flatnonzero(keys == key)[:2]
            coordinate = " ".join(str(int(i) + 1) for i in indices[first_row])
            raise ValueError(
                f"{source}: coordinate ({coordinate}) (1-based, as in the file) appears more than once, "
                f"in data lines {first_row + 1} and {second_row + 1} (comment and blank lines not "
                "counted); pass duplicates='sum' to add them"
            )
    try:
        merged_indices, merged_values = _merge_duplicates(indices, values, dims, duplicates)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    return merged_indices, merged_values, merged_indices.shape[0] != indices.shape[0]


def _show(text: bytes, limit: int = 120) -> str:
    shown = text.decode("utf-8", errors="replace").rstrip("\r\n")
    if len(shown) > limit:
        shown = shown[:limit] + "..."
    return repr(shown)


def _explain_error(
    source: Path,
    data: bytes | mmap.mmap,
    code: int,
    line: int,
    field: int,
    offset: int,
    nmodes: int,
    limits: tuple[int, ...] | None,
) -> str:
    from multilinear.kernels import tns_parse

    end = data.find(b"\n", offset)
    text = data[offset : end if end >= 0 else len(data)]
    fields = text.split()
    token = fields[field - 1] if 0 < field <= len(fields) else b""
    where = f"{source}, line {line}"
    if code == tns_parse.ERR_FIELD_COUNT:
        return (
            f"{where}: expected {nmodes + 1} fields ({nmodes} indices and a value, as on the first data "
            f"line), found {len(fields)}: {_show(text)}"
        )
    if code == tns_parse.ERR_INDEX_NOT_INTEGER:
        return f"{where}: index {field} is not a positive integer: {_show(token)} in {_show(text)}"
    if code == tns_parse.ERR_INDEX_BELOW_ONE:
        return f"{where}: index {field} is {_show(token)}; indices are 1-based and must be >= 1"
    if code == tns_parse.ERR_INDEX_TOO_LARGE:
        return f"{where}: index {field} is {_show(token)}, too large (at most 10**17)"
    if code == tns_parse.ERR_INDEX_OUT_OF_SHAPE:
        assert limits is not None  # the kernel only reports this when limits were given
        return (
            f"{where}: index {field} is {_show(token)}, larger than the size {limits[field - 1]} of mode "
            f"{field - 1} in shape {limits}"
        )
    if code == tns_parse.ERR_VALUE:
        try:
            number = float(token)
        except ValueError:
            return f"{where}: value {_show(token)} is not a number"
        if not np.isfinite(number):
            return f"{where}: value {_show(token)} is not finite"
        return f"{where}: value {_show(token)} is not a plain decimal number"
    return f"{where}: cannot parse {_show(text)} (error code {code})"  # pragma: no cover


# ---------------------------------------------------------------------------------------------- writing
def write_tns(tensor: SparseTensor, path: str | os.PathLike[str]) -> None:
    """Write ``tensor`` as a FROSTT ``.tns`` file; gzip-compressed when the name ends in ``.gz``.

    Indices are written 1-based; values so that reading them back gives the same doubles (integers as
    integers, others as the shortest of their 15-17 significant-digit decimals that round-trips). Gzip
    output has a zero timestamp, so writing the same tensor twice gives identical bytes.

    Parameters
    ----------
    tensor : SparseTensor
    path : str or path-like
    """
    from multilinear.kernels import tns_float, tns_format

    if not isinstance(tensor, SparseTensor):
        raise TypeError(f"write_tns expects a SparseTensor, got {type(tensor).__name__}")
    target = Path(path)
    indices, values = tensor.indices, tensor.values
    nnz, nmodes = indices.shape
    tables = (*tns_float.power_of_five_table(), tns_float.exact_powers_of_ten())
    nparts = max(1, 4 * default_threads())
    block_rows = _WRITE_BLOCK_ROWS
    part_capacity = (block_rows // nparts + 1) * tns_format.bytes_per_row(nmodes)
    out = np.empty(nparts * part_capacity, dtype=np.uint8)
    part_lengths = np.empty(nparts, dtype=np.int64)
    failed_rows = np.empty(nparts, dtype=np.int64)
    if target.name.endswith(".gz"):  # mtime=0: the same tensor gives the same bytes
        handle_context: Any = gzip.GzipFile(target, "wb", compresslevel=6, mtime=0)
    else:
        handle_context = open(target, "wb")
    with handle_context as handle:
        for start in range(0, nnz, block_rows):
            stop = min(nnz, start + block_rows)
            repr_rows, repr_offsets, repr_bytes = _repr_table(values, start, start, tables)
            while True:
                tns_format.format_rows(
                    indices, values, start, stop, nparts, *tables, repr_rows, repr_offsets, repr_bytes,
                    out, part_capacity, part_lengths, failed_rows,
                )  # fmt: skip
                if (failed_rows < 0).all():
                    break
                repr_rows, repr_offsets, repr_bytes = _repr_table(values, start, stop, tables)
            for part in range(nparts):
                begin = part * part_capacity
                handle.write(memoryview(out[begin : begin + int(part_lengths[part])]))


def _repr_table(
    values: np.ndarray, start: int, stop: int, tables: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Python ``repr`` strings of the values in ``start:stop`` that the kernel cannot write itself."""
    from multilinear.kernels import tns_format

    mask = np.zeros(stop - start, dtype=np.bool_)
    if stop > start:
        tns_format.unwritable_values(values, start, stop, *tables, mask)
    rows = np.flatnonzero(mask).astype(np.int64) + start
    texts = [repr(float(values[r])).encode() for r in rows]
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    if texts:
        offsets[1:] = np.cumsum([len(t) for t in texts])
    joined = np.frombuffer(b"".join(texts) or b"\0", dtype=np.uint8)
    return rows, offsets, joined
