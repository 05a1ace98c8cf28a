import struct

from tfcvr.features import keys


# Protobuf wire tags (field_number << 3 | wire_type 2 "length-delimited").
_TAG_1 = b"\x0a"  # Example.features, Features.feature entry, entry key,
#                   BytesList.value, packed Float/Int64List.value
_TAG_2 = b"\x12"  # map entry value, Feature.float_list
_TAG_3 = b"\x1a"  # Feature.int64_list
_BYTES_LIST = _TAG_1


# Feature ids repeat (Zipf-distributed users, items, categories) and rows
# sharing a context (an Ali-CCP common feature row) arrive together, so the
# encodings of recent values and id lists are memoised; a cache is emptied
# when full, which bounds a worker's memory.
_CACHE_SIZE = 1 << 18
_LIST_CACHE_SIZE = 1 << 12


def _compute_varint(value):
    """Protobuf base-128 varint; negative int64 as 10-byte two's complement."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_VARINTS = {v: _compute_varint(v) for v in range(0x4000)}


def _varint(value):
    encoded = _VARINTS.get(value)
    if encoded is None:
        encoded = _compute_varint(value)
        if len(_VARINTS) >= _CACHE_SIZE:
            _VARINTS.clear()
            _VARINTS.update((v, _compute_varint(v)) for v in range(0x4000))
        _VARINTS[value] = encoded
    return encoded


def _length_delimited(tag, payload):
    return tag + _varint(len(payload)) + payload


def _int64_feature(values):
    if not values:
        return _TAG_3 + b"\x00"
    packed = b"".join(map(_varint, values))
    return _length_delimited(_TAG_3, _length_delimited(_TAG_1, packed))


def _float_feature(values):
    if not values:
        return _TAG_2 + b"\x00"
    packed = struct.pack(f"<{len(values)}f", *values)
    return _length_delimited(_TAG_2, _length_delimited(_TAG_1, packed))


def _bytes_feature(values):
    payload = b"".join(
        _length_delimited(_TAG_1, v.encode("utf-8")) for v in values
    )
    return _length_delimited(_BYTES_LIST, payload)


class ExampleEncoder:
    """Serializes contract rows as `tf.train.Example` protos, without TF.

    Writes the protobuf wire format directly (Example -> Features -> map of
    Feature), which keeps TensorFlow out of the Beam workers and is several
    times faster than building proto objects: the bytes around a scalar
    value are precomputed per feature. Values are stored raw, per
    `schema.json` kind: categorical_int -> int64_list with 1 value,
    categorical_string -> bytes_list with 1 value, multi_categorical ->
    int64_list/bytes_list of 0..n values (+ float_list `<name>__weight`),
    numeric -> float_list with 1 value, labels -> int64_list, extra columns
    -> float_list. Features are written in schema order, so the bytes are
    deterministic.

    A missing scalar (None) is left out of the Example, so that
    `tf.io.FixedLenFeature(default_value=...)` fills it in; an empty list
    would make `tf.io.parse_example` fail. Multi-valued features are always
    written (0..n values).

    Args:
        schema: `tfcvr.features.Schema`.
    """

    def __init__(self, schema):
        self.schema = schema
        fields = []
        for f in schema.features:
            if f.kind == keys.NUMERIC:
                fields.append((f.name, _float_feature, False))
            else:
                encode = (
                    _bytes_feature if f.value_dtype == "string" else _int64_feature
                )
                fields.append((f.name, encode, f.is_multi_valued))
            if f.is_multi_valued and f.weighted:
                fields.append((f.name + keys.WEIGHT_SUFFIX, _float_feature, True))
        fields += [(label, _int64_feature, False) for label in schema.labels]
        fields += [(c, _float_feature, False) for c in schema.extra_columns]
        self._encoders = [
            (name, _field_encoder(name, encode, multi))
            for name, encode, multi in fields
        ]

    def encode(self, row):
        """Serialized `tf.train.Example` bytes of one row dict."""
        get = row.get
        body = b"".join([encode(get(name)) for name, encode in self._encoders])
        return _TAG_1 + _varint(len(body)) + body


def _entry(key_part, feature):
    """One `Features.feature` map entry around a serialized Feature."""
    return _length_delimited(_TAG_1, key_part + _length_delimited(_TAG_2, feature))


def _field_encoder(name, encode, multi):
    """A function value -> map entry bytes, fast for scalar values."""
    key_part = _length_delimited(_TAG_1, name.encode("utf-8"))
    if multi:
        empty = _entry(key_part, encode(()))
        cache = {}
        is_float = encode is _float_feature

        def encode_list(values):
            if not values:
                return empty
            key = tuple(values)
            entry = cache.get(key)
            if entry is None:
                entry = _entry(key_part, encode(key))
                # -0.0 == 0.0 but packs differently: such lists are not
                # memoised.
                if not (is_float and 0.0 in key):
                    if len(cache) >= _LIST_CACHE_SIZE:
                        cache.clear()
                    cache[key] = entry
            return entry

        return encode_list
    # A missing scalar leaves its key out: tf.io.FixedLenFeature applies its
    # default_value only to absent keys and rejects a present empty list.
    missing = b""
    if encode is _float_feature:
        # entry = prefix + 4 bytes: the lengths around one float are fixed.
        prefix = _entry(key_part, _float_feature((0.0,)))[:-4]
        pack = struct.Struct("<f").pack

        def encode_float(value):
            return missing if value is None else prefix + pack(value)

        return encode_float
    if encode is _int64_feature:
        # entry = prefix(len(varint)) + varint; whole entries are memoised.
        prefixes = {}
        entries = {}

        def encode_int(value):
            entry = entries.get(value)
            if entry is not None:
                return entry
            if value is None:
                return missing
            v = _varint(value)
            prefix = prefixes.get(len(v))
            if prefix is None:
                prefix = _entry(key_part, _int64_feature((value,)))[: -len(v)]
                prefixes[len(v)] = prefix
            entry = prefix + v
            if len(entries) >= _CACHE_SIZE:
                entries.clear()
            entries[value] = entry
            return entry

        return encode_int

    def encode_scalar(value):
        return missing if value is None else _entry(key_part, encode((value,)))

    return encode_scalar
