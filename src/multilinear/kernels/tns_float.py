"""Exact conversion between decimal ``w * 10**q`` and binary64, for the ``.tns`` parser and writer.

The parser turns a decimal token into its digits ``w`` (an unsigned 64-bit integer, at most 19 digits)
and a decimal exponent ``q``, then asks :func:`decimal_to_double` for the correctly rounded double:

1. Clinger's fast path: when ``w <= 2**53`` and ``|q| <= 22`` both ``w`` and ``10**|q|`` are exact doubles,
   so one IEEE multiplication or division rounds correctly.
2. Otherwise ``w * 5**q`` is formed from a 128-bit truncation of ``5**q`` (a table built exactly with
   Python integers). The true product lies within two units of the last of 128 bits of the computed one;
   when that uncertainty cannot change the rounding to 53 bits, the result is exact. When it could (a
   tie, or a carry), or the result would be subnormal or overflow, the function reports failure and the
   caller falls back to Python's ``float`` for that token. For random 17-digit inputs failures are
   vanishingly rare (about 2**-70 of them).

The writer uses the same table to compute the 15-, 16- or 17-digit decimal nearest a double and keeps the
shortest of them that :func:`decimal_to_double` maps back to the same double.

All integers here are ``uint64``: numba promotes ``uint64`` mixed with a signed integer to ``float64``, so
every constant is wrapped in ``np.uint64``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit

Q_MIN = -348
Q_MAX = 348
_MASK32 = np.uint64(0xFFFFFFFF)
_TOP_BIT = np.uint64(1) << np.uint64(63)
_TWO53 = np.uint64(1) << np.uint64(53)


@functools.lru_cache(maxsize=1)
def power_of_five_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """128-bit truncations of ``5**q`` for ``q`` in ``[Q_MIN, Q_MAX]``.

    Returns
    -------
    high, low : ndarray of uint64, shape (Q_MAX - Q_MIN + 1,)
        The upper and lower 64 bits of ``P`` (``2**127 <= P < 2**128``).
    binary_exponent : ndarray of int64, same shape
        ``b`` such that ``5**q = P_true * 2**b`` with ``P <= P_true < P + 1``.
    """
    count = Q_MAX - Q_MIN + 1
    high = np.empty(count, dtype=np.uint64)
    low = np.empty(count, dtype=np.uint64)
    binary_exponent = np.empty(count, dtype=np.int64)
    for i, q in enumerate(range(Q_MIN, Q_MAX + 1)):
        if q >= 0:
            power = 5**q
            bits = power.bit_length()
            scaled = power << (128 - bits) if bits <= 128 else power >> (bits - 128)
            exponent = bits - 128
        else:
            power = 5 ** (-q)
            shift = 127 + power.bit_length()
            scaled = (1 << shift) // power
            exponent = -shift
        high[i] = scaled >> 64
        low[i] = scaled & ((1 << 64) - 1)
        binary_exponent[i] = exponent
    return high, low, binary_exponent


@functools.lru_cache(maxsize=1)
def exact_powers_of_ten() -> np.ndarray:
    """``10.0**k`` for ``k`` in 0..22, each exact in binary64."""
    return np.array([float(10**k) for k in range(23)], dtype=np.float64)


@njit(cache=True, inline="always")
def mul_64x64(a, b):
    """Full product of two uint64: returns (high 64 bits, low 64 bits)."""
    a_lo = a & _MASK32
    a_hi = a >> np.uint64(32)
    b_lo = b & _MASK32
    b_hi = b >> np.uint64(32)
    p0 = a_lo * b_lo
    p1 = a_lo * b_hi
    p2 = a_hi * b_lo
    p3 = a_hi * b_hi
    middle = (p0 >> np.uint64(32)) + (p1 & _MASK32) + (p2 & _MASK32)
    low = (p0 & _MASK32) | (middle << np.uint64(32))
    high = p3 + (p1 >> np.uint64(32)) + (p2 >> np.uint64(32)) + (middle >> np.uint64(32))
    return high, low


@njit(cache=True, inline="always")
def _normalize(w):
    """Shift w (nonzero) left until its top bit is set; return (shifted, shift)."""
    shift = 0
    if w < (np.uint64(1) << np.uint64(32)):
        w = w << np.uint64(32)
        shift += 32
    if w < (np.uint64(1) << np.uint64(48)):
        w = w << np.uint64(16)
        shift += 16
    if w < (np.uint64(1) << np.uint64(56)):
        w = w << np.uint64(8)
        shift += 8
    while w < _TOP_BIT:
        w = w << np.uint64(1)
        shift += 1
    return w, shift


@njit(cache=True, inline="always")
def _scaled_product(x, q, pow5_high, pow5_low):
    """floor(x * P_q / 2**64) as (high, low) uint64 words, x normalized (top bit set)."""
    i = q - Q_MIN
    h1, l1 = mul_64x64(x, pow5_high[i])
    h2, _ = mul_64x64(x, pow5_low[i])
    low = l1 + h2
    high = h1
    if low < l1:
        high += np.uint64(1)
    return high, low


@njit(cache=True)
def decimal_to_double(w, q, negative, pow5_high, pow5_low, pow5_exp, pow10):
    """Correctly rounded double of ``(-1)**negative * w * 10**q``, or failure.

    Parameters
    ----------
    w : uint64
        Decimal digits (any value; 0 gives a signed zero).
    q : int
        Decimal exponent.
    negative : bool
    pow5_high, pow5_low, pow5_exp : arrays from :func:`power_of_five_table`
    pow10 : array from :func:`exact_powers_of_ten`

    Returns
    -------
    ok : bool
        False when the exact result could not be decided here (caller uses Python's ``float``).
    value : float
    """
    sign = -1.0 if negative else 1.0
    if w == np.uint64(0):
        return True, sign * 0.0
    if w <= _TWO53 and -22 <= q <= 22:
        if q >= 0:
            return True, sign * (float(w) * pow10[q])
        return True, sign * (float(w) / pow10[-q])
    if q < Q_MIN or q > Q_MAX:
        return False, 0.0
    x, shift = _normalize(w)
    high, low = _scaled_product(x, q, pow5_high, pow5_low)
    if high >= _TOP_BIT:
        drop = 74
        mantissa = high >> np.uint64(10)
        rest_high = high & np.uint64(0x3FF)
        rest_full = np.uint64(0x3FF)
    else:
        drop = 73
        mantissa = high >> np.uint64(9)
        rest_high = high & np.uint64(0x1FF)
        rest_full = np.uint64(0x1FF)
    # The true product is in [R, R + 2): undecidable when adding < 2 may carry into the kept bits.
    if rest_high == rest_full and low >= np.uint64(0xFFFFFFFFFFFFFFFE):
        return False, 0.0
    if mantissa & np.uint64(1):
        if rest_high == np.uint64(0) and low == np.uint64(0):
            return False, 0.0  # possibly an exact tie: leave it to Python
        mantissa = (mantissa >> np.uint64(1)) + np.uint64(1)
    else:
        mantissa = mantissa >> np.uint64(1)
    exponent = drop + 1 + 64 - shift + pow5_exp[q - Q_MIN] + q
    if exponent < -1074 or exponent > 971:
        return False, 0.0  # subnormal or overflow: not decided here
    return True, sign * math.ldexp(float(mantissa), exponent)


@njit(cache=True)
def nearest_decimal(value, digits, pow5_high, pow5_low, pow5_exp, pow10):
    """The ``digits``-significant-digit decimal nearest a positive normal double (up to rounding of ties).

    Returns
    -------
    ok : bool
        False when ``value`` is not a positive normal double or the scaling is out of the table.
    w : uint64
        The digits, ``10**(digits-1) <= w < 10**digits``.
    q : int
        Exponent of the last digit: the decimal is ``w * 10**q``.
    """
    if not (value > 0.0) or value < 2.2250738585072014e-308 or value > 1.7976931348623157e308:
        return False, np.uint64(0), 0
    fraction, binary_exp = math.frexp(value)
    mantissa = np.uint64(fraction * 9007199254740992.0)  # exact: 53-bit integer
    e = binary_exp - 53
    x = mantissa << np.uint64(11)
    lower = np.uint64(1)
    for _ in range(digits - 1):
        lower = lower * np.uint64(10)
    upper = lower * np.uint64(10)
    k = int(math.floor(math.log10(value)))  # noqa: RUF046 (numba: keep an int64)
    for _attempt in range(4):
        j = (digits - 1) - k
        if j < Q_MIN or j > Q_MAX:
            return False, np.uint64(0), 0
        high, _ = _scaled_product(x, j, pow5_high, pow5_low)
        shift = -(53 + pow5_exp[j - Q_MIN] + j + e)
        if shift <= 64 or shift >= 127:
            return False, np.uint64(0), 0
        s = np.uint64(shift - 64)
        w = high >> s
        round_bit = (high >> (s - np.uint64(1))) & np.uint64(1)
        w = w + round_bit
        if w == upper:
            return True, lower, k + 1 - (digits - 1)
        if w < lower:
            k -= 1
        elif w > upper:
            k += 1
        else:
            return True, w, k - (digits - 1)
    return False, np.uint64(0), 0
