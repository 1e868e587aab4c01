"""FROSTT .tns reading and writing: round trips, exact values, every malformed input, the binary cache."""

from __future__ import annotations

import gzip
import os
import random
import stat

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import multilinear as ml
from multilinear.tensor import random_sparse, tns, tns_cache
from tests.reference.tns import read_tns_python


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal as doubles bit for bit (so -0.0 differs from 0.0)."""
    return np.array_equal(np.asarray(a, np.float64).view(np.int64), np.asarray(b, np.float64).view(np.int64))


@pytest.fixture
def small_chunks(monkeypatch):
    """Parse even tiny files in many parallel chunks, so chunk boundaries and the parallel paths run."""
    monkeypatch.setattr(tns, "_CHUNK_MIN_BYTES", 40)
    monkeypatch.setattr(tns, "_PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(tns, "_PARALLEL_MIN_ROWS", 2)


# ------------------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
@pytest.mark.parametrize("suffix", [".tns", ".tns.gz"])
def test_round_trip_random_tensor(tmp_path, suffix, parallel, request):
    if parallel:
        request.getfixturevalue("small_chunks")
    X = random_sparse((30, 20, 10, 5), 2000, rng=1)
    X.values[::7] *= -1e-12
    X.values[::11] = np.round(X.values[::11] * 1000)
    path = tmp_path / f"x{suffix}"
    X.to_tns(path)
    Y = ml.read_tns(path, cache=False)
    assert Y.shape == X.shape
    np.testing.assert_array_equal(Y.indices, X.indices)
    assert same_bits(Y.values, X.values)
    ref_indices, ref_values = read_tns_python(path)
    np.testing.assert_array_equal(ref_indices, X.indices)
    assert same_bits(ref_values, X.values)


def test_gzip_detected_by_magic_bytes(tmp_path):
    path = tmp_path / "compressed.tns"  # no .gz suffix
    path.write_bytes(gzip.compress(b"1 2 3 4.5\n2 1 1 -1\n"))
    X = ml.read_tns(path, cache=False)
    assert X.shape == (2, 2, 3)
    np.testing.assert_array_equal(X.values, [4.5, -1.0])


def test_comments_blank_lines_tabs_crlf_exponents(tmp_path, small_chunks):
    text = (
        "# a FROSTT tensor\n"
        "\n"
        "1\t1 1\t1.5e3\n"
        "   # indented comment\n"
        "2 3 1 -2.5E-2\r\n"
        "  3  2  2   +7\n"
        "\t\n"
        "1 2 2 .5\n"
        "3 3 2 6.\n"
        "2 2 2 -0\n"
        "+3 2 +1 4.25 # a trailing comment\n"
        "2 1 2 -1e1# touching\n"
        "1 1 2 123456789012345678901234567890\n"
        "3 1 1 1e-320"  # no final newline; subnormal (Python fallback)
    )
    path = tmp_path / "mixed.tns"
    path.write_text(text)
    X = ml.read_tns(path, cache=False)
    ref_indices, ref_values = read_tns_python(path)
    np.testing.assert_array_equal(X.indices, ref_indices)
    assert same_bits(X.values, ref_values)
    assert X.shape == (3, 3, 2)


def test_shape_given_is_kept(tmp_path):
    path = tmp_path / "x.tns"
    path.write_text("1 1 2.0\n2 2 3.0\n")
    X = ml.read_tns(path, shape=(5, 4), cache=False)
    assert X.shape == (5, 4)


def test_no_data_lines_needs_shape(tmp_path):
    path = tmp_path / "empty.tns"
    path.write_text("# nothing\n\n")
    with pytest.raises(ValueError, match=r"empty\.tns: no data lines"):
        ml.read_tns(path, cache=False)
    X = ml.read_tns(path, shape=(2, 3), cache=False)
    assert X.nnz == 0 and X.shape == (2, 3)


def test_duplicates_summed_or_refused(tmp_path):
    path = tmp_path / "dup.tns"
    path.write_text("1 1 1.0\n2 2 2.0\n1 1 3.0\n")
    X = ml.read_tns(path)  # writes the cache
    assert X.nnz == 2
    np.testing.assert_array_equal(X.to_dense(), [[4.0, 0.0], [0.0, 2.0]])
    for cache in (True, False):  # the cached copy remembers that the source had duplicates
        with pytest.raises(ValueError, match=r"dup\.tns: coordinate \(1 1\) .* data lines 1 and 3"):
            ml.read_tns(path, duplicates="error", cache=cache)


# ------------------------------------------------------------------------------------------ exact values
def _random_tokens(count: int, seed: int) -> list[str]:
    gen = random.Random(seed)
    tokens = []
    for _ in range(count):
        kind = gen.randrange(8)
        x = gen.random() * 10.0 ** gen.randint(-40, 40)
        if kind == 0:
            token = repr(x)
        elif kind == 1:
            token = f"{x:.17g}"
        elif kind == 2:
            token = f"{x:.{gen.randint(1, 16)}e}"
        elif kind == 3:
            token = str(gen.randint(0, 10 ** gen.randint(1, 22)))
        elif kind == 4:
            token = f"{gen.randint(0, 10**19)}e{gen.randint(-345, 288)}"
        elif kind == 5:
            digits = "".join(gen.choice("0123456789") for _ in range(gen.randint(1, 30)))
            token = f"{digits[:3]}.{digits[3:]}"
        elif kind == 6:
            token = f"0.{'0' * gen.randint(0, 30)}{gen.randint(1, 10**17)}"
        else:
            token = f"{gen.random() * 10.0 ** gen.randint(-300, 300):.17g}"
        if gen.random() < 0.3:
            token = "-" + token
        tokens.append(token)
    return tokens


def test_values_equal_python_float_on_random_tokens(tmp_path, small_chunks):
    tokens = _random_tokens(6000, seed=7)
    path = tmp_path / "tokens.tns"
    path.write_text("".join(f"{k + 1} {token}\n" for k, token in enumerate(tokens)))
    X = ml.read_tns(path, cache=False)
    expected = np.array([float(t) for t in tokens])
    assert np.isfinite(expected).all()
    assert same_bits(X.values, expected)


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
def test_many_fallback_tokens_in_one_chunk(tmp_path, parallel, monkeypatch):
    if parallel:  # few chunks, each with more fallback tokens than its buffer holds
        monkeypatch.setattr(tns, "_CHUNK_MIN_BYTES", 4000)
        monkeypatch.setattr(tns, "_PARALLEL_MIN_BYTES", 0)
    gen = random.Random(3)
    tokens = ["0." + "".join(gen.choice("0123456789") for _ in range(25)) + "1" for _ in range(500)]
    path = tmp_path / "long.tns"
    path.write_text("".join(f"{k + 1} {t}\n" for k, t in enumerate(tokens)))
    X = ml.read_tns(path, cache=False)
    assert same_bits(X.values, [float(t) for t in tokens])


def test_writer_is_round_trip_exact_on_awkward_values(tmp_path):
    gen = np.random.default_rng(5)
    values = np.concatenate(
        [
            gen.standard_normal(500) * 10.0 ** gen.integers(-300, 300, 500),
            [5e-324, -2.5e-310, 1.7976931348623157e308, 0.1, 1 / 3, 2.0**53, 2.0**53 + 2, 1e16, 1e17, -0.0],
            [123.0, 1e-5, 1e-6, 9.999999999999999e16, 0.5, 1e22, 1e23],
        ]
    )
    X = ml.SparseTensor(np.arange(values.size)[:, None], values)
    path = tmp_path / "awkward.tns"
    ml.write_tns(X, path)
    tokens = [line.split()[1] for line in path.read_text().splitlines()]
    assert same_bits([float(t) for t in tokens], values)
    assert tokens[values.size - 7 :] == ["123", "0.00001", "1e-6", "99999999999999980", "0.5", "1e22", "1e23"]
    assert same_bits(ml.read_tns(path, cache=False).values, values)


@given(
    values=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=40),
    text_values=st.lists(st.floats(allow_nan=False, allow_infinity=False).map(repr), min_size=1, max_size=40),
)
def test_any_finite_double_round_trips_and_parses_like_float(tmp_path_factory, values, text_values):
    folder = tmp_path_factory.mktemp("hypothesis")
    X = ml.SparseTensor(np.arange(len(values))[:, None], values)
    ml.write_tns(X, folder / "written.tns")
    assert same_bits(ml.read_tns(folder / "written.tns", cache=False).values, values)
    path = folder / "repr.tns"
    path.write_text("".join(f"{k + 1} {t}\n" for k, t in enumerate(text_values)))
    assert same_bits(ml.read_tns(path, cache=False).values, [float(t) for t in text_values])


# ------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("text", "shape", "match"),
    [
        ("1 1 1.0\n1 2\n", None, r"line 2: expected 3 fields .* found 2"),
        ("1 1 1.0\n# c\n1 2 3 4.0\n", None, r"line 3: expected 3 fields .* found 4"),
        ("1 1 1.0\n1 1.5 2.0\n", None, r"line 2: index 2 is not a positive integer: '1\.5'"),
        ("1 1 1.0\n\nx 1 2.0\n", None, r"line 3: index 1 is not a positive integer: 'x'"),
        ("1 1 1.0\n0 1 2.0\n", None, r"line 2: index 1 is '0'; indices are 1-based"),
        ("1 1 1.0\n1 -3 2.0\n", None, r"line 2: index 2 is '-3'; indices are 1-based"),
        ("1 1 1.0\n1 2 abc\n", None, r"line 2: value 'abc' is not a number"),
        ("1 1 1.0\n1 2 nan\n", None, r"line 2: value 'nan' is not finite"),
        ("1 1 1.0\n1 2 -inf\n", None, r"line 2: value '-inf' is not finite"),
        ("1 1 1.0\n1 2 1e400\n", None, r"line 2: value '1e400' is not finite"),
        ("1 1 1.0\n1 2 1.0e\n", None, r"line 2: value '1\.0e' is not a number"),
        ("1 1 1.0\n3 2 1.0\n", (2, 5), r"line 2: index 1 is '3', larger than the size 2 of mode 0"),
        ("1 1 1.0\n1 2 99999999999999999999 1\n", None, r"line 2: expected 3 fields"),
        ("# header\n\n7\n", None, r"line 3: expected at least 2 fields"),
        ("1 1 1.0\n", (2, 2, 2), r"line 1: 2 indices per line but shape \(2, 2, 2\) has 3 modes"),
    ],
    ids=[
        "too-few-fields",
        "too-many-fields",
        "float-index",
        "word-index",
        "zero-index",
        "negative-index",
        "word-value",
        "nan",
        "inf",
        "overflow",
        "bad-exponent",
        "beyond-shape",
        "extra-field",
        "one-field",
        "shape-modes",
    ],
)
def test_malformed_input_names_file_and_line(tmp_path, text, shape, match, small_chunks):
    path = tmp_path / "bad.tns"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"bad\.tns, " + match):
        ml.read_tns(path, shape=shape, cache=False)


def test_error_line_number_far_into_a_multi_chunk_file(tmp_path, small_chunks):
    lines = [f"{k % 50 + 1} {k // 50 + 1} 1.0" for k in range(3000)]
    lines[2345] = "1 2 3 4"
    path = tmp_path / "late.tns"
    path.write_text("# comment\n" + "\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"late\.tns, line 2347: expected 3 fields"):
        ml.read_tns(path, cache=False)


def test_first_problem_in_file_order_is_reported(tmp_path, small_chunks):
    lines = [f"{k + 1} 1 0.{k}" for k in range(200)]
    lines[20] = "21 1 1e999"  # not finite: found only after the parallel parse
    lines[150] = "151 x 1.0"  # a parse error in a later chunk
    path = tmp_path / "two.tns"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"two\.tns, line 21: value '1e999' is not finite"):
        ml.read_tns(path, cache=False)
    lines[20] = "21 1 1.0"
    lines[180] = "181 1 -1e999"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"two\.tns, line 151: index 2 is not a positive integer"):
        ml.read_tns(path, cache=False)


def test_missing_file_and_bad_gzip(tmp_path):
    with pytest.raises(FileNotFoundError):
        ml.read_tns(tmp_path / "absent.tns")
    path = tmp_path / "broken.tns.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(ValueError, match=r"broken\.tns\.gz: not a valid gzip file"):
        ml.read_tns(path, cache=False)


def test_bad_arguments():
    with pytest.raises(ValueError, match="duplicates must be one of"):
        ml.read_tns("x.tns", duplicates="keep")
    with pytest.raises(TypeError, match="write_tns expects a SparseTensor"):
        ml.write_tns(np.ones((2, 2)), "x.tns")


# ------------------------------------------------------------------------------------------ cache
def _write_small(path, seed=0):
    X = random_sparse((9, 8, 7), 60, rng=seed)
    X.to_tns(path)
    return X


def _refuse_text_parsing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the text parser ran although the cache was fresh")

    monkeypatch.setattr(tns, "_parse_file", refuse)


def test_second_read_uses_the_cache(tmp_path, monkeypatch):
    path = tmp_path / "x.tns"
    X = _write_small(path)
    ml.read_tns(path)
    assert tns_cache.cache_path_for(path).is_file()
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(tns_cache.cache_path_for(path).stat().st_mode) == 0o666 & ~umask
    _refuse_text_parsing(monkeypatch)
    Y = ml.read_tns(path)
    np.testing.assert_array_equal(Y.indices, X.indices)
    assert same_bits(Y.values, X.values)
    assert Y.indices.dtype == np.int64 and Y.indices.flags.c_contiguous
    assert type(Y.indices) is np.ndarray and type(Y.values) is np.ndarray
    Y.values[0] = 123.0  # the mapping is copy-on-write: the cache file keeps the original
    Y.indices[0, 0] = 5
    again = ml.read_tns(path)
    assert same_bits(again.values, X.values)
    np.testing.assert_array_equal(again.indices, X.indices)
    Z = ml.read_tns(path, shape=(10, 10, 10))  # a larger shape is served from the cache too
    assert Z.shape == (10, 10, 10)


def test_cached_shape_is_inferred_unless_given(tmp_path, monkeypatch):
    path = tmp_path / "x.tns"
    path.write_text("1 1 1.0\n4 2 2.0\n")
    assert ml.read_tns(path, shape=(9, 9)).shape == (9, 9)  # writes the cache
    _refuse_text_parsing(monkeypatch)
    assert ml.read_tns(path).shape == (4, 2)
    assert ml.read_tns(path, shape=(5, 3)).shape == (5, 3)


def test_cache_false_neither_reads_nor_writes(tmp_path):
    path = tmp_path / "x.tns"
    _write_small(path)
    ml.read_tns(path, cache=False)
    assert not tns_cache.cache_path_for(path).exists()


def test_cache_invalidated_when_size_changes(tmp_path):
    path = tmp_path / "x.tns"
    _write_small(path, seed=0)
    ml.read_tns(path)
    X = _write_small(path, seed=1)
    Y = ml.read_tns(path)
    np.testing.assert_array_equal(Y.indices, X.indices)
    assert same_bits(Y.values, X.values)


def test_cache_invalidated_when_only_mtime_changes(tmp_path, monkeypatch):
    path = tmp_path / "x.tns"
    path.write_text("1 1 1.0\n2 2 2.0\n")
    ml.read_tns(path)
    stat = path.stat()
    path.write_text("1 1 7.0\n2 2 8.0\n")  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert path.stat().st_size == stat.st_size
    np.testing.assert_array_equal(ml.read_tns(path).values, [7.0, 8.0])
    _refuse_text_parsing(monkeypatch)  # and the rewritten cache is fresh again
    np.testing.assert_array_equal(ml.read_tns(path).values, [7.0, 8.0])


@pytest.mark.parametrize(
    "damage",
    [b"", b"not a cache at all", b"MLTNSC01\xff\xff\xff\xff\xff\xff\xff\xff", "truncate", "header"],
    ids=["empty", "garbage", "huge-header", "truncated", "bad-json"],
)
def test_corrupt_cache_is_ignored_and_rewritten(tmp_path, monkeypatch, damage):
    path = tmp_path / "x.tns"
    X = _write_small(path)
    ml.read_tns(path)
    cache_file = tns_cache.cache_path_for(path)
    blob = cache_file.read_bytes()
    if damage == "truncate":
        cache_file.write_bytes(blob[: len(blob) - 10])
    elif damage == "header":
        cache_file.write_bytes(blob[:16] + b"{" + blob[17:])
    else:
        cache_file.write_bytes(damage)
    Y = ml.read_tns(path)
    np.testing.assert_array_equal(Y.indices, X.indices)
    _refuse_text_parsing(monkeypatch)
    assert same_bits(ml.read_tns(path).values, X.values)


def test_unwritable_directory_skips_the_cache(tmp_path, monkeypatch):
    path = tmp_path / "x.tns"
    X = _write_small(path)

    def no_temporary_files(*args, **kwargs):
        raise PermissionError("read-only directory")

    # chmod does not stop root, who runs the CI here: refuse the temporary file the cache is written to
    monkeypatch.setattr(tns_cache, "_create_temporary", no_temporary_files)
    if os.geteuid() != 0:
        tmp_path.chmod(0o555)
    try:
        Y = ml.read_tns(path)
    finally:
        tmp_path.chmod(0o755)
    np.testing.assert_array_equal(Y.indices, X.indices)
    assert not tns_cache.cache_path_for(path).exists()
    assert not list(tmp_path.glob("*.tmp"))


def test_shape_smaller_than_cached_data_raises_with_line(tmp_path):
    path = tmp_path / "x.tns"
    path.write_text("1 1 1.0\n4 2 2.0\n")
    ml.read_tns(path)
    with pytest.raises(ValueError, match=r"x\.tns, line 2: index 1 is '4', larger than the size 3"):
        ml.read_tns(path, shape=(3, 3))
