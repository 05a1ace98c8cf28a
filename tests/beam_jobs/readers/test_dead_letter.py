import pytest

from beam_jobs.readers import dead_letter as dl


def test_escape_raw_escapes_invalid_utf8_and_truncates():
    assert dl.escape_raw(b"ok\xff\xfeend") == "ok\\xff\\xfeend"
    assert dl.escape_raw("é" * 3000) == "é" * dl.MAX_RAW_CHARS
    assert dl.escape_raw({"a": 1}) == "{'a': 1}"


def test_rejected_record_has_the_contract_fields():
    record = dl.rejected_record(
        dl.BAD_LABEL, "/data/logs/part-1.csv", "click is\n 2", b"1,2,\xff"
    )
    assert record == {
        "reason": "bad_label",
        "source": "part-1.csv",
        "detail": "click is 2",
        "raw": "1,2,\\xff",
    }


def test_dead_letter_exception_builds_the_record():
    with pytest.raises(dl.DeadLetter) as info:
        raise dl.DeadLetter(dl.BAD_NUMERIC, "price is 'abc'")
    assert info.value.reason == dl.BAD_NUMERIC
    record = info.value.to_record("f.csv", "x,abc")
    assert record["reason"] == "bad_numeric" and record["raw"] == "x,abc"
