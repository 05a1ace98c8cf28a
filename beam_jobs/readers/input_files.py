"""Input files shared by readers: listing (local paths, globs, gs:// ...),
reading lines, and row keys from content."""

import hashlib
import io
import os

import apache_beam as beam
from apache_beam import coders
from apache_beam.io import textio
from apache_beam.io.filesystems import FileSystems

from tfcvr.features.keys import SUMMARY_FILE
from beam_jobs.readers.dead_letter import one_line
from tfcvr.features import keys
from tfcvr.features.input_spec import SPEC_FILE

# Files that sit beside the data but are not data.
_NOT_DATA = (SPEC_FILE, keys.SCHEMA_FILE, SUMMARY_FILE, "_SUCCESS")
UTF8_BOM = b"\xef\xbb\xbf"
# Bytes at the start of a file checked for text (see `check_text`).
HEAD_BYTES = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


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


def iter_lines(path, skip_header_lines=0):
    """The lines of a (possibly compressed) file as bytes without their
    line feed, as `read_lines` splits them (a last line without one is
    kept; a carriage return is left to `clean_line`)."""
    with FileSystems.open(path) as f:
        for number, raw in enumerate(iter(f.readline, b"")):
            if number >= skip_header_lines:
                yield raw[:-1] if raw.endswith(b"\n") else raw


def clean_line(raw):
    """A bytes line without its trailing CR and a leading UTF-8 byte-order
    mark.

    Every text reader calls it on every line: a BOM opens the first line of
    files written by many Windows tools, and left in place it becomes part
    of the first field (a sample id `'\\ufeff1'` that joins nothing).
    """
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if raw.startswith(UTF8_BOM):
        raw = raw[len(UTF8_BOM):]
    return raw


def check_text(path, head):
    """One-line ValueError naming `path` unless its first bytes are text.

    A NUL byte does not occur in UTF-8 text; in the first `HEAD_BYTES` of a
    file it means binary data (an archive, a compressed file without its
    extension, random bytes) or UTF-16 text.
    """
    at = head.find(b"\x00")
    if at < 0:
        return
    if head.startswith(_GZIP_MAGIC):
        what = "gzip data: name it *.gz to have it decompressed"
    else:
        what = "binary data or UTF-16 text; the readers need UTF-8 text"
    raise ValueError(
        f"{path} is not a text file: NUL byte at byte {at} ({what})."
    )


def read_head(path, max_lines, skip_blank=False):
    """Up to `max_lines` first lines of a text file as bytes, without line
    ends or byte-order mark (see `clean_line`); `skip_blank` leaves out
    whitespace-only lines.

    The file (decompressed by its extension) must be text: see
    `check_text`. Read errors are one-line ValueErrors naming the file.
    """
    lines = []
    try:
        with FileSystems.open(path) as f:
            head = f.read(HEAD_BYTES)
            check_text(path, head)
            first = io.BytesIO(head)
            while len(lines) < max_lines:
                raw = first.readline()
                if not raw.endswith(b"\n"):
                    # The line goes on past the first chunk (or starts there).
                    raw += f.readline()
                if not raw:
                    break
                raw = clean_line(raw.rstrip(b"\n"))
                if skip_blank and not raw.strip():
                    continue
                lines.append(raw)
    except ValueError:
        raise
    except Exception as e:  # noqa: BLE001 (errors differ per filesystem/codec)
        raise ValueError(f"Cannot read {path}: {one_line(e, 200)}") from None
    return lines


def read_first_line(path):
    """The first line of a (possibly compressed) text file as str, without
    line end or byte-order mark; "" for an empty file."""
    lines = read_head(path, 1)
    if not lines:
        return ""
    try:
        return lines[0].decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"The first line of {path} is not UTF-8 (byte {e.start})."
        ) from None


def read_header_line(path, what="a CSV file"):
    """The first line of a file that starts with its header, as str.

    An empty (or blank) file, or a blank first line, is a one-line
    ValueError naming the file, not a header without columns.
    """
    line = read_first_line(path)
    if line.strip():
        return line
    if read_head(path, 1, skip_blank=True):
        problem = "starts with a blank line"
    else:
        problem = "is empty"
    raise ValueError(f"{path} {problem}: {what} starts with its header line.")


def content_key(raw):
    """A stable 16-hex-digit row key from a record's content.

    Used when the spec has no `row_key`: identical records get the same key,
    which keeps both the split and the output order deterministic.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", errors="surrogatepass")
    return hashlib.blake2b(raw, digest_size=8).hexdigest()
