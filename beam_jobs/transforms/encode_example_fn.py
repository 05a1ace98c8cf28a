import hashlib

import apache_beam as beam

from beam_jobs.example_encoder import ExampleEncoder
from beam_jobs.readers.row_converter import KEY_FIELD


def shard_of(key, num_shards):
    """The shard of a row key: a stable hash, independent of the split hash."""
    digest = hashlib.blake2b(
        key.encode("utf-8", errors="surrogatepass"), digest_size=8, person=b"shard"
    ).digest()
    return int.from_bytes(digest, "big") % num_shards


class EncodeExampleFn(beam.DoFn):
    """`(split, row)` -> `((split, shard), (row_key, tf.train.Example bytes))`.

    Args:
        schema: `tfcvr.features.Schema` (what the encoder writes).
        num_shards: dict. Split -> number of output files.
    """

    def __init__(self, schema, num_shards):
        self.schema = schema
        self.num_shards = dict(num_shards)
        self._encoder = None

    def setup(self):
        self._encoder = ExampleEncoder(self.schema)

    def process(self, element):
        split, row = element
        key = row[KEY_FIELD]
        shard = shard_of(key, self.num_shards[split])
        yield (split, shard), (key, self._encoder.encode(row))
