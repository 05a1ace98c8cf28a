import gzip

import pytest

from beam_jobs.readers.input_files import content_key
from beam_jobs.readers.input_files import match_files
from beam_jobs.readers.input_files import read_first_line
from beam_jobs.readers.input_files import read_head


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
