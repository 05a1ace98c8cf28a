import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that
from apache_beam.testing.util import equal_to

from beam_jobs.example_logs import impression_frame
from beam_jobs.example_logs import impression_spec
from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.csv_reader import CsvReader
from beam_jobs.readers.csv_reader import ParseCsvLineFn
from beam_jobs.readers.row_converter import KEY_FIELD
from tfcvr.features.input_spec import InputSpec

SPEC = {
    "columns": {
        "user_id": {"kind": "categorical_int"},
        "city": {"kind": "categorical_string"},
        "price": {"kind": "numeric"},
    },
    "labels": {"click": "click", "conversion": "conversion"},
    "row_key": "row_id",
}
HEADER = "row_id,user_id,city,price,click,conversion"


def _row(key, user, city, price, click, conversion):
    return {
        "user_id": user, "city": city, "price": price, "click": click,
        "conversion": conversion, KEY_FIELD: key,
    }


def _reasons(records):
    return sorted(r["reason"] for r in records)


def test_rows_and_every_line_level_dead_letter(tmp_path, make_pipeline):
    path = tmp_path / "log.csv"
    path.write_bytes(
        (HEADER + "\n").encode()
        + b"1,10,oslo,2.5,1,1\n"
        + b'2,11,"lima, peru",,0,0\r\n'
        + b"\n"  # blank: skipped, not a row
        + b"3,12,oslo,1.0,1\n"  # wrong field count
        + b"4,13,o\xffslo,1.0,1,0\n"  # not UTF-8
        + b"5,14,oslo,cheap,1,0\n"  # bad numeric
        + b"6,15,oslo,1.0,2,0\n"  # bad label
        + b"7,16,oslo,1.0,0,1\n"  # conversion without click
        + b"8,x,oslo,1.0,0,0\n"  # bad categorical
        + b",17,oslo,1.0,0,0\n"  # missing row key
    )
    with make_pipeline() as p:
        out = p | CsvReader(str(path), spec=SPEC)
        assert_that(
            out["rows"],
            equal_to([
                _row("1", 10, "oslo", 2.5, 1, 1),
                _row("2", 11, "lima, peru", None, 0, 0),
            ]),
            label="rows",
        )
        assert_that(
            out["rejected"] | beam.Map(lambda r: (r["reason"], r["source"])),
            equal_to([
                (dl.WRONG_FIELD_COUNT, "log.csv"),
                (dl.NON_UTF8, "log.csv"),
                (dl.BAD_NUMERIC, "log.csv"),
                (dl.BAD_LABEL, "log.csv"),
                (dl.CLICK0_CONVERSION1, "log.csv"),
                (dl.BAD_CATEGORICAL, "log.csv"),
                (dl.MISSING_ROW_KEY, "log.csv"),
            ]),
            label="rejected",
        )
        assert_that(
            out["rejected"]
            | beam.Filter(lambda r: r["reason"] == dl.NON_UTF8)
            | beam.Map(lambda r: r["raw"]),
            equal_to(["4,13,o\\xffslo,1.0,1,0"]),
            label="raw_escaped",
        )


def test_files_with_different_column_orders(tmp_path, make_pipeline):
    (tmp_path / "a.csv").write_text(HEADER + "\n1,10,oslo,2.5,1,0\n")
    (tmp_path / "b.csv").write_text(
        "conversion,click,price,city,user_id,row_id\n0,1,3.5,lima,20,2\n"
    )
    with make_pipeline() as p:
        out = p | CsvReader(str(tmp_path / "*.csv"), spec=SPEC)
        assert_that(
            out["rows"],
            equal_to([
                _row("1", 10, "oslo", 2.5, 1, 0),
                _row("2", 20, "lima", 3.5, 1, 0),
            ]),
        )


def test_tab_delimited_without_header(tmp_path, make_pipeline):
    (tmp_path / "a.tsv").write_text("1\t10\toslo\t2.5\t1\t0\n")
    with make_pipeline() as p:
        out = p | CsvReader(
            str(tmp_path / "a.tsv"), spec=SPEC, delimiter="\t",
            column_names=HEADER.split(","),
        )
        assert_that(out["rows"], equal_to([_row("1", 10, "oslo", 2.5, 1, 0)]))


def test_a_byte_order_mark_is_not_part_of_a_field(tmp_path, make_pipeline):
    bom = b"\xef\xbb\xbf"
    (tmp_path / "a.csv").write_bytes(bom + (HEADER + "\n1,10,oslo,2.5,1,0\n").encode())
    (tmp_path / "b.tsv").write_bytes(bom + b"2\t20\tlima\t3.5\t1\t0\n")
    with make_pipeline() as p:
        with_header = p | "Header" >> CsvReader(str(tmp_path / "a.csv"), spec=SPEC)
        without = p | "NoHeader" >> CsvReader(
            str(tmp_path / "b.tsv"), spec=SPEC, delimiter="\t",
            column_names=HEADER.split(","),
        )
        assert_that(
            with_header["rows"], equal_to([_row("1", 10, "oslo", 2.5, 1, 0)]),
            label="header",
        )
        assert_that(
            without["rows"], equal_to([_row("2", 20, "lima", 3.5, 1, 0)]),
            label="no_header",
        )


def test_construction_errors_are_one_line(tmp_path):
    (tmp_path / "a.csv").write_text("row_id,user_id,click,conversion\n1,2,0,0\n")
    with pytest.raises(ValueError, match=r"does not have: \['city', 'price'\]"):
        CsvReader(str(tmp_path / "a.csv"), spec=SPEC)
    with pytest.raises(ValueError, match="No input files match"):
        CsvReader(str(tmp_path / "*.parquet"), spec=SPEC)
    with pytest.raises(ValueError, match="needs an input spec"):
        CsvReader(str(tmp_path / "a.csv"))
    (tmp_path / "d.csv").write_text("a,a\n1,2\n")
    with pytest.raises(ValueError, match="duplicate column names"):
        CsvReader(str(tmp_path / "d.csv"), spec=SPEC)
    # Not "spec names columns that ... does not have: [...]. Available: []".
    (tmp_path / "e.csv").write_bytes(b"")
    with pytest.raises(ValueError, match=r"e\.csv is empty: a CSV file starts"):
        CsvReader(str(tmp_path / "e.csv"), spec=SPEC)
    (tmp_path / "f.csv").write_bytes(b"\n" + (HEADER + "\n").encode())
    with pytest.raises(ValueError, match=r"f\.csv starts with a blank line"):
        CsvReader(str(tmp_path / "f.csv"), spec=SPEC)
    (tmp_path / "g.csv").write_bytes(b"PK\x03\x04\x14\x00\x00\x00")
    with pytest.raises(ValueError, match=r"g\.csv is not a text file"):
        CsvReader(str(tmp_path / "g.csv"), spec=SPEC)


def test_parse_fn_alone(make_pipeline):
    spec = InputSpec.from_dict(SPEC)
    fn = ParseCsvLineFn(spec, {"f.csv": HEADER.split(",")})
    with make_pipeline() as p:
        out = (
            p
            | beam.Create([("f.csv", b"1,10,oslo,2.5,1,0"), ("f.csv", b"x")])
            | beam.ParDo(fn).with_outputs("rejected", main="rows")
        )
        assert_that(out.rows, equal_to([_row("1", 10, "oslo", 2.5, 1, 0)]))
        assert_that(
            out.rejected | beam.Map(lambda r: r["reason"]),
            equal_to([dl.WRONG_FIELD_COUNT]),
            label="rejected",
        )


def test_example_logs_round_trip(tmp_path, make_pipeline):
    frame = impression_frame(rows=50)
    frame.to_csv(tmp_path / "logs.csv", index=False)
    with make_pipeline() as p:
        out = p | CsvReader(str(tmp_path / "logs.csv"), spec=impression_spec())
        assert_that(
            out["rows"] | beam.Map(lambda r: int(r[KEY_FIELD])),
            equal_to(list(range(50))),
        )
        assert_that(out["rejected"], equal_to([]), label="no_rejects")
