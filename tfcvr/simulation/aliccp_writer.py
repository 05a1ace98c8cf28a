import io
import os

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from tfcvr.simulation import simulator as sim
from tfcvr.features import keys

# === The raw Ali-CCP format (Tianchi dataset 408) ===
# sample_skeleton_{split}.csv:
#   sample_id,click,conversion,common_feature_index,num_features,feature_list
# common_features_{split}.csv:
#   common_feature_index,num_features,feature_list
# feature_list: entries `field_id \x02 feature_id \x03 value` joined by \x01.
# No header lines, as in the real files.
SKELETON_FILE = keys.ALICCP_SKELETON_FILE
COMMON_FILE = keys.ALICCP_COMMON_FILE
GROUND_TRUTH_FILE = "ground_truth_{}.csv"
SAMPLE_ID = "sample_id"
SPLITS = ("train", "test")

ENTRY_SEPARATOR = keys.ALICCP_ENTRY_SEPARATOR
FIELD_SEPARATOR = keys.ALICCP_FIELD_SEPARATOR
VALUE_SEPARATOR = keys.ALICCP_VALUE_SEPARATOR

# Ali-CCP field id -> simulated column: user side (common features).
USER_FIELDS = (
    ("101", sim.USER_ID),
    ("121", sim.USER_PROFILE),
    ("122", sim.USER_GROUP),
    ("124", sim.GENDER),
    ("125", sim.AGE),
    ("126", sim.CONSUMPTION_LEVEL),
    ("127", sim.CONSUMPTION_LEVEL_2),
    ("128", sim.OCCUPATION),
    ("129", sim.CITY),
)
# Multi-valued behaviour fields: past clicks on categories, shops, brands,
# intention nodes; value = log(1 + count).
BEHAVIOUR_FIELDS = (
    ("109_14", sim.CATEGORY),
    ("110_14", sim.SHOP),
    ("127_14", sim.BRAND),
    ("150_14", sim.INTENTION),
)
# Item side (skeleton), one value each.
ITEM_FIELDS = (
    ("205", sim.ITEM_ID),
    ("206", sim.CATEGORY),
    ("207", sim.SHOP),
    ("210", sim.INTENTION),
    ("216", sim.BRAND),
    ("301", sim.SCENARIO),
)
# User x item combinations (behaviour field x item field), present only
# when the user clicked the item's value before; value = log(1 + count).
COMBINATION_FIELDS = (
    ("508", sim.CATEGORY),
    ("509", sim.SHOP),
    ("702", sim.BRAND),
    ("853", sim.INTENTION),
)
ONE = "1.0"


def _cardinalities(config):
    return {
        sim.USER_ID: config.num_users,
        **sim.PROFILE_CARDINALITIES,
        sim.CITY: config.num_cities,
        sim.ITEM_ID: config.num_items,
        sim.CATEGORY: config.category_count,
        sim.SHOP: config.shop_count,
        sim.INTENTION: config.intention_count,
        sim.BRAND: config.brand_count,
        sim.SCENARIO: config.num_scenarios,
    }


def feature_id_offsets(config):
    """Field id -> offset: feature id = offset + 1-based value id.

    Feature ids are global integers, distinct across fields (as in the real
    data), assigned field after field in the order of the tables above.
    """
    card = _cardinalities(config)
    offsets, next_id = {}, 0
    for fields in (USER_FIELDS, BEHAVIOUR_FIELDS, ITEM_FIELDS, COMBINATION_FIELDS):
        for field_id, column in fields:
            offsets[field_id] = next_id
            next_id += card[column]
    return offsets


def _session_key(seed, session):
    """16 hex digits per session (splitmix64), like Ali-CCP's md5 keys."""
    with np.errstate(over="ignore"):
        x = np.asarray(session, dtype=np.uint64) + np.uint64(
            (seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % (1 << 64)
        )
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return np.array([f"{v:016x}" for v in x.tolist()], dtype=object)


def csv_bytes(columns):
    """UTF-8 CSV lines (no header) of a dict of equal-length numpy arrays.

    pyarrow writes floats in their shortest round-trip form (float32
    columns stay short) and never quotes, which is safe because simulated
    strings hold no comma, quote or newline.
    """
    buffer = io.BytesIO()
    table = pa.table({name: pa.array(values) for name, values in columns.items()})
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    pa_csv.write_csv(table, buffer, write_options=options)
    return buffer.getvalue()


def _value_strings(max_count):
    return np.array(
        [f"{np.log1p(c):.5f}" for c in range(max_count + 1)], dtype=object
    )


class AliccpWriter:
    """Writes simulated impressions in the raw Ali-CCP (Tianchi 408) format.

    The first half of the rows in time (`ceil(rows / 2)`) goes to the
    `train` files, the rest to `test`. Each `common_feature_index` is one
    session (one user context); its common row holds the user fields 101,
    121-129 and the behaviour fields 109_14, 110_14, 127_14, 150_14, and is
    written to every split that has impressions of the session. Skeleton
    rows hold the item fields 205, 206, 207, 210, 216, 301 and the
    combination fields 508, 509, 702, 853. Common rows of a chunk are
    written in key order, not in skeleton order, as the real files allow.
    Ground truth, which the raw format has no place for, goes to
    `ground_truth_{split}.csv` (with a header): `sample_id, true_ctr,
    true_cvr, conversion_if_clicked`; `sample_id` equals the `row_id` of
    the csv/parquet output for the same seed.

    Args:
        out_dir: str. Existing directory to write into.
        simulator: `Simulator`. Source of the world (user fields, behaviour).
        rows: int. Total rows that will be written (fixes the split point).
    """

    def __init__(self, out_dir, simulator, rows):
        if rows < 1:
            raise ValueError(f"rows must be >= 1. Received: rows={rows}")
        self.out_dir = out_dir
        self.simulator = simulator
        self.rows = int(rows)
        self.train_rows = (self.rows + 1) // 2
        config = simulator.config
        self._offsets = feature_id_offsets(config)
        self._values = _value_strings(config.max_history_length)
        self._item_tokens = self._build_item_tokens()
        self._user_rows = None
        self.paths = {}
        self._files = {}
        self.counts = {split: {"skeleton": 0, "common": 0} for split in SPLITS}
        for split in SPLITS:
            for kind, pattern in (
                ("skeleton", SKELETON_FILE),
                ("common", COMMON_FILE),
                ("ground_truth", GROUND_TRUTH_FILE),
            ):
                path = os.path.join(out_dir, pattern.format(split))
                self.paths[(split, kind)] = path
                self._files[(split, kind)] = open(path, "wb")
            header = ",".join([SAMPLE_ID, *sim.GROUND_TRUTH_COLUMNS]) + "\n"
            self._files[(split, "ground_truth")].write(header.encode())

    # === Token tables ===

    def _token_table(self, field_id, size, leading=True):
        """Entry strings `field\x02id\x03` for 1-based value ids 0..size."""
        offset = self._offsets[field_id]
        head = ENTRY_SEPARATOR if leading else ""
        return np.array(
            [f"{head}{field_id}{FIELD_SEPARATOR}{offset + v}{VALUE_SEPARATOR}"
             for v in range(size + 1)],
            dtype=object,
        )

    def _build_item_tokens(self):
        card = _cardinalities(self.simulator.config)
        tokens = {}
        for position, (field_id, column) in enumerate(ITEM_FIELDS):
            table = self._token_table(field_id, card[column], leading=position > 0)
            tokens[field_id] = table + ONE
        for field_id, column in COMBINATION_FIELDS:
            tokens[field_id] = self._token_table(field_id, card[column])
        return tokens

    def _build_user_rows(self):
        """Per user: (feature_list string, number of entries)."""
        config = self.simulator.config
        users = self.simulator.users
        card = _cardinalities(config)
        n_users = config.num_users
        fixed = np.full(n_users, "", dtype=object)
        for position, (field_id, column) in enumerate(USER_FIELDS):
            table = self._token_table(field_id, card[column], leading=position > 0)
            fixed = fixed + (table + ONE)[users[column]]
        owners, tokens = [], []
        for field_id, column in BEHAVIOUR_FIELDS:
            user, value, count = self.simulator.behaviour(column)
            table = self._token_table(field_id, card[column])
            owners.append(user)
            tokens.append(table[value] + self._values[count])
        owners = np.concatenate(owners)
        order = np.argsort(owners, kind="stable")
        owners, tokens = owners[order], np.concatenate(tokens)[order]
        bounds = np.searchsorted(owners, np.arange(n_users + 1))
        lists = np.empty(n_users, dtype=object)
        for u in range(n_users):
            lists[u] = fixed[u] + "".join(tokens[bounds[u] : bounds[u + 1]])
        counts = len(USER_FIELDS) + np.diff(bounds)
        return lists, counts

    # === Writing ===

    def write(self, chunk):
        """Writes one chunk of `Simulator.iter_chunks(..., context=True)`."""
        row_id = chunk[keys.ROW_ID]
        in_train = row_id <= self.train_rows
        for split, mask in (("train", in_train), ("test", ~in_train)):
            if mask.any():
                part = {name: values[mask] for name, values in chunk.items()}
                self._write_split(split, part)

    def _write_split(self, split, part):
        if self._user_rows is None:
            self._user_rows = self._build_user_rows()
        n = len(part[keys.ROW_ID])
        seed = self.simulator.config.seed
        session_keys = _session_key(seed, part[sim.SESSION])

        feature_list = np.full(n, "", dtype=object)
        for field_id, column in ITEM_FIELDS:
            feature_list = feature_list + self._item_tokens[field_id][part[column]]
        num_features = np.full(n, len(ITEM_FIELDS), dtype=np.int64)
        user = part[sim.USER_INDEX]
        for field_id, column in COMBINATION_FIELDS:
            if column == sim.CATEGORY:
                count = part[sim.CATEGORY_AFFINITY]
            else:
                count = self.simulator.behaviour_count(column, user, part[column])
            present = count > 0
            token = self._item_tokens[field_id][part[column]] + self._values[count]
            feature_list = feature_list + np.where(present, token, "")
            num_features += present
        lines = [
            f"{a},{b},{c},{d},{e},{f}\n"
            for a, b, c, d, e, f in zip(
                part[keys.ROW_ID].tolist(),
                part[keys.CLICK].tolist(),
                part[keys.CONVERSION].tolist(),
                session_keys.tolist(),
                num_features.tolist(),
                feature_list.tolist(),
            )
        ]
        self._files[(split, "skeleton")].write("".join(lines).encode())
        self.counts[split]["skeleton"] += n

        truth = {SAMPLE_ID: part[keys.ROW_ID]}
        truth.update({c: part[c] for c in sim.GROUND_TRUTH_COLUMNS})
        self._files[(split, "ground_truth")].write(csv_bytes(truth))

        sessions, first = np.unique(part[sim.SESSION], return_index=True)
        common_keys = session_keys[first]
        order = np.argsort(common_keys.astype(str), kind="stable")
        lists, counts = self._user_rows
        session_user = user[first][order]
        lines = [
            f"{k},{c},{f}\n"
            for k, c, f in zip(
                common_keys[order].tolist(),
                counts[session_user].tolist(),
                lists[session_user].tolist(),
            )
        ]
        self._files[(split, "common")].write("".join(lines).encode())
        self.counts[split]["common"] += len(sessions)

    def close(self):
        for f in self._files.values():
            f.close()
        self._files = {}

    def files(self):
        """Paths of every written file, in a stable order."""
        return [self.paths[key] for key in sorted(self.paths)]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
