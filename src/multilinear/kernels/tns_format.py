"""FROSTT ``.tns`` text writer: rows of 1-based indices and round-trip-exact values, formatted in parallel.

Values: integral doubles below ``2**53`` are written as integers (``3``); others as the shortest of their
15-, 16- and 17-significant-digit decimals (the first two rounded from the third) that converts back to
the same double (checked with the exact
conversion of :mod:`multilinear.kernels.tns_float`), in fixed notation when the leading digit's exponent is
in ``[-5, 17)`` and in scientific notation (``1.5e-07``) otherwise. A value this cannot decide (subnormal,
or a conversion the exact path leaves open) is looked up in a table of Python ``repr`` strings supplied by
the caller; if it is missing there, the part stops and reports the row so the caller can add it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from multilinear.kernels.tns_float import decimal_to_double, nearest_decimal

_DIGIT0 = 48
_MINUS = 45
_DOT = 46
_SPACE = 32
_NEWLINE = 10
_TWO53_FLOAT = 9007199254740992.0
_POW10_U64 = np.array([10**k for k in range(20)], dtype=np.uint64)  # constant, frozen into the kernels

MAX_INDEX_CHARS = 20  # 19 digits and a separator
MAX_VALUE_CHARS = 34


def bytes_per_row(nmodes: int) -> int:
    """Worst-case bytes one formatted line takes."""
    return nmodes * MAX_INDEX_CHARS + MAX_VALUE_CHARS


@njit(cache=True, inline="always")
def _count_digits(v):
    count = 1
    while v >= 10:
        v //= 10
        count += 1
    return count


@njit(cache=True, inline="always")
def _write_integer(out, pos, v):
    """Write the non-negative integer v in decimal at out[pos:]; return the position after it."""
    count = _count_digits(v)
    p = pos + count - 1
    while True:
        out[p] = _DIGIT0 + v % 10
        v //= 10
        p -= 1
        if v == 0:
            break
    return pos + count


@njit(cache=True)
def write_double(out, pos, value, pow5_high, pow5_low, pow5_exp, pow10):
    """Write ``value`` round-trip-exactly at out[pos:]; return (ok, position after it)."""
    if value != value or value - value != 0.0:
        return False, pos  # NaN or infinite: never written
    if value == 0.0:
        if math.copysign(1.0, value) < 0:
            out[pos] = _MINUS
            pos += 1
        out[pos] = _DIGIT0
        return True, pos + 1
    if value < 0:
        out[pos] = _MINUS
        pos += 1
        value = -value
    if value < _TWO53_FLOAT and value == math.floor(value):
        return True, _write_integer(out, pos, np.int64(value))
    ok, w17, q17 = nearest_decimal(value, 17, pow5_high, pow5_low, pow5_exp, pow10)
    if not ok:
        return False, pos
    # 15 and 16 digits by rounding the 17 (double rounding can only cost a digit of length: each
    # candidate is checked by converting it back)
    w = w17
    q = q17
    found = False
    divisor = np.uint64(100)
    for digits in range(15, 17):
        candidate = w17 // divisor
        if (w17 % divisor) * np.uint64(2) >= divisor:
            candidate += np.uint64(1)
        exponent = q17 + (17 - digits)
        if candidate == _POW10_U64[digits]:
            candidate = _POW10_U64[digits - 1]
            exponent += 1
        decided, back = decimal_to_double(candidate, exponent, False, pow5_high, pow5_low, pow5_exp, pow10)
        if decided and back == value:
            w = candidate
            q = exponent
            found = True
            break
        divisor = divisor // np.uint64(10)
    if not found:
        decided, back = decimal_to_double(w17, q17, False, pow5_high, pow5_low, pow5_exp, pow10)
        if not (decided and back == value):
            return False, pos
    while w % np.uint64(10) == np.uint64(0):
        w = w // np.uint64(10)
        q += 1
    digits_int = np.int64(w)
    count = _count_digits(digits_int)
    lead = q + count - 1  # decimal exponent of the leading digit
    if -5 <= lead < 17:
        if q >= 0:
            pos = _write_integer(out, pos, digits_int)
            for _ in range(q):
                out[pos] = _DIGIT0
                pos += 1
            return True, pos
        if lead >= 0:
            # digits with a point after the first lead + 1 of them
            end = pos + count + 1
            p = end - 1
            v = digits_int
            for i in range(count - 1, -1, -1):
                out[p] = _DIGIT0 + v % 10
                v //= 10
                p -= 1
                if i == lead + 1:
                    out[p] = _DOT
                    p -= 1
            return True, end
        out[pos] = _DIGIT0
        out[pos + 1] = _DOT
        pos += 2
        for _ in range(-lead - 1):
            out[pos] = _DIGIT0
            pos += 1
        return True, _write_integer(out, pos, digits_int)
    # scientific: d[.ddd]e[-]xx
    p = pos + count + (1 if count > 1 else 0) - 1
    v = digits_int
    for i in range(count - 1, -1, -1):
        out[p] = _DIGIT0 + v % 10
        v //= 10
        p -= 1
        if i == 1:
            out[p] = _DOT
            p -= 1
    pos = pos + count + (1 if count > 1 else 0)
    out[pos] = 101  # e
    pos += 1
    if lead < 0:
        out[pos] = _MINUS
        pos += 1
        lead = -lead
    return True, _write_integer(out, pos, np.int64(lead))


@njit(cache=True)
def _find_row(sorted_rows, row):
    i = np.searchsorted(sorted_rows, row)
    if i < sorted_rows.shape[0] and sorted_rows[i] == row:
        return i
    return -1


@njit(cache=True, parallel=True)
def format_rows(
    indices,
    values,
    row_start,
    row_stop,
    nparts,
    pow5_high,
    pow5_low,
    pow5_exp,
    pow10,
    repr_rows,
    repr_offsets,
    repr_bytes,
    out,
    part_capacity,
    part_lengths,
    failed_rows,
):
    """Format rows ``row_start:row_stop`` as ``.tns`` lines, split into ``nparts`` consecutive parts.

    Part ``k`` is written at ``out[k * part_capacity:]``; ``part_lengths[k]`` is its length in bytes.
    ``failed_rows[k]`` is -1, or the first row of part ``k`` whose value could not be written and is not in
    the ``repr`` table (``repr_rows`` sorted; its strings are ``repr_bytes[repr_offsets[i]:repr_offsets[i+1]]``).
    """
    rows = row_stop - row_start
    nmodes = indices.shape[1]
    for part in prange(nparts):
        first = row_start + rows * part // nparts
        last = row_start + rows * (part + 1) // nparts
        pos = part * part_capacity
        failed_rows[part] = -1
        for r in range(first, last):
            for m in range(nmodes):
                pos = _write_integer(out, pos, indices[r, m] + 1)
                out[pos] = _SPACE
                pos += 1
            ok, after = write_double(out, pos, values[r], pow5_high, pow5_low, pow5_exp, pow10)
            if not ok:
                slot = _find_row(repr_rows, r)
                if slot < 0:
                    failed_rows[part] = r
                    break
                after = pos
                for b in range(repr_offsets[slot], repr_offsets[slot + 1]):
                    out[after] = repr_bytes[b]
                    after += 1
            out[after] = _NEWLINE
            pos = after + 1
        part_lengths[part] = pos - part * part_capacity


@njit(cache=True)
def unwritable_values(values, row_start, row_stop, pow5_high, pow5_low, pow5_exp, pow10, mask):
    """mask[r - row_start] = True where :func:`write_double` cannot write values[r] by itself."""
    scratch = np.empty(MAX_VALUE_CHARS, dtype=np.uint8)
    for r in range(row_start, row_stop):
        ok, _ = write_double(scratch, 0, values[r], pow5_high, pow5_low, pow5_exp, pow10)
        mask[r - row_start] = not ok
