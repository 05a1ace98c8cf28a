import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from tfcvr.features import keys


def vocab_path(out_dir, vocab_name):
    return FileSystems.join(out_dir, keys.VOCAB_DIR, f"{vocab_name}.txt")


def write_vocabulary(out_dir, vocab_name, tokens):
    """Writes `DIR/vocab/<name>.txt`, one token per line; returns its size."""
    tokens = list(tokens)
    text = "".join(f"{t}\n" for t in tokens).encode("utf-8")
    with FileSystems.create(
        vocab_path(out_dir, vocab_name),
        compression_type=CompressionTypes.UNCOMPRESSED,
    ) as f:
        f.write(text)
    return len(tokens)


class WriteVocabularyFn(beam.DoFn):
    """`(vocab_name, [(token, count), ...])` -> `DIR/vocab/<name>.txt`;
    emits `(vocab_name, vocab_size)`."""

    def __init__(self, out_dir):
        self.out_dir = out_dir

    def process(self, element):
        vocab_name, counts = element
        size = write_vocabulary(self.out_dir, vocab_name, (t for t, _ in counts))
        yield vocab_name, size
