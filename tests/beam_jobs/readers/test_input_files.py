import gzip

import pytest

from beam_jobs.readers.input_files import HEAD_BYTES
from beam_jobs.readers.input_files import clean_line
from beam_jobs.readers.input_files import content_key
from beam_jobs.readers.input_files import match_files
from beam_jobs.readers.input_files import read_first_line
from beam_jobs.readers.input_files import read_head
from beam_jobs.readers.input_files import read_header_line


def test_match_files_accepts_globs_dirs_and_lists(tmp_path):
    for name in ("b.csv", "a.csv", "spec.json", ".hidden.csv"):
        (tmp_path / name).write_text("x\n")
    (tmp_path / "sub").mkdir()
    expected = [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]
    assert match_files(str(tmp_path / "*.csv")) == expected
    assert match_files(str(tmp_path)) == expected  # spec.json and dirs skipped
    assert match_files(f"{tmp_path}/b.csv,{tmp_path}/a.csv") == expected


def test_match_files_errors_on_nothing(tmp_path):
    with pytest.raises(ValueError, match="No input files match"):
        match_files(str(tmp_path / "*.csv"))
    with pytest.raises(ValueError, match="non-empty"):
        match_files("  ")


def test_first_line_and_head_read_gzip(tmp_path):
    path = tmp_path / "x.csv.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\xef\xbb\xbfa,b\r\n1,2\n3,4\n")
    assert read_first_line(str(path)) == "a,b"
    assert read_head(str(path), 2) == [b"a,b", b"1,2"]
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"a,\xff\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_first_line(str(bad))


def test_content_key_is_stable():
    assert content_key("1,2,3") == content_key(b"1,2,3")
    assert content_key("1,2,3") != content_key("1,2,4")
    assert len(content_key("x")) == 16


def test_clean_line_strips_a_byte_order_mark_and_a_carriage_return():
    assert clean_line(b"\xef\xbb\xbfa,b\r") == b"a,b"
    assert clean_line(b"a,\xef\xbb\xbfb") == b"a,\xef\xbb\xbfb"


def test_head_reads_lines_across_the_first_chunk_and_skips_blank_lines(tmp_path):
    path = tmp_path / "long.csv"
    long_line = b"x" * (HEAD_BYTES + 10)
    path.write_bytes(b"\n \n" + long_line + b"\n\nlast")
    assert read_head(str(path), 5, skip_blank=True) == [long_line, b"last"]
    assert read_head(str(path), 2) == [b"", b" "]


def test_binary_files_and_missing_headers_are_one_line_errors(tmp_path):
    binary = tmp_path / "data.csv"
    binary.write_bytes(b"a,b\n" + b"\x00" * 10)
    with pytest.raises(ValueError, match=r"data\.csv is not a text file: NUL byte at byte 4"):
        read_head(str(binary), 1)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b" \n\n")
    with pytest.raises(ValueError, match=r"empty\.csv is empty: a CSV file starts"):
        read_header_line(str(empty))
    with pytest.raises(ValueError, match=r"Cannot read .*nothing\.csv"):
        read_head(str(tmp_path / "nothing.csv"), 1)
