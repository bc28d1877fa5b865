"""Every stage's options: one frozen dataclass per stage, read by the
library function and by its command's flags (`kbert.commands.flags`).

Keras-free on purpose: `kbert COMMAND --help` builds its flags from these
classes without loading Keras or a backend.  The choices the options take
(students, losses, poolings, ...) live here for the same reason.
"""

import dataclasses
import os

from kbert.checks import check_option_types
from kbert.errors import ConfigError
from kbert.registry import STUDENTS

# The BiLSTM student's sentence vector (`kbert.layers.StudentBiLSTM`).
POOLINGS = ("last", "max")
# The student's embedding variants (`kbert.layers.StudentEmbedding`, Kim 2014).
VARIANTS = ("static", "non-static", "multichannel")
# The teacher's splits that teaching materials hold.
SPLITS = ("train", "dev", "test")

# Options a checkpoint's recipe fills in when the caller leaves them None.
RECIPE_FIELDS = ("learning_rate", "epochs")

# Tasks beside GLUE's, read from the user's files (`--train`, `--dev`), by
# the head that answers them (`kbert.model.BertModel(head=...)`,
# `kbert.headtasks`): CoNLL-2003 tagging and SQuAD question answering.
HEAD_TASKS = {"conll": "token", "squad": "span"}
# Their encodings' default lengths: run_squad.py's 384 for SQuAD.
HEAD_TASK_MAX_SEQ_LEN = {"conll": 128, "squad": 384}
GLUE_MAX_SEQ_LEN = 128


# Other spellings of the head tasks (after lower-casing and dropping all
# but letters and digits).
_HEAD_TASK_SPELLINGS = {"conll2003": "conll", "squad1": "squad", "squad11": "squad", "squadv1": "squad",
                        "squadv11": "squad", "squad2": "squad", "squad20": "squad", "squadv2": "squad",
                        "squadv20": "squad"}


def head_task(task):
    """The canonical name ("conll", "squad") of a token or span task (any
    spelling: "CoNLL-2003", "SQuAD v2.0"), else None."""
    if not isinstance(task, str):
        return None
    name = "".join(c for c in task.lower() if c.isalnum())
    return name if name in HEAD_TASKS else _HEAD_TASK_SPELLINGS.get(name)

LOSSES = ("mse", "kl")
EMBEDDINGS = ("teacher", "static")
PAIRS = ("joint", "siamese")
# How the holdout is drawn: rows whose lengths follow the reported split's
# ("length"), or any rows ("random").
HOLDOUT_DRAWS = ("length", "random")
# What picks the epoch on the holdout: the task's metric against gold labels
# ("gold"), agreement with the teacher's labels ("agreement"), or the mean
# KL divergence from the teacher's softmax, lowest best ("kl").
SELECTIONS = ("gold", "agreement", "kl")
# Which teacher layers a transformer student starts from (`kbert.student.teacher_layers`).
LAYER_MAPS = ("bottom", "spread")
NARROW_STARTS = ("projection", "random")
# Which rows of a small student's embedding train: those its training rows
# read ("seen"), or every row ("all"); Adam moves no other row, so both
# learn the same (`kbert.layers.StudentEmbedding`).
EMBEDDING_ROWS = ("seen", "all")


# What runs a teacher pass: this process, or Ray Data actors (`kbert.raydata`;
# `pip install "kbert[ray]"`).
ENGINES = ("local", "ray")


def _check_engine(options):
    """The engine fields that `MaterialsOptions` and `PredictOptions` share."""
    if options.engine not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, got {options.engine!r}")
    if options.engine != "ray" and (options.ray_address is not None or options.workers is not None):
        raise ConfigError("--ray-address and --workers come with --engine ray")
    if options.workers is not None and options.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {options.workers}")


@dataclasses.dataclass(frozen=True)
class DistillOptions:
    """What `distill` does; every field is recorded in run.json.

    Attributes:
        epochs: passes over the training rows.
        batch_size: rows per step (Kim used 50).
        learning_rate: Adam's step size (None: the student's own, 1e-3 for
            the CNN and the BiLSTM, 5e-5 for the transformer; a resumed
            run keeps its own).
        alpha: weight of the gold-label cross-entropy (0 = logits only).
        loss: "mse" (logit regression, Tang et al.) or "kl" (softened outputs).
        temperature: the KL's temperature (ignored by "mse").
        student: "cnn" (Kim's CNN), "bilstm" (Tang et al.'s BiLSTM) or
            "transformer" (a smaller BERT cut from the teacher, `kbert.cut_teacher`).
        units: the BiLSTM's state width per direction.
        pooling: the BiLSTM's sentence vector, "last" states or "max" over
            its outputs.
        pairs: how the BiLSTM reads a sentence pair: "joint", as one
            sequence with [SEP] between, or "siamese", each sentence alone
            through the same layers, matched as [a, b, a * b, |a - b|]
            (Tang et al.).
        layers: the transformer's encoder layers (None: half the teacher's).
        hidden, heads, intermediate: the transformer's hidden size,
            attention heads and feed-forward width (None: the teacher's;
            at the teacher's width it starts from the teacher's layers).
        layer_map: which teacher layers the transformer starts from:
            "bottom" (the first L: on SST-2's demo materials its holdout
            agreement beat "spread"'s by more than one standard error,
            benchmarks/results/transformer-student-sst-2.md) or "spread"
            (evenly, ending with the last, as DistilBERT).
        narrow_start: how a transformer narrower than the teacher starts:
            "projection" (the teacher's layers projected onto its top
            principal axes, its strongest heads and feed-forward units kept,
            `kbert.student.project_teacher`; on SST-2's --full materials a
            2-layer, 256-wide student's holdout agreement was 0.9436
            against random's 0.9302, one standard error 0.004,
            benchmarks/results/transformer-students-full-sst-2.md) or
            "random" (BERT's initialisation).  None: "projection" where it
            fits (a student no wider than the teacher in hidden size,
            heads, head size and feed-forward width), else "random"; a
            resumed run keeps its own (runs before the option: "random").
        hidden_weight: the transformer's hidden-state loss (TinyBERT): the
            mean squared error between each of its layers' outputs (and
            its embeddings'), projected to the teacher's width where they
            differ, and the teacher layer it is matched to: student layer
            m of L to teacher layer m * N / L of N (TinyBERT's map,
            `teacher_layers(L, N, "spread")`).  0: off (on SST-2's --full
            materials, weight 1 gave a 3-layer student no gain on held-out
            rows, 0.9774 against 0.9780, at 64% more time per epoch).
        attention_weight: the transformer's attention loss: the KL from
            each matched teacher layer's attention distributions to the
            student layer's (MiniLM's distribution loss).  0: off.
        variant: the student's embedding, "static", "non-static" or "multichannel".
        embedding_dim: None keeps the teacher's width; smaller projects it.
        embedding_rows: which rows of the CNN's or BiLSTM's embedding are
            trainable: "seen", those the training rows' token ids read, or
            "all".  Adam leaves a row that no training row reads where it
            started, so both give the same student, bit for bit; "seen"
            skips the other rows' updates (on SST-2, 11,572 of 30,522 rows
            train; benchmarks/results/student-steps.md).  None: "seen" for
            a new run, a resumed run's own (runs before the option: "all").
        embedding: the student's starting vectors: "teacher" (its
            `Embedding-Token` rows) or "static" (the materials' static
            vectors, `kbert materials --static-embedding`, through
            `kbert.student.static_start`: PCA, then frequency weighting by
            the training rows' token counts).
        pooled_weight: the weight of a second loss, the mean squared error
            between the teacher's pooled `[CLS]` vectors (`kbert materials
            --pooled`) and a learned projection of the student's sentence
            vector (0: logits only).
        seed: seeds initialisation, dropout and batch order.
        train_splits: materials splits to train on; those absent are skipped
            (so "augmented" and "unlabeled", every unlabeled shard, are used
            when present).
        dev_split: the split reported (and, with holdout 0, the one that
            picks the best epoch).
        holdout: the share of the "train" split held out to pick the best
            epoch (with the augmented rows made from it left out of
            training); 0 picks it on `dev_split`.  None: 0.05 for a new
            run; a resumed run keeps its own (runs before the holdout: 0).
        holdout_draw: "length" draws held-out rows whose lengths (in word
            pieces) follow `dev_split`'s, whose labels are never read;
            "random" draws any rows.  None: "length" for a new run, a
            resumed run's own (runs before the option: "random").
        selection: the holdout score that picks the epoch: "gold" (the
            task's metric), "agreement" (with the teacher's labels) or "kl"
            (mean KL divergence from the teacher's softmax, lowest best).
            The latest epoch within one standard error of the best score is
            kept.  None: "agreement" for a new run, a resumed run's own
            (runs before the option: "gold").
        length_bucketing: batches of similar length (little padding) or, if
            False, random batches (each still trimmed to its longest row).
    """

    epochs: int = 10
    batch_size: int = 50
    learning_rate: float = None
    alpha: float = 0.0
    loss: str = "mse"
    temperature: float = 1.0
    student: str = "cnn"
    # 100, not Tang et al.'s 150: the BiLSTM's speed target (>= 15x the
    # MiniLM teacher, benchmarks/results/throughput-students.md) needs it.
    units: int = 100
    pooling: str = "last"
    pairs: str = "joint"
    layers: int = None
    hidden: int = None
    heads: int = None
    intermediate: int = None
    layer_map: str = "bottom"
    narrow_start: str = None
    # Layer-wise losses of a student cut from the teacher (TinyBERT): the
    # teacher runs in the training step, frozen.
    hidden_weight: float = 0.0
    attention_weight: float = 0.0
    variant: str = "non-static"
    embedding_dim: int = None
    embedding_rows: str = None
    embedding: str = "teacher"
    pooled_weight: float = 0.0
    seed: int = 0
    train_splits: tuple = ("train", "augmented", "unlabeled")
    dev_split: str = "dev"
    holdout: float = None
    holdout_draw: str = None
    selection: str = None
    length_bucketing: bool = True

    def __post_init__(self):
        check_option_types(self)
        if self.holdout is not None and not 0.0 <= self.holdout < 1.0:
            raise ConfigError(f"holdout must be in [0, 1), got {self.holdout}")
        if self.holdout_draw is not None and self.holdout_draw not in HOLDOUT_DRAWS:
            raise ConfigError(f"holdout_draw must be one of {HOLDOUT_DRAWS}, got {self.holdout_draw!r}")
        if self.selection is not None and self.selection not in SELECTIONS:
            raise ConfigError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be positive, got {self.temperature}")
        if self.student not in STUDENTS:
            raise ConfigError(f"student must be one of {tuple(STUDENTS)}, got {self.student!r}")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.units < 1:
            raise ConfigError(f"units must be >= 1, got {self.units}")
        if self.pairs not in PAIRS:
            raise ConfigError(f"pairs must be one of {PAIRS}, got {self.pairs!r}")
        if self.pairs == "siamese" and not STUDENTS[self.student].pairs_apart:
            apart = " or ".join(f"--student {name}" for name, spec in STUDENTS.items() if spec.pairs_apart)
            raise ConfigError(f"--pairs siamese reads a pair's two sides apart, which needs {apart}")
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.pooled_weight < 0:
            raise ConfigError(f"pooled_weight must be 0 or more, got {self.pooled_weight}")
        if self.embedding not in EMBEDDINGS:
            raise ConfigError(f"embedding must be one of {EMBEDDINGS}, got {self.embedding!r}")
        if self.embedding_rows is not None and self.embedding_rows not in EMBEDDING_ROWS:
            raise ConfigError(f"embedding_rows must be one of {EMBEDDING_ROWS}, got {self.embedding_rows!r}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if value < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}")
        for name in ("layers", "hidden", "heads", "intermediate"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.layer_map not in LAYER_MAPS:
            raise ConfigError(f"layer_map must be one of {LAYER_MAPS}, got {self.layer_map!r}")
        if self.narrow_start is not None and self.narrow_start not in NARROW_STARTS:
            raise ConfigError(f"narrow_start must be one of {NARROW_STARTS}, got {self.narrow_start!r}")
        for name in ("hidden_weight", "attention_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more, got {getattr(self, name)}")
            if getattr(self, name) and STUDENTS[self.student].start != "teacher":
                cut = " or ".join(f"--student {n}" for n, spec in STUDENTS.items() if spec.start == "teacher")
                raise ConfigError(f"--{name.replace('_', '-')} matches a student's layers to the teacher's; "
                                  f"it needs a student cut from the teacher ({cut})")
        if STUDENTS[self.student].start == "teacher":
            for name, default in (("embedding", "teacher"), ("variant", "non-static"), ("embedding_dim", None),
                                  ("embedding_rows", None), ("pooled_weight", 0.0)):
                if getattr(self, name) != default:
                    raise ConfigError(f"--{name.replace('_', '-')} shapes the small students' embedding; the "
                                      f"{self.student} student starts from the teacher's own layers")

    def to_dict(self):
        config = dataclasses.asdict(self)
        config["train_splits"] = list(self.train_splits)
        return config


@dataclasses.dataclass(frozen=True)
class FinetuneOptions:
    """What `finetune` does; every field is recorded in run.json.

    `learning_rate` and `epochs` left None come from the checkpoint's recipe
    (`kbert.presets.recipe`): a preset's searched values, or the original
    run_classifier.py values for any other checkpoint.  `resolved()` fills
    them in and says where each came from.
    """

    task: str
    checkpoint: str = "minilm-l6"
    batch_size: int = 32
    learning_rate: float = None
    epochs: int = None
    # None: the task's (GLUE and CoNLL 128, SQuAD run_squad.py's 384).
    max_seq_len: int = None
    max_train_examples: int = None
    seed: int = 42
    warmup_proportion: float = 0.1
    weight_decay: float = 0.01
    cased: bool = False
    # Random batches, each trimmed to its longest row (default), or batches
    # sorted by length within windows of BUCKET_WINDOW batches: ~2.5x less
    # padding on SST-2 but 1.3 (SST-2) to 4 (CoLA MCC) points lower dev
    # scores in benchmarks/results/glue-*.md, so speed is opt-in.
    length_bucketing: bool = False
    # Lay each batch's examples end to end in rows as long as the longest
    # example (`kbert.packing`): the same batches, logits and gradients as
    # unpacked, with ~2.7x fewer token slots on SST-2
    # (benchmarks/results/training-*.md).  None: packed, except that a
    # resumed run keeps the layout it began with (runs before packing: not).
    # A token or span task is never packed: its loss reads every position.
    packing: bool = None
    # The training and dev files of a token or span task (CoNLL-2003 or
    # SQuAD JSON); GLUE tasks read theirs from the GLUE data directory.
    train: str = None
    dev: str = None

    def __post_init__(self):
        check_option_types(self)
        for name in ("batch_size",) + tuple(n for n in ("epochs", "max_seq_len") if getattr(self, n) is not None):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)!r}")
        if self.max_train_examples is not None and self.max_train_examples < 1:
            raise ConfigError("--max-train-examples must be at least 1")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ConfigError("--learning-rate must be positive")
        if not 0 <= self.warmup_proportion < 1:
            raise ConfigError("--warmup-proportion must be in [0, 1)")

    def resolved(self):
        """(options with the task's canonical name, its length, packing and
        recipe values set, {option: where its value came from} for those
        the recipe set)."""
        from kbert import presets

        task = head_task(self.task)
        if task is not None:
            if self.train is None:
                raise ConfigError(f"--task {task} trains on your file: give --train FILE (and --dev FILE to evaluate)")
            if self.packing:
                raise ConfigError(f"--packing lays sentences end to end for a [CLS] classifier; --task {task} "
                                  "reads every position: leave it out")
            packing, max_seq_len = False, self.max_seq_len or HEAD_TASK_MAX_SEQ_LEN[task]
            if max_seq_len < 3:
                raise ConfigError(f"--max-seq-len {max_seq_len} holds no word beside [CLS] and [SEP]")
            # Stored whole: evaluate and resume read them from anywhere.
            files = {name: getattr(self, name) and os.path.abspath(getattr(self, name)) for name in ("train", "dev")}
        else:
            from kbert.glue import get_processor

            if self.train is not None or self.dev is not None:
                raise ConfigError(f"--train and --dev are the files of --task {' or '.join(HEAD_TASKS)}; a GLUE "
                                  "task reads its own from --data-dir")
            task = get_processor(self.task).name
            packing = True if self.packing is None else self.packing
            max_seq_len = self.max_seq_len or GLUE_MAX_SEQ_LEN
        recipe = presets.recipe(self.checkpoint, task)
        chosen = {name: recipe[name] for name in RECIPE_FIELDS if getattr(self, name) is None}
        defaults = {name: recipe["source"] for name in chosen}
        if head_task(self.task) is None:
            files = {}
        return dataclasses.replace(self, task=task, packing=packing, max_seq_len=max_seq_len, **files, **chosen), \
            defaults


@dataclasses.dataclass(frozen=True)
class MaterialsOptions:
    """What `materials_from_run` and `generate_materials` do.

    Attributes:
        task: the GLUE task (None: the run's own).
        splits: the task's splits to run the teacher over.
        max_seq_len: the encoding's maximum length (None: the run's).
        augment: up to this many Tang et al. copies per training sentence
            (`kbert.augment`) become the "augmented" split.
        neighbours: with augment, also replace words by one of their this
            many nearest neighbours (0: not; TinyBERT uses 15), from the
            static vectors when they are made, else the teacher's
            `Embedding-Token` rows (`kbert.augment.nearest_neighbours`).
        p_neighbour: the chance that a word is so replaced.
        seed: the augmentation's seed.
        batch_size: teacher batch size.
        int8: run the teacher int8-quantized (Keras' `Model.quantize`):
            faster on JAX, the same SST-2 dev accuracy in
            benchmarks/results/teacher-variants-jax.md.  The weights are
            hashed and the embedding matrix read before quantizing, and the
            mode is recorded with the teacher's identity.
        long_inputs: "truncate" (the default: the teacher sees what it was
            fine-tuned on, the first max_seq_len pieces) or "windows": a
            single sentence longer than that is read whole, as overlapping
            windows `stride` pieces apart (`Tokenizer.encode_windows`), and
            its logits `y` are the mean of the windows' (recorded with the
            teacher's identity).  `x` stays the truncated encoding: the
            student's input.
        stride: word pieces between windows (None: half a window).
        packing: read the teacher's rows packed where that pays
            (`kbert.inference.predict_bucketed`; the same logits).
        pooled: also store each row's pooled `[CLS]` vector (the
            teacher's `NSP-Dense` output, float16), which `kbert distill
            --pooled-weight` matches; one more teacher pass per split.
        static_embedding: also store Model2Vec-style static vectors
            (`static_vectors`: each vocabulary token through the teacher)
            in shared.npz, a student embedding start (`kbert distill
            --embedding static`).
        mlm: a checkpoint with masked-LM heads (Google's originals, a
            `kbert pretrain` run, anything `load_checkpoint` reads with
            `training=True`): every `[MASK]` word of the augmented copies
            is rewritten by a whole-word token sampled from its prediction
            in context (Wu et al. 2019's conditional contextual
            augmentation; `kbert.materials.fill_masks`).  None: the
            copies keep `[MASK]`.
        mlm_top_k: sample among the masked LM's k likeliest whole words.
        mlm_temperature: the masked LM's logits are divided by it before
            sampling (below 1: likelier words; above: more varied).
        unlabeled: the user's own files (or glob patterns): text, one input
            a line (a pair task's two sentences tab-separated), JSON lines
            or Parquet, read by `kbert.corpus`, labelled by
            the teacher in shards of `shard_rows` rows (the splits
            "unlabeled-00000", ...; `kbert.materials.unlabeled_shards`):
            empty lines and lines already seen (in the task's splits or
            earlier in the files) are skipped.
        shard_rows: rows per unlabeled shard: what a kill can lose, and
            about half of what is held in memory at once.
        engine: what runs the teachers over the rows: "local" (this
            process) or "ray" (Ray Data actors, each loading the teacher
            runs once, a chunk of a split a task; the same saved chunks,
            so either engine resumes the other's pass).  The MLM fill,
            static and pooled vectors stay in this process.
        ray_address: with "ray", the cluster to join (None: a Ray instance
            on this machine, started for the call).
        workers: with "ray", the actors (None: one per CPU Ray offers, at
            most one per chunk to compute).
    """

    task: str = None
    splits: tuple = SPLITS
    max_seq_len: int = None
    augment: int = 0
    neighbours: int = 0
    p_neighbour: float = 0.1
    seed: int = 0
    batch_size: int = 64
    int8: bool = False
    long_inputs: str = "truncate"
    stride: int = None
    packing: bool = True
    static_embedding: bool = False
    pooled: bool = False
    mlm: str = None
    mlm_top_k: int = 20
    mlm_temperature: float = 1.0
    unlabeled: tuple = ()
    shard_rows: int = 10000
    engine: str = "local"
    ray_address: str = None
    workers: int = None

    def __post_init__(self):
        check_option_types(self)
        _check_engine(self)
        if self.mlm_top_k < 1:
            raise ConfigError(f"--mlm-top-k must be at least 1, got {self.mlm_top_k}")
        if self.mlm_temperature <= 0:
            raise ConfigError(f"--mlm-temperature must be positive, got {self.mlm_temperature}")
        if self.mlm is not None and not self.augment:
            raise ConfigError("--mlm rewrites the masked words of the augmented copies: it needs --augment N")
        if self.shard_rows < 1:
            raise ConfigError(f"--shard-rows must be at least 1, got {self.shard_rows}")
        if self.long_inputs not in ("truncate", "windows"):
            raise ConfigError(f"--long-inputs must be truncate or windows, got {self.long_inputs!r}")
        if self.stride is not None and self.stride < 1:
            raise ConfigError(f"--stride must be at least 1, got {self.stride}")
        if not self.splits:
            raise ConfigError("--splits names no split")
        if self.max_seq_len is not None and self.max_seq_len < 1:
            raise ConfigError(f"--max-seq-len must be at least 1, got {self.max_seq_len}")
        if self.augment < 0:
            raise ConfigError(f"--augment must be 0 or more, got {self.augment}")
        if self.neighbours < 0 or self.neighbours and not self.augment:
            raise ConfigError(f"--neighbours must be 0 or more and needs --augment, got {self.neighbours}")
        if self.pooled and self.long_inputs == "windows":
            raise ConfigError("--pooled stores one vector per row; it does not combine with --long-inputs windows")
        if not 0.0 <= self.p_neighbour <= 1.0:
            raise ConfigError(f"--p-neighbour must be in [0, 1], got {self.p_neighbour}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {self.batch_size}")


@dataclasses.dataclass(frozen=True)
class PretrainOptions:
    """What `pretrain` does; recorded in run.json and compared on resume.

    The instance options and their defaults are `create_pretraining_data.py`'s
    (its `dupe_factor` is 10: one pass over the corpus here, since
    continuing pre-training usually runs for far fewer steps), the training
    ones `run_pretraining.py`'s, except `learning_rate`, whose 5e-5 is
    already the value both recommend for continuing.
    """

    corpus: tuple
    checkpoint: str = "minilm-l6"
    max_seq_len: int = 128
    max_predictions_per_seq: int = 20
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    dupe_factor: int = 1
    whole_word_mask: bool = False
    cased: bool = False
    seed: int = 12345
    batch_size: int = 32
    learning_rate: float = 5e-5
    # None: one pass over the instances.
    num_train_steps: int = None
    warmup_proportion: float = 0.1
    weight_decay: float = 0.01
    save_every: int = 200

    def __post_init__(self):
        check_option_types(self)
        if not self.corpus:
            raise ConfigError("--corpus needs at least one text file")
        if self.max_seq_len < 5:
            raise ConfigError(f"--max-seq-len must be at least 5 ([CLS] A [SEP] B [SEP]), got {self.max_seq_len}")
        for name in ("max_predictions_per_seq", "dupe_factor", "batch_size", "save_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.num_train_steps is not None and self.num_train_steps < 1:
            raise ConfigError(f"--num-train-steps must be at least 1, got {self.num_train_steps}")
        for name in ("masked_lm_prob", "short_seq_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.seed < 2**32:  # NumPy's seeds; Keras seeds its RNGs from this one
            raise ConfigError(f"--seed must be in [0, 2**32), got {self.seed}")
        if not self.learning_rate > 0:
            raise ConfigError("--learning-rate must be positive")
        if not 0 <= self.warmup_proportion < 1:
            raise ConfigError("--warmup-proportion must be in [0, 1)")
        # Finite already (a number); negative decay would grow the weights.
        if not self.weight_decay >= 0:
            raise ConfigError(f"--weight-decay must be at least 0, got {self.weight_decay}")


# How `kbert predict --output DIR` writes each shard (`kbert.predict.predict_files`).
PREDICT_FORMATS = ("json", "tsv", "parquet")


@dataclasses.dataclass(frozen=True)
class PredictOptions:
    """What `kbert predict` does with its inputs (`Classifier.predict`,
    and `predict_files` for `--input ... --output DIR`).

    Attributes:
        batch_size: rows per model call.
        long_inputs: "truncate" (as in training) or "windows": a long
            single text read as overlapping windows whose logits are averaged.
        stride: word pieces between windows (None: half a window).
        packing: read a BERT classifier's rows packed where that pays (the
            same logits).
        format: "json" (JSON lines, `Prediction.to_json`), "tsv" (a header
            and a row an input) or, for shards only, "parquet".
        shard_rows: inputs per output shard with `--output`: what a kill
            can lose, and about what is held in memory at once.
        engine: what answers the shards: "local" (this process) or "ray"
            (Ray Data actors, one model each; the same files, so either
            engine resumes the other's job).
        ray_address: with "ray", the cluster to join (None: a Ray instance
            on this machine, started for the call).
        workers: with "ray", the actors (None: one per CPU Ray offers, at
            most one per shard to write).
    """

    batch_size: int = 32
    long_inputs: str = "truncate"
    stride: int = None
    packing: bool = True
    format: str = "json"
    shard_rows: int = 100000
    engine: str = "local"
    ray_address: str = None
    workers: int = None

    def __post_init__(self):
        check_option_types(self)
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.long_inputs not in ("truncate", "windows"):
            raise ConfigError(f"--long-inputs must be truncate or windows, got {self.long_inputs!r}")
        if self.stride is not None and (self.stride < 1 or self.long_inputs != "windows"):
            raise ConfigError(f"--stride must be at least 1 and comes with --long-inputs windows, got {self.stride}")
        if self.format not in PREDICT_FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(PREDICT_FORMATS)}, got {self.format!r}")
        if self.shard_rows < 1:
            raise ConfigError(f"--shard-rows must be at least 1, got {self.shard_rows}")
        _check_engine(self)
