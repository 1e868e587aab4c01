"""FROSTT ``.tns`` text parser over raw bytes.

A file is split (by the caller) into chunks that end at line breaks; chunks are parsed in parallel, each
into its own slice of the outputs. A chunk can hold at most ``newlines + 1`` data lines, so the caller
counts line breaks first (:func:`count_newlines`), reserves that many rows per chunk, parses
(:func:`parse_chunks`) and compacts the rows (:func:`compact_rows`) when comment or blank lines left gaps.

Grammar of a data line: optional whitespace, ``N`` indices (ASCII digits, 1-based, an optional ``+``),
one value (optional sign, digits with an optional decimal point, optional exponent), whitespace between
fields, optional trailing whitespace (``\\r`` included, so CRLF files parse) and an optional trailing
``#`` comment. Lines whose first non-blank byte is ``#`` and
blank lines are skipped. Nothing here raises: problems come back as an error code, the 0-based line number
inside the chunk, the 1-based field and the byte offset of the line, for the front end to explain.

Values the exact decimal conversion cannot decide (more than 19 significant digits, ties, subnormals,
overflow) are recorded as "fallback" tokens (row, line, byte span) for Python's ``float``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from multilinear.kernels.tns_float import decimal_to_double

OK = 0
ERR_FIELD_COUNT = 1
ERR_INDEX_NOT_INTEGER = 2
ERR_INDEX_BELOW_ONE = 3
ERR_INDEX_TOO_LARGE = 4
ERR_INDEX_OUT_OF_SHAPE = 5
ERR_VALUE = 6

# status columns, one row per chunk
ST_ROWS = 0
ST_LINES = 1
ST_FALLBACKS = 2
ST_ERROR = 3
ST_ERROR_LINE = 4
ST_ERROR_FIELD = 5
ST_ERROR_OFFSET = 6
STATUS_WIDTH = 7

_MAX_INDEX = 10**17  # indices above this are refused (row-major keys must fit in int64 anyway)

_NEWLINE = 10
_HASH = 35
_DOT = 46
_PLUS = 43
_MINUS = 45


@njit(cache=True, inline="always")
def _is_blank(byte):
    # space, \t, \v, \f, \r (not \n, which ends a line)
    return byte == 32 or (byte >= 9 and byte <= 13 and byte != 10)


@njit(cache=True, inline="always")
def _is_digit(byte):
    return byte >= 48 and byte <= 57


_ASCII_ZEROS = np.uint64(0x3030303030303030)
_HIGH_NIBBLES = np.uint64(0xF0F0F0F0F0F0F0F0)
_ADD_SIX = np.uint64(0x0606060606060606)
_LOW_BYTES = np.uint64(0x000000FF000000FF)
_MUL_HUNDRED = np.uint64(100 + (1000000 << 32))
_MUL_ONE = np.uint64(1 + (10000 << 32))


@njit(cache=True, inline="always")
def _eight_digits(buffer, p):
    """(True, value) when buffer[p:p+8] are 8 ASCII digits, parsed at once (SWAR); else (False, 0)."""
    chunk = np.uint64(0)
    for k in range(8):
        chunk |= np.uint64(buffer[p + k]) << np.uint64(8 * k)
    if (chunk & _HIGH_NIBBLES) != _ASCII_ZEROS or ((chunk + _ADD_SIX) & _HIGH_NIBBLES) != _ASCII_ZEROS:
        return False, np.uint64(0)
    value = chunk - _ASCII_ZEROS
    value = value * np.uint64(10) + (value >> np.uint64(8))
    value = (
        (value & _LOW_BYTES) * _MUL_HUNDRED + ((value >> np.uint64(16)) & _LOW_BYTES) * _MUL_ONE
    ) >> np.uint64(32)
    return True, value


@njit(cache=True)
def count_newlines_range(buffer, start, stop):
    """Number of ``\\n`` bytes in ``buffer[start:stop]``."""
    total = 0
    for p in range(start, stop):
        if buffer[p] == _NEWLINE:
            total += 1
    return total


@njit(cache=True, parallel=True)
def count_newlines(buffer, starts, stops, counts):
    """counts[c] = number of ``\\n`` bytes in ``buffer[starts[c]:stops[c]]``, chunks in parallel."""
    for c in prange(starts.shape[0]):
        counts[c] = count_newlines_range(buffer, starts[c], stops[c])


@njit(cache=True)
def parse_range(
    buffer,
    start,
    stop,
    nmodes,
    limits,
    pow5_high,
    pow5_low,
    pow5_exp,
    pow10,
    indices,
    values,
    first_row,
    maxima,
    fallback_rows,
    fallback_lines,
    fallback_spans,
    status,
):
    """Parse the lines of ``buffer[start:stop]`` into rows ``first_row, first_row + 1, ...``.

    Parameters
    ----------
    buffer : ndarray of uint8
    start, stop : int
        Byte range; ``start`` is at a line start.
    nmodes : int
        Indices per line.
    limits : ndarray of int64, shape (nmodes,)
        Largest allowed 1-based index per mode, or 0 for no limit.
    pow5_high, pow5_low, pow5_exp, pow10 : tables of :mod:`multilinear.kernels.tns_float`
    indices : ndarray of int64, shape (rows, nmodes)
        Output, 0-based.
    values : ndarray of float64, shape (rows,)
        Output; NaN where a fallback token must be converted by the caller.
    first_row : int
    maxima : ndarray of int64, shape (nmodes,)
        Output: largest 0-based index seen per mode (-1 if none).
    fallback_rows, fallback_lines : ndarray of int64, shape (capacity,)
    fallback_spans : ndarray of int64, shape (capacity, 2)
        Output: the first ``capacity`` fallback tokens (row, 0-based line in the range, byte span).
    status : ndarray of int64, shape (STATUS_WIDTH,)
        Output: rows written, lines seen, fallback count, error code, error line, error field, error offset.
    """
    for m in range(nmodes):
        maxima[m] = -1
    for k in range(STATUS_WIDTH):
        status[k] = 0
    capacity = fallback_rows.shape[0]
    fallbacks = 0
    row = first_row
    line = 0
    pos = start
    while pos < stop:
        line_start = pos
        p = pos
        while p < stop and _is_blank(buffer[p]):
            p += 1
        if p >= stop:
            break
        if buffer[p] == _NEWLINE:
            pos = p + 1
            line += 1
            continue
        if buffer[p] == _HASH:
            while p < stop and buffer[p] != _NEWLINE:
                p += 1
            pos = p + 1
            line += 1
            continue
        error = OK
        field = 0
        # ---- indices
        for m in range(nmodes):
            field = m + 1
            if m > 0:  # the previous index ended at a blank, a line break or the end
                while p < stop and _is_blank(buffer[p]):
                    p += 1
            if p >= stop or buffer[p] == _NEWLINE:
                error = ERR_FIELD_COUNT
                break
            if buffer[p] == _MINUS and p + 1 < stop and _is_digit(buffer[p + 1]):
                error = ERR_INDEX_BELOW_ONE
                break
            if buffer[p] == _PLUS and p + 1 < stop and _is_digit(buffer[p + 1]):
                p += 1  # an explicit sign: "+3" is index 3
            index = 0
            digits = 0
            while p < stop and _is_digit(buffer[p]):
                if index <= _MAX_INDEX:
                    index = index * 10 + (buffer[p] - 48)
                digits += 1
                p += 1
            if digits == 0 or (p < stop and not _is_blank(buffer[p]) and buffer[p] != _NEWLINE):
                error = ERR_INDEX_NOT_INTEGER
                break
            if index < 1:
                error = ERR_INDEX_BELOW_ONE
                break
            if index > _MAX_INDEX:
                error = ERR_INDEX_TOO_LARGE
                break
            if limits[m] > 0 and index > limits[m]:
                error = ERR_INDEX_OUT_OF_SHAPE
                break
            indices[row, m] = index - 1
            if index - 1 > maxima[m]:
                maxima[m] = index - 1
        # ---- value
        if error == OK:
            field = nmodes + 1
            while p < stop and _is_blank(buffer[p]):
                p += 1
            if p >= stop or buffer[p] == _NEWLINE:
                error = ERR_FIELD_COUNT
        if error == OK:
            token_start = p
            negative = False
            if buffer[p] == _MINUS or buffer[p] == _PLUS:
                negative = buffer[p] == _MINUS
                p += 1
            w = np.uint64(0)
            significant = 0
            exponent = 0
            any_digit = False
            inexact = False
            while p < stop and _is_digit(buffer[p]):
                any_digit = True
                d = np.uint64(buffer[p] - 48)
                if significant < 19:
                    if w != np.uint64(0) or d != np.uint64(0):
                        w = w * np.uint64(10) + d
                        significant += 1
                else:
                    exponent += 1
                    if d != np.uint64(0):
                        inexact = True
                p += 1
            if p < stop and buffer[p] == _DOT:
                p += 1
                while p < stop and _is_digit(buffer[p]):
                    any_digit = True
                    if w != np.uint64(0) and significant <= 11 and p + 8 <= stop:
                        whole, eight = _eight_digits(buffer, p)
                        if whole:
                            w = w * np.uint64(100000000) + eight
                            significant += 8
                            exponent -= 8
                            p += 8
                            continue
                    d = np.uint64(buffer[p] - 48)
                    if significant < 19:
                        if w != np.uint64(0) or d != np.uint64(0):
                            w = w * np.uint64(10) + d
                            significant += 1
                        exponent -= 1
                    elif d != np.uint64(0):
                        inexact = True
                    p += 1
            if not any_digit:
                error = ERR_VALUE
            elif p < stop and (buffer[p] == 101 or buffer[p] == 69):  # e, E
                p += 1
                exp_negative = False
                if p < stop and (buffer[p] == _MINUS or buffer[p] == _PLUS):
                    exp_negative = buffer[p] == _MINUS
                    p += 1
                exp_digits = 0
                explicit = 0
                while p < stop and _is_digit(buffer[p]):
                    if explicit < 100000:
                        explicit = explicit * 10 + (buffer[p] - 48)
                    exp_digits += 1
                    p += 1
                if exp_digits == 0:
                    error = ERR_VALUE
                exponent += -explicit if exp_negative else explicit
            if (
                error == OK
                and p < stop
                and not _is_blank(buffer[p])
                and buffer[p] != _NEWLINE
                and buffer[p] != _HASH
            ):
                error = ERR_VALUE
            if error == OK:
                decided = False
                value = 0.0
                if not inexact:
                    decided, value = decimal_to_double(
                        w, exponent, negative, pow5_high, pow5_low, pow5_exp, pow10
                    )
                if decided:
                    values[row] = value
                else:
                    values[row] = np.nan
                    if fallbacks < capacity:
                        fallback_rows[fallbacks] = row
                        fallback_lines[fallbacks] = line
                        fallback_spans[fallbacks, 0] = token_start
                        fallback_spans[fallbacks, 1] = p
                    fallbacks += 1
                # ---- nothing else on the line but a comment
                while p < stop and _is_blank(buffer[p]):
                    p += 1
                if p < stop and buffer[p] == _HASH:
                    while p < stop and buffer[p] != _NEWLINE:
                        p += 1
                if p < stop and buffer[p] != _NEWLINE:
                    error = ERR_FIELD_COUNT
                    field = nmodes + 2
        if error != OK:
            status[ST_ERROR] = error
            status[ST_ERROR_LINE] = line
            status[ST_ERROR_FIELD] = field
            status[ST_ERROR_OFFSET] = line_start
            break
        row += 1
        line += 1
        pos = p + 1
    status[ST_ROWS] = row - first_row
    status[ST_LINES] = line
    status[ST_FALLBACKS] = fallbacks


@njit(cache=True, parallel=True)
def parse_chunks(
    buffer,
    starts,
    stops,
    first_rows,
    nmodes,
    limits,
    pow5_high,
    pow5_low,
    pow5_exp,
    pow10,
    indices,
    values,
    maxima,
    fallback_rows,
    fallback_lines,
    fallback_spans,
    status,
):
    """:func:`parse_range` on every chunk in parallel; per-chunk outputs are rows of the 2-D arguments."""
    for c in prange(starts.shape[0]):
        parse_range(
            buffer,
            starts[c],
            stops[c],
            nmodes,
            limits,
            pow5_high,
            pow5_low,
            pow5_exp,
            pow10,
            indices,
            values,
            first_rows[c],
            maxima[c],
            fallback_rows[c],
            fallback_lines[c],
            fallback_spans[c],
            status[c],
        )


@njit(cache=True)
def compact_rows(indices, values, first_rows, rows_written):
    """Move each chunk's rows down so they follow the previous chunk's; returns the total row count."""
    out = 0
    for c in range(first_rows.shape[0]):
        source = first_rows[c]
        count = rows_written[c]
        if source != out:
            for r in range(count):
                for m in range(indices.shape[1]):
                    indices[out + r, m] = indices[source + r, m]
                values[out + r] = values[source + r]
        out += count
    return out


@njit(cache=True)
def rows_increasing_range(indices, first, last):
    """True when each row in ``first:last`` is lexicographically greater than the row before it."""
    ncols = indices.shape[1]
    for r in range(max(1, first), last):
        greater = False  # equal rows are not greater
        for m in range(ncols):
            a = indices[r - 1, m]
            b = indices[r, m]
            if b != a:
                greater = b > a
                break
        if not greater:
            return False
    return True


@njit(cache=True, parallel=True)
def rows_strictly_increasing(indices, nparts):
    """True when every row of ``indices`` is lexicographically greater than the one before it.

    Such rows are sorted and hold no duplicate coordinates, so the front end can skip sorting them.
    """
    rows = indices.shape[0]
    ordered = np.ones(nparts, dtype=np.bool_)
    for part in prange(nparts):
        ordered[part] = rows_increasing_range(indices, rows * part // nparts, rows * (part + 1) // nparts)
    return ordered.all()
