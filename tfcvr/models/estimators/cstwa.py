import keras
import numpy as np
from keras import ops

from tfcvr.features import keys
from tfcvr.layers.backbones.independent_towers import IndependentTowers
from tfcvr.layers.embedding.feature_embedding import FeatureEmbedding
from tfcvr.layers.graph.graph_propagation import GraphPropagation
from tfcvr.layers.graph.graph_propagation import LAYER_COMBINATIONS
from tfcvr.layers.graph.top_k_neighbour_graph import TopKNeighbourGraph
from tfcvr.layers.graph.top_k_neighbour_graph import WEIGHTINGS
from tfcvr.losses import functional as F
from tfcvr.models.cvr_model import CVRModel
from tfcvr.models.cvr_model import check_weights
from tfcvr.models.pretraining_stage import PretrainingStage
from tfcvr.models.registry import register_estimator

GATE_ACTIVATIONS = ("lhuc", "sigmoid")
GATE_SOURCES = ("layer", "last")
LOGIT_REWEIGHTINGS = ("lhuc", "none")
ESCAPER_FORMS = ("power", "one_plus")
ESCAPER_TARGETS = ("ctcvr", "cvr")
ESCAPER_NORMALISATIONS = ("batch", "per_label")
# Below any weight a batch can produce; keeps x / 0 out of the normaliser.
_TINY = 1e-30


@register_estimator(
    "cstwa",
    paper="Ouyang et al., Click-aware Structure Transfer with Sample Weight "
    "Assignment (CSTWA), ECML-PKDD 2023 — equations reconstructed from the "
    "abstract; see docstring",
)
class CSTWA(CVRModel):
    """CSTWA: a CTR tower and a conversion tower with CVR-specific
    embeddings, a Structure Migrator, a Click Perceptron and a Curse Escaper.

    **Reconstructed.** Neither the paper's equations nor its code could be
    retrieved (estimators.md §9). What the abstract states is implemented
    as stated; every equation below is a reading, exposed as an argument,
    and is not the paper's equation until checked against the PDF.

    Known from the abstract: two towers trained on the entire impression
    space; the CVR task does not directly share CTR representations, so the
    conversion tower has embedding tables of its own (`cvr_embedding`);
    the **Structure Migrator** mines collaborative-filtering structure
    (user–user and item–item graphs) from *pre-trained, frozen* CTR
    embeddings and injects it into the CVR-specific embeddings by message
    passing; the **Click Perceptron** uses the CTR tower's hidden
    representation as click-bias information, "calibrating the
    representation layer and reweighting the discriminant layer" by
    multiplicative scaling; the **Curse Escaper** up-weights contradictory
    rows (high pCTR without conversion, low pCTR with conversion) with a
    focusing exponent γ.

    Readings (the math, then why each default):

    - Structure Migrator. From the frozen CTR table `E^ctr` of the schema's
      `user_id` and `item_id` fields, `TopKNeighbourGraph` keeps the top-K
      cosine neighbours of every row; `GraphPropagation` replaces the CVR
      embedding of those fields by `ẽ_i = w_self e^cvr_i + Σ_j α_ij e^cvr_j`
      (`graph_hops` times). Reading: K = 10 (default because it is the
      common kNN-graph size, e.g. LATTICE's; the abstract gives none);
      `α_ij = 1/K` (`graph_weighting="uniform"`, default because it needs
      no temperature, for which the abstract gives no value, and is the
      mean aggregation of a plain top-K graph; `"softmax"` uses
      `softmax_j(s_ij / graph_temperature)`); `w_self = 1`, one hop, the
      last hop's output (defaults because that is the one-hop form the
      reference reconstruction states). Padding and OOV rows (index 0 and
      the OOV buckets, `keys.PADDING_INDEX`) neither have nor are
      neighbours: their structure is not learnt from clicks. Other fields
      sharing the item table (e.g. a clicked-item history) keep their
      plain CVR vectors: the graphs are over the user and the item, the
      two fields the abstract names. The graphs are built once, by
      `set_pretrained_tables`, and stored in non-trainable weights, so
      `.keras` files and SavedModels carry them.
    - Click Perceptron. With `h^ctr_l` the CTR tower's layer-l output
      (`h^ctr_0` its input embeddings), each CVR tower layer is gated
      `h^cvr_l ← h^cvr_l ⊙ 2σ(W_l g(h^ctr_l) + b_l)`, and the CVR logit is
      rescaled `z ← z · 2σ(v · g(h^ctr_L) + c)`. Reading: the LHUC form
      `2σ(·)` (default because, with the zero-initialised kernels used
      here, every gate starts at exactly 1, the plain two-tower model, and
      can both amplify and damp; `"sigmoid"` can only damp); the gate of
      layer l reads the CTR layer of the same depth (`gate_source="layer"`,
      default because "calibrate the representation layer" suggests a
      layer-wise calibration; `"last"` reads `h^ctr_L` everywhere); the
      tower layers are gated, the embedding layer only with
      `gate_embedding=True` (the abstract's "representation layer" read
      literally); `g = stop_gradient` (`stop_gradient_click_bias=True`,
      default because the premise is that CTR knowledge should inform CVR
      without CVR reshaping the click model, as PEPNet's gates also read
      stop-gradient inputs); "reweight the discriminant layer" read as the
      logit rescaling (`logit_reweighting="lhuc"`; `"none"` drops it).
    - Curse Escaper. `w_i = |y_i − sg(ô_i)|^γ` (`escaper_form="power"`, the
      reference reconstruction's first reading) or `(1 + |y_i − sg(ô_i)|)^γ`
      (`"one_plus"`), ô clipped to `[ε, 1 − ε]`, then divided by their mean
      over the term's rows so the batch mean is 1, under `stop_gradient`.
      Large for false positives (ô high, y = 0) and false negatives (ô low,
      y = 1); γ = 0 is exactly unweighted. Reading: it weights the CTCVR
      term over all rows with `y = o·r` (`escaper_target="ctcvr"`, default
      because the abstract trains on the entire impression space), or the
      click-space CVR term with `y = r` (`"cvr"`, needs `cvr_weight > 0`);
      γ = 1 (default because the base here is pCTR, ≈ 0.04 on Ali-CCP, not
      the model's own error as in focal loss, so focal loss's γ = 2 would
      leave most negatives with a weight near 0; the abstract warns that a
      large γ over-fits noisy rows). The weights are divided by one mean
      over the term's rows (`escaper_normalisation="batch"`, the issue's
      "batch mean 1") or by a mean per label value (`"per_label"`, which
      keeps the positives' and the negatives' total weights).
      **Measured** (docs/leaderboard.md, simulated data, 3 seeds): every
      reading here lowers `cvr_auc_true` against the same model without
      the escaper (bias 2: the default by 0.20, `"one_plus"` by 0.03,
      `"per_label"` by 0.30): with `"batch"` the weights over-weight the
      purchases (pCVR 1.6–5.5x too high), with `"per_label"` a negative
      weighs about its pCTR, so the many low-pCTR impressions hardly
      constrain pCVR. Until the paper's weight can be read, train with
      `use_curse_escaper=False` for a calibrated model.
    - Objective: `L = w_ctr mean_D BCE(o, ô) + w_ctcvr mean_D w_i BCE(o r, ô r̂)
      + w_cvr Σ_D o_i w_i BCE(r, r̂) / Σ_D o_i`, the last term only when
      `cvr_weight > 0` (default 0: the entire-space ESMM objective the
      abstract's "entire impression space" points to). The paper's L2
      regularisation is left to the optimizer (weight decay).
    - Pre-training (`pretraining`): `tfcvr train --model cstwa` first trains
      the zoo's `esmm` with `ctcvr_weight=0`, i.e. a plain CTR model (its
      embeddings are shaped by the click loss alone, the abstract's
      "pre-trained CTR embeddings"; its CVR tower is untrained and unused),
      with CSTWA's `embedding_dim` and backbone, then hands its user and
      item tables over. `--param ctr_model=NAME`,
      `--param ctr_params.KEY=VALUE` choose another model (e.g.
      `ctr_params.ctcvr_weight=1` for ESMM's shared embeddings), and
      `--param ctr_model_dir=DIR` reuses a trained model directory.

    Reference: Ouyang, Zheng, Tang, Xiao, Zheng, "Click-aware Structure
    Transfer with Sample Weight Assignment for Post-Click Conversion Rate
    Estimation", ECML-PKDD 2023 (arXiv 2304.01169).

    Args:
        ctr_weight: float. `w_ctr`. Defaults to 1.0.
        ctcvr_weight: float. `w_ctcvr`. Defaults to 1.0.
        cvr_weight: float. `w_cvr` of the click-space CVR term. Defaults to 0.
        use_structure_migrator: bool. Ablation switch. Defaults to True.
        use_click_perceptron: bool. Ablation switch. Defaults to True.
        use_curse_escaper: bool. Ablation switch. Defaults to True.
        graph_num_neighbours: int. K. Defaults to 10.
        graph_weighting: str. `"uniform"` or `"softmax"`. Defaults to
            `"uniform"`.
        graph_temperature: float. τ of `"softmax"`. Defaults to 0.1.
        graph_self_weight: float. `w_self`. Defaults to 1.0.
        graph_hops: int. Defaults to 1.
        graph_layer_combination: str. `"last"` or `"mean"` (LightGCN's layer
            mean). Defaults to `"last"`.
        graph_block_size: int. Rows per block of the graph build. Defaults
            to 512.
        gate_activation: str. `"lhuc"` (`2σ`) or `"sigmoid"`. Defaults to
            `"lhuc"`.
        gate_source: str. `"layer"` or `"last"`. Defaults to `"layer"`.
        gate_embedding: bool. Also gate the CVR tower's input embeddings.
            Defaults to False.
        logit_reweighting: str. `"lhuc"` or `"none"`. Defaults to `"lhuc"`.
        stop_gradient_click_bias: bool. The gates read the CTR tower
            through `stop_gradient`, so CVR gradients do not reach it.
            Defaults to True.
        escaper_gamma: float. γ >= 0. Defaults to 1.0.
        escaper_form: str. `"power"` or `"one_plus"`. Defaults to `"power"`.
        escaper_target: str. `"ctcvr"` or `"cvr"`. Defaults to `"ctcvr"`.
        escaper_normalisation: str. `"batch"` (one mean over the term's
            rows) or `"per_label"` (a mean per label value, so positives and
            negatives each keep their total weight). Defaults to `"batch"`.
        **kwargs: `CVRModel` arguments (schema, embedding_dim, backbone, ...).
            The backbone must be `"towers"` (the gates pair the two towers
            layer by layer).

    Outputs: `(batch, 1)` `ctr`, `cvr` and `ctcvr = ctr * cvr`.

    Example:
        model = tfcvr.models.CSTWA(schema=schema)
        model.set_pretrained_tables({schema.user_id: users, schema.item_id: items})
        model.compile(optimizer="adam")
        model.fit(dataset_dir.dataset("train", 4096), epochs=1)
    """

    tasks = (keys.CTR, keys.CVR)
    pretraining = PretrainingStage(
        name="ctr",
        estimator="esmm",
        params={"ctcvr_weight": 0.0},
        description="CTR model whose frozen user/item embeddings give "
        "CSTWA's graphs",
    )

    def __init__(
        self,
        schema,
        ctr_weight=1.0,
        ctcvr_weight=1.0,
        cvr_weight=0.0,
        use_structure_migrator=True,
        use_click_perceptron=True,
        use_curse_escaper=True,
        graph_num_neighbours=10,
        graph_weighting="uniform",
        graph_temperature=0.1,
        graph_self_weight=1.0,
        graph_hops=1,
        graph_layer_combination="last",
        graph_block_size=512,
        gate_activation="lhuc",
        gate_source="layer",
        gate_embedding=False,
        logit_reweighting="lhuc",
        stop_gradient_click_bias=True,
        escaper_gamma=1.0,
        escaper_form="power",
        escaper_target="ctcvr",
        escaper_normalisation="batch",
        **kwargs,
    ):
        super().__init__(schema, **kwargs)
        schema = self.schema  # a Schema, also when given as its dict
        check_weights(
            ctr_weight=ctr_weight,
            ctcvr_weight=ctcvr_weight,
            cvr_weight=cvr_weight,
            escaper_gamma=escaper_gamma,
        )
        for name, value in (
            ("use_structure_migrator", use_structure_migrator),
            ("use_click_perceptron", use_click_perceptron),
            ("use_curse_escaper", use_curse_escaper),
            ("gate_embedding", gate_embedding),
            ("stop_gradient_click_bias", stop_gradient_click_bias),
        ):
            if not isinstance(value, bool):
                raise ValueError(
                    f"{name} must be true or false. Received: {name}={value!r}"
                )
        for name, value, choices in (
            ("graph_weighting", graph_weighting, WEIGHTINGS),
            ("graph_layer_combination", graph_layer_combination,
             LAYER_COMBINATIONS),
            ("gate_activation", gate_activation, GATE_ACTIVATIONS),
            ("gate_source", gate_source, GATE_SOURCES),
            ("logit_reweighting", logit_reweighting, LOGIT_REWEIGHTINGS),
            ("escaper_form", escaper_form, ESCAPER_FORMS),
            ("escaper_target", escaper_target, ESCAPER_TARGETS),
            ("escaper_normalisation", escaper_normalisation,
             ESCAPER_NORMALISATIONS),
        ):
            if value not in choices:
                raise ValueError(
                    f"{name} must be one of {choices}. Received: "
                    f"{name}={value!r}"
                )
        if use_curse_escaper and escaper_target == "cvr" and not cvr_weight:
            raise ValueError(
                "escaper_target='cvr' weights the click-space CVR term, "
                "which cvr_weight=0 switches off; set cvr_weight > 0. "
                f"Received: cvr_weight={cvr_weight!r}"
            )
        if not isinstance(self.backbone, IndependentTowers):
            raise ValueError(
                "CSTWA's Click Perceptron pairs the CTR and CVR towers layer "
                "by layer, so it needs backbone='towers'. Received: "
                f"backbone={type(self.backbone).__name__}"
            )
        graph_fields = self._graph_fields(schema, use_structure_migrator)

        # === Layers ===
        # The conversion tower's own tables: CVR does not share the CTR
        # representations (the abstract), it receives their structure.
        self.cvr_embedding = FeatureEmbedding(
            schema,
            embedding_dim=self.embedding_dim,
            combiner=self.embedding_combiner,
            output_mode="stack",
            table_layout=self.embedding_layout,
            dtype=self.dtype_policy,
            name="cvr_embedding",
        )
        self.graph_builder = TopKNeighbourGraph(
            num_neighbours=graph_num_neighbours,
            weighting=graph_weighting,
            temperature=graph_temperature,
            block_size=graph_block_size,
            name="graph_builder",
        )
        self.propagations = {
            name: GraphPropagation(
                num_nodes=schema[name].input_dim,
                num_neighbours=graph_num_neighbours,
                self_weight=graph_self_weight,
                hops=graph_hops,
                layer_combination=graph_layer_combination,
                name=f"structure_migrator_{name}",
            )
            for name in graph_fields
        }
        # Zero kernels: every gate starts at its neutral value (1 for LHUC).
        gate = {"kernel_initializer": "zeros", "dtype": self.dtype_policy}
        self.layer_gates = [
            keras.layers.Dense(units, name=f"click_gate_{i + 1}", **gate)
            for i, units in enumerate(self.backbone.hidden_units)
        ] if use_click_perceptron else []
        self.embedding_gate = keras.layers.Dense(
            len(schema.features) * self.embedding_dim,
            name="click_gate_0", **gate,
        ) if use_click_perceptron and gate_embedding else None
        self.logit_gate = keras.layers.Dense(
            1, kernel_initializer="zeros", dtype="float32",
            name="click_logit_gate",
        ) if use_click_perceptron and logit_reweighting != "none" else None

        # === Config ===
        self.ctr_weight = ctr_weight
        self.ctcvr_weight = ctcvr_weight
        self.cvr_weight = cvr_weight
        self.use_structure_migrator = use_structure_migrator
        self.use_click_perceptron = use_click_perceptron
        self.use_curse_escaper = use_curse_escaper
        self.graph_num_neighbours = graph_num_neighbours
        self.graph_weighting = graph_weighting
        self.graph_temperature = graph_temperature
        self.graph_self_weight = graph_self_weight
        self.graph_hops = graph_hops
        self.graph_layer_combination = graph_layer_combination
        self.graph_block_size = graph_block_size
        self.gate_activation = gate_activation
        self.gate_source = gate_source
        self.gate_embedding = gate_embedding
        self.logit_reweighting = logit_reweighting
        self.stop_gradient_click_bias = stop_gradient_click_bias
        self.escaper_gamma = escaper_gamma
        self.escaper_form = escaper_form
        self.escaper_target = escaper_target
        self.escaper_normalisation = escaper_normalisation

    @staticmethod
    def _graph_fields(schema, use_structure_migrator):
        if not use_structure_migrator:
            return []
        fields = [f for f in (schema.user_id, schema.item_id) if f is not None]
        if not fields:
            raise ValueError(
                "CSTWA's Structure Migrator builds user-user and item-item "
                "graphs, so the schema must name a user_id or an item_id "
                "(or set use_structure_migrator=False). Received: "
                "user_id=None, item_id=None"
            )
        for name in fields:
            spec = schema[name]
            if not spec.is_categorical or spec.is_multi_valued:
                raise ValueError(
                    f"CSTWA's graphs are over single-valued categorical ids. "
                    f"Received: {name} of kind {spec.kind!r}"
                )
        return list(dict.fromkeys(fields))

    def build(self, input_shape=None):
        if self.built:
            return
        # The towers are walked layer by layer, never called whole, so they
        # are built here (both take `num_fields * dim` field vectors).
        self.backbone.build(
            (None, len(self.schema.features) * self.embedding_dim))
        super().build(input_shape)

    # === Two-stage training (see `PretrainingStage`) ===

    def pretrained_tables_wanted(self):
        """Features whose frozen CTR tables the graphs are built from."""
        return tuple(self.propagations)

    def set_pretrained_tables(self, tables):
        """Builds and stores the graphs from `{feature: (rows, d) array}`."""
        if not self.built:
            self.build()
        for name, propagation in self.propagations.items():
            if name not in tables:
                raise ValueError(
                    f"CSTWA needs the pre-trained table of `{name}`. "
                    f"Received tables: {sorted(tables)}"
                )
            table = np.asarray(keras.ops.convert_to_numpy(tables[name]))
            spec = self.schema[name]
            if table.ndim != 2 or table.shape[0] != spec.input_dim:
                raise ValueError(
                    f"The pre-trained table of `{name}` must have "
                    f"{spec.input_dim} rows (its vocabulary). Received: "
                    f"shape={table.shape}"
                )
            reserved = 1 + (0 if spec.hash_buckets is not None else spec.num_oov)
            node_mask = np.arange(spec.input_dim) >= keys.PADDING_INDEX + reserved
            indices, weights = self.graph_builder(table, node_mask=node_mask)
            propagation.set_graph(indices, weights)

    # === Forward ===

    def task_logits(self, features, training=False):
        ctr_tower, cvr_tower = self.backbone.towers
        hidden = [self.embedding(features)]
        for i in range(len(ctr_tower.dense_layers)):
            hidden.append(_tower_layer(ctr_tower, i, hidden[-1], training))
        bias = [ops.stop_gradient(h) if self.stop_gradient_click_bias else h
                for h in hidden]
        x = self._cvr_inputs(features)
        if self.embedding_gate is not None:
            x = x * self._gate(self.embedding_gate, self._source(bias, 0))
        for i in range(len(cvr_tower.dense_layers)):
            x = _tower_layer(cvr_tower, i, x, training)
            if self.layer_gates:
                x = x * self._gate(self.layer_gates[i], self._source(bias, i + 1))
        cvr_logit = self.heads[1](ops.cast(x, "float32"))
        if self.logit_gate is not None:
            cvr_logit = cvr_logit * 2.0 * ops.sigmoid(
                self.logit_gate(ops.cast(bias[-1], "float32"))
            )
        return {
            keys.CTR: self.heads[0](ops.cast(hidden[-1], "float32")),
            keys.CVR: cvr_logit,
        }

    def _source(self, bias, level):
        return bias[level] if self.gate_source == "layer" else bias[-1]

    def _gate(self, dense, source):
        scale = ops.sigmoid(dense(source))
        return 2.0 * scale if self.gate_activation == "lhuc" else scale

    def _cvr_inputs(self, features):
        """The CVR-specific field vectors, the user and item ones carrying
        the migrated structure; `(batch, num_fields * dim)`."""
        fields = self.cvr_embedding(features)
        if self.use_structure_migrator:
            # One unstack, whose gradient is one stack, where a slice per
            # field would each cost a full-size zero gradient.
            unstacked = ops.unstack(fields, axis=1)
            columns = []
            for index, spec in enumerate(self.schema.features):
                propagation = self.propagations.get(spec.name)
                if propagation is None:
                    columns.append(unstacked[index])
                    continue
                table, first_row = self.cvr_embedding.table_rows_of(
                    spec.embedding_group or spec.name
                )
                ids = ops.reshape(ops.cast(features[spec.name], "int32"), (-1,))
                columns.append(ops.cast(
                    propagation([table, ids], row_offset=first_row),
                    fields.dtype,
                ))
            fields = ops.stack(columns, axis=1)
        return ops.reshape(
            fields, (-1, len(self.schema.features) * self.embedding_dim)
        )

    # === Objective ===

    def curse_weights(self, target, ctr, rows):
        """Curse Escaper weights `(batch,)`: `|y − sg(ô)|^γ` (or
        `(1 + |y − sg(ô)|)^γ`) on the 0/1 `rows`, 0 elsewhere, divided by
        their mean over `rows` (`"per_label"`: over the rows of the same
        label); all 1 when the escaper is off."""
        rows = F.flat(rows)
        if not self.use_curse_escaper:
            return rows
        ctr = ops.clip(ops.stop_gradient(F.flat(ctr)), self.epsilon,
                       1.0 - self.epsilon)
        gap = ops.abs(F.flat(target) - ctr)
        base = gap if self.escaper_form == "power" else 1.0 + gap
        raw = rows * ops.power(base, self.escaper_gamma)
        groups = [rows]
        if self.escaper_normalisation == "per_label":
            positive = F.flat(target)
            groups = [rows * positive, rows * (1.0 - positive)]
        weights = ops.zeros_like(raw)
        for group in groups:
            mean = F.batch_sum(group * raw) / ops.maximum(
                F.batch_sum(group), 1.0)
            weights = weights + group * raw / ops.maximum(mean, _TINY)
        return ops.stop_gradient(weights)

    def loss_terms(self, labels, outputs):
        click = F.flat(labels[keys.CLICK])
        conversion = F.flat(labels[keys.CONVERSION])
        ctr = F.flat(outputs[keys.CTR])
        everyone = ops.ones_like(click)
        ctcvr_weights = (
            self.curse_weights(click * conversion, ctr, everyone)
            if self.escaper_target == "ctcvr" else everyone
        )
        terms = {
            "ctr": self.ctr_weight * F.batch_mean(self.bce(click, ctr)),
            "ctcvr": self.ctcvr_weight * F.batch_mean(
                ctcvr_weights * self.bce(click * conversion,
                                         outputs[keys.CTCVR])
            ),
        }
        if self.cvr_weight:
            cvr_weights = (
                self.curse_weights(conversion, ctr, click)
                if self.escaper_target == "cvr" else click
            )
            # This replica's rows over the global batch's clicks.
            terms["cvr"] = self.cvr_weight * ops.sum(
                cvr_weights * self.bce(conversion, outputs[keys.CVR])
            ) / ops.maximum(F.batch_sum(click), 1.0)
        return terms


def _tower_layer(mlp, i, x, training):
    """Layer `i` of an `MLP` on its own (what `MLP.call` does at step `i`),
    so the two towers can be walked in lock step."""
    x = mlp.dense_layers[i](x)
    if mlp.batch_norm:
        x = mlp.activation(mlp.norm_layers[i](x, training=training))
    if mlp.dropout > 0:
        x = mlp.dropout_layers[i](x, training=training)
    return x
