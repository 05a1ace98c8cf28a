import pytest

from tfcvr.data import encode_splits
from tfcvr.testing.tiny_model import write_tiny_dataset_dir

# Small chunks, so that the tiny splits have several per shard and batch
# sizes that are not multiples of a chunk.
CHUNK_ROWS = 64


@pytest.fixture(scope="session")
def encoded_dir(tmp_path_factory):
    """A tiny dataset directory (every feature kind: ids, strings, a
    hashed field, weighted multi-valued ids, string tags, numerics with
    missing values) with 3 train shards of 600 rows and 150 eval rows,
    both splits encoded in 64-row chunks. Read-only: copy it to change it."""
    path = str(tmp_path_factory.mktemp("encoded") / "data")
    write_tiny_dataset_dir(path, rows=600, eval_rows=150, train_shards=3)
    encode_splits(path, chunk_rows=CHUNK_ROWS)
    return path
