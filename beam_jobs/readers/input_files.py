"""Input files shared by readers: listing (local paths, globs, gs:// ...),
reading lines, and row keys from content."""

import hashlib
import os

import apache_beam as beam
from apache_beam import coders
from apache_beam.io import textio
from apache_beam.io.filesystems import FileSystems

from beam_jobs.readers.dead_letter import SUMMARY_FILE
from beam_jobs.readers.dead_letter import one_line
from tfcvr.features import keys
from tfcvr.features.input_spec import SPEC_FILE

# Files that sit beside the data but are not data.
_NOT_DATA = (SPEC_FILE, keys.SCHEMA_FILE, SUMMARY_FILE, "_SUCCESS")


def is_local(path):
    """Whether a path is on the local filesystem (no `scheme://`)."""
    return "://" not in path


def is_local_dir(path):
    return is_local(path) and os.path.isdir(path)


def match_files(file_pattern):
    """Sorted files matched by a path, directory, glob or comma-separated
    list of those; a one-line ValueError when nothing matches."""
    if not isinstance(file_pattern, str) or not file_pattern.strip():
        raise ValueError(
            f"The input must be a non-empty path, directory or glob. "
            f"Received: {file_pattern!r}"
        )
    files = set()
    for pattern in (p.strip() for p in file_pattern.split(",")):
        if not pattern:
            continue
        if is_local_dir(pattern) or pattern.endswith("/"):
            pattern = FileSystems.join(pattern.rstrip("/") or "/", "*")
        try:
            results = FileSystems.match([pattern])
        except Exception as e:  # noqa: BLE001 (errors differ per filesystem)
            raise ValueError(
                f"Cannot list input {pattern!r}: {one_line(e, 300)}"
            ) from None
        for result in results:
            for metadata in result.metadata_list:
                path = metadata.path
                if is_local_dir(path) or os.path.basename(path) in _NOT_DATA:
                    continue
                if os.path.basename(path).startswith("."):
                    continue
                files.add(path)
    if not files:
        raise ValueError(f"No input files match {file_pattern!r}.")
    return sorted(files)


def total_size(files):
    """Total bytes of the given files (0 where the size is unknown)."""
    total = 0
    for result in FileSystems.match(list(files)):
        for metadata in result.metadata_list:
            total += metadata.size_in_bytes or 0
    return total


def read_lines(pbegin, files, skip_header_lines=0):
    """PCollection of `(path, bytes line)` over the given files.

    Lines stay bytes so that a non-UTF-8 line becomes a dead letter in the
    parsing DoFn instead of failing the read.
    """
    return (
        pbegin
        | "ListFiles" >> beam.Create(list(files))
        | "ReadLines"
        >> textio.ReadAllFromText(
            with_filename=True,
            coder=coders.BytesCoder(),
            skip_header_lines=skip_header_lines,
        )
    )


def read_first_line(path):
    """The first line of a (possibly compressed) file as str, no newline."""
    with FileSystems.open(path) as f:
        raw = f.readline()
    try:
        return raw.rstrip(b"\r\n").decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"The first line of {path} is not UTF-8 (byte {e.start})."
        ) from None


def read_head(path, max_lines):
    """Up to `max_lines` first lines of a file as bytes, no newlines."""
    lines = []
    with FileSystems.open(path) as f:
        while len(lines) < max_lines:
            raw = f.readline()
            if not raw:
                break
            lines.append(raw.rstrip(b"\r\n"))
    return lines


def content_key(raw):
    """A stable 16-hex-digit row key from a record's content.

    Used when the spec has no `row_key`: identical records get the same key,
    which keeps both the split and the output order deterministic.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", errors="surrogatepass")
    return hashlib.blake2b(raw, digest_size=8).hexdigest()
