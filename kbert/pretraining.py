"""Continue BERT's pre-training on plain text: `kbert pretrain`.

The corpus is read as Google's `create_pretraining_data.py` reads it: one
sentence per line, a blank line between documents (each file also starts a
new document).  Training instances follow that script's rules:

* A document is cut into chunks of about `max_seq_len - 3` word pieces
  (with probability `short_seq_prob`, a random shorter target, 2 or more).
  Sentence A is the chunk's first sentences, up to a random split point.
* Sentence B is the rest of the chunk or, with probability 1/2 (always when
  the chunk is one sentence), sentences from a random other document read
  from a random start; the chunk's unused sentences are then used again.
  `next_sentence_labels` is 1 for a random B, 0 for the actual next.
* The pair is cut to fit one piece at a time from the longer side, at its
  front or its back at random.
* `masked_lm_prob` of the pieces (at least 1, at most
  `max_predictions_per_seq`), never `[CLS]` or `[SEP]`, are chosen for
  prediction.  A chosen piece becomes `[MASK]` 80% of the time, stays 10%,
  and becomes a random vocabulary entry 10%.  With `whole_word_mask`, a
  word's pieces (the ones after its first start with "##") are chosen
  together or not at all.
* Every document is read `dupe_factor` times, with fresh draws each time,
  and the instances are shuffled.

All draws come from one `random.Random(seed)`, so the same corpus and
options give the same instances.

Training has the objective of the original `run_pretraining.py`:
masked-LM cross-entropy on the chosen positions only, averaged with
`masked_lm_weights` (the MLM head runs on those positions, not on all T),
plus next-sentence cross-entropy.  The optimizer is the one `kbert
finetune` uses (`kbert.optimization`: AdamW, warmup, linear decay).  A
checkpoint saved without the MLM and NSP heads, such as the `minilm-l6`
preset (a sentence encoder), starts them fresh.  The MLM output matrix is
`Embedding-Token`'s, as in BERT.

The run directory (see `kbert.runs`) holds run.json (kind "pretrain"),
vocab.txt, instances.npz (made once), training/ (weights and optimizer
state every `save_every` steps, until the run is complete) and, when
done, checkpoint/: the original
format with the MLM and NSP heads, which `load_checkpoint`, `kbert
finetune --checkpoint RUN` and Google's code read.  A killed run resumes
from its last save and replays the same batches and the same dropout, so
the result is the one an uninterrupted run gives.

Shapes: B batch, T sequence length, P max_predictions_per_seq, H hidden
size, V vocabulary size.
"""

import dataclasses
import hashlib
import logging
import os
import random
import shutil
import time

import numpy as np

from kbert import runs
from kbert.atomic import atomic_output, file_sha256, read_json, write_json
from kbert.checks import check_option_types
from kbert.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

INSTANCES_FILE = "instances.npz"
TRAINING_DIR = "training"
STATE_FILE = "state.json"
WEIGHTS_FILE = "state.weights.h5"
# Options that decide the instances; the rest decide only the training.
INSTANCE_FIELDS = ("max_seq_len", "max_predictions_per_seq", "masked_lm_prob", "short_seq_prob",
                   "dupe_factor", "whole_word_mask", "cased", "seed")


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
        if not self.learning_rate > 0:
            raise ConfigError("--learning-rate must be positive")
        if not 0 <= self.warmup_proportion < 1:
            raise ConfigError("--warmup-proportion must be in [0, 1)")


# -- the corpus ---------------------------------------------------------------


def read_documents(paths, tokenizer):
    """Documents as lists of sentences, each sentence its word-piece ids.

    Lines are stripped; a blank line ends a document, and so does the end
    of a file; a line with no word piece is skipped, and empty documents
    are dropped.

    Raises:
        DataError: naming the file (and line) that is missing or not UTF-8.
    """
    documents = []
    for path in paths:
        path = os.fspath(path)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise DataError(f"corpus file {path}: cannot read it ({e.strerror or e})") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = raw[: e.start].count(b"\n") + 1
            raise DataError(f"corpus file {path}, line {line}: not UTF-8 text ({e.reason})") from None
        document_of_line, lines = [], []
        documents_before = len(documents)
        current = documents_before
        for line in text.split("\n"):
            line = line.strip()
            if not line:
                current += 1
                continue
            lines.append(line)
            document_of_line.append(current)
        ids = tokenizer.split_ids_batch(lines)
        grouped = {}
        for document, sentence in zip(document_of_line, ids):
            if sentence:
                grouped.setdefault(document, []).append(np.asarray(sentence, np.int32))
        documents.extend(grouped[k] for k in sorted(grouped))
    return documents


# -- instances ----------------------------------------------------------------


@dataclasses.dataclass
class Instances:
    """Pre-training examples as arrays (N examples; positions padded with 0
    and weight 0 beyond each example's predictions)."""

    input_ids: np.ndarray  # [N, T] int32, 0-padded
    segment_ids: np.ndarray  # [N, T] int32
    lengths: np.ndarray  # [N] int32
    masked_lm_positions: np.ndarray  # [N, P] int32
    masked_lm_ids: np.ndarray  # [N, P] int32: the original pieces
    masked_lm_weights: np.ndarray  # [N, P] float32: 1 for a prediction, 0 for padding
    next_sentence_labels: np.ndarray  # [N] int32: 1 when B is a random sentence

    def __len__(self):
        return len(self.lengths)

    def save(self, path, key):
        with atomic_output(path, suffix=".npz") as tmp:
            np.savez(tmp, key=np.array(key), **dataclasses.asdict(self))

    @classmethod
    def load(cls, path, key):
        """The instances stored at `path` for `key`, or None (none, or others)."""
        if not os.path.isfile(path):
            return None
        try:
            with np.load(path) as data:
                if str(data["key"]) != key:
                    return None
                return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})
        except (OSError, ValueError, KeyError) as e:
            logger.warning("%s: unreadable (%s); making the instances again", path, e)
            return None


class _Vocabulary:
    """What instance making needs of the vocabulary, by id."""

    def __init__(self, tokens):
        index = {token: i for i, token in enumerate(tokens)}
        for token in ("[CLS]", "[SEP]", "[MASK]"):
            if token not in index:
                raise DataError(f"the vocabulary has no {token}, which pre-training needs")
        self.cls, self.sep, self.mask = index["[CLS]"], index["[SEP]"], index["[MASK]"]
        self.size = len(tokens)
        self.continues_word = np.array([t.startswith("##") for t in tokens])


def _truncate_pair(first, second, max_pieces, rng):
    """Drop pieces from the longer of the two, at its front or back at random."""
    while len(first) + len(second) > max_pieces:
        longer = first if len(first) > len(second) else second
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def _choose_predictions(tokens, vocab, options, rng):
    """(tokens with the chosen pieces replaced, [(position, original id)] by position)."""
    groups = []
    for i, token in enumerate(tokens):
        if token in (vocab.cls, vocab.sep):
            continue
        if options.whole_word_mask and groups and vocab.continues_word[token]:
            groups[-1].append(i)
        else:
            groups.append([i])
    rng.shuffle(groups)
    count = min(options.max_predictions_per_seq, max(1, int(round(len(tokens) * options.masked_lm_prob))))
    output, chosen = list(tokens), []
    for group in groups:
        if len(chosen) >= count:
            break
        if len(chosen) + len(group) > count:  # a whole word that does not fit
            continue
        for i in group:
            if rng.random() < 0.8:
                output[i] = vocab.mask
            elif rng.random() >= 0.5:  # else: the piece stays itself
                output[i] = rng.randint(0, vocab.size - 1)
            chosen.append((i, tokens[i]))
    return output, sorted(chosen)


def _document_instances(documents, index, vocab, options, rng):
    """The instances of `documents[index]`: (tokens, segments, predictions, random_next) tuples."""
    document = documents[index]
    max_pieces = options.max_seq_len - 3  # [CLS] A [SEP] B [SEP]
    target = max_pieces
    if rng.random() < options.short_seq_prob:
        target = rng.randint(2, max_pieces)
    instances, chunk, size, i = [], [], 0, 0
    while i < len(document):
        chunk.append(document[i])
        size += len(document[i])
        if i == len(document) - 1 or size >= target:
            split = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            first = [int(t) for sentence in chunk[:split] for t in sentence]
            second = []
            random_next = len(chunk) == 1 or rng.random() < 0.5
            if random_next:
                want = target - len(first)
                for _ in range(10):  # another document, as the original tries
                    other = rng.randint(0, len(documents) - 1)
                    if other != index:
                        break
                source = documents[other]
                for sentence in source[rng.randint(0, len(source) - 1):]:
                    second.extend(int(t) for t in sentence)
                    if len(second) >= want:
                        break
                i -= len(chunk) - split  # the chunk's unused sentences start the next one
            else:
                second = [int(t) for sentence in chunk[split:] for t in sentence]
            _truncate_pair(first, second, max_pieces, rng)
            tokens = [vocab.cls, *first, vocab.sep, *second, vocab.sep]
            segments = [0] * (len(first) + 2) + [1] * (len(second) + 1)
            tokens, predictions = _choose_predictions(tokens, vocab, options, rng)
            instances.append((tokens, segments, predictions, random_next))
            chunk, size = [], 0
        i += 1
    return instances


def create_instances(documents, vocab_tokens, options, progress=True):
    """`Instances` from `documents` (see `read_documents`) by the module's rules."""
    from tqdm.auto import tqdm

    if len(documents) < 2:
        raise DataError(f"the corpus holds {len(documents)} document(s); random next sentences need at least two "
                        "(separate documents with a blank line)")
    vocab = _Vocabulary(vocab_tokens)
    rng = random.Random(options.seed)
    documents = list(documents)
    rng.shuffle(documents)
    made = []
    with tqdm(total=options.dupe_factor * len(documents), desc="instances", unit="doc",
              disable=not progress, dynamic_ncols=True) as bar:
        for _ in range(options.dupe_factor):
            for index in range(len(documents)):
                made.extend(_document_instances(documents, index, vocab, options, rng))
                bar.update(1)
    rng.shuffle(made)
    n, t, p = len(made), options.max_seq_len, options.max_predictions_per_seq
    arrays = Instances(
        input_ids=np.zeros((n, t), np.int32), segment_ids=np.zeros((n, t), np.int32),
        lengths=np.zeros(n, np.int32), masked_lm_positions=np.zeros((n, p), np.int32),
        masked_lm_ids=np.zeros((n, p), np.int32), masked_lm_weights=np.zeros((n, p), np.float32),
        next_sentence_labels=np.zeros(n, np.int32),
    )
    for row, (tokens, segments, predictions, random_next) in enumerate(made):
        assert len(tokens) <= t and len(predictions) <= p  # by construction
        arrays.input_ids[row, : len(tokens)] = tokens
        arrays.segment_ids[row, : len(segments)] = segments
        arrays.lengths[row] = len(tokens)
        if predictions:
            positions, ids = zip(*predictions)
            arrays.masked_lm_positions[row, : len(positions)] = positions
            arrays.masked_lm_ids[row, : len(ids)] = ids
            arrays.masked_lm_weights[row, : len(ids)] = 1.0
        arrays.next_sentence_labels[row] = int(random_next)
    return arrays


# -- the model ----------------------------------------------------------------


def pretraining_model(bert):
    """A Keras model on `bert`'s own layers (weights shared) for the
    pre-training loss: inputs `Input-Token`, `Input-Segment` [B, T] and
    `Input-Positions` [B, P]; outputs {"mlm": logits [B, P, V] at those
    positions, "nsp": next-sentence probabilities [B, 2]}."""
    import keras

    if not getattr(bert, "training_heads", False):
        raise ConfigError("pretraining_model needs a BertModel built with training=True (the MLM and NSP heads)")
    if bert.task_num is not None:
        raise ConfigError("pre-training does not feed Input-Task; build the model without task_num")
    inputs = {tensor.name: tensor for tensor in bert.inputs}
    positions = keras.Input(shape=(None,), dtype="int32", name="Input-Positions")
    sequence = bert.get_layer(f"Encoder-{bert.bert_config.num_hidden_layers}-FeedForward-Norm").output  # [B, T, H]
    chosen = keras.ops.take_along_axis(sequence, positions[:, :, None], axis=1)  # [B, P, H]
    hidden = bert.get_layer("MLM-Norm")(bert.get_layer("MLM-Dense")(chosen))
    matrix = bert.get_layer("Embedding-Token").output[1]  # [V, H]
    logits = bert.get_layer("MLM-Sim")([hidden, matrix], logits=True)  # [B, P, V]
    nsp = bert.get_layer("NSP").output  # [B, 2]
    return keras.Model([inputs["Input-Token"], inputs["Input-Segment"], positions], {"mlm": logits, "nsp": nsp},
                       name="pretraining")


def compile_pretraining(trainer, options, total_steps):
    import keras

    from kbert.optimization import create_optimizer

    trainer.compile(
        optimizer=create_optimizer(options.learning_rate, total_steps, options.warmup_proportion,
                                   options.weight_decay),
        # The original divides the summed loss by the sum of masked_lm_weights.
        loss={"mlm": keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                reduction="mean_with_sample_weight"),
              "nsp": keras.losses.SparseCategoricalCrossentropy()},
    )


class _BatchOrder:
    """Batch `step` of an endless stream over the instances: pass k over
    them follows a permutation drawn from (seed, k) alone."""

    def __init__(self, instances, batch_size, seed):
        self.instances, self.batch_size, self.seed = instances, batch_size, seed
        self._orders = {}

    def _order(self, n):
        if n not in self._orders:
            if len(self._orders) > 1:  # a batch spans at most two passes
                self._orders.pop(min(self._orders))
            self._orders[n] = np.random.default_rng([self.seed, n]).permutation(len(self.instances))
        return self._orders[n]

    def rows(self, step):
        count = len(self.instances)
        start = step * self.batch_size
        flat = np.arange(start, start + self.batch_size)
        return np.concatenate([self._order(k)[flat[flat // count == k] % count] for k in np.unique(flat // count)])

    def batch(self, step):
        """(x, y, sample_weight) of `step`, trimmed to its longest row."""
        from kbert.batching import bucket_width

        data, rows = self.instances, self.rows(step)
        width = bucket_width(data.lengths[rows].max(), data.input_ids.shape[1])
        x = (data.input_ids[rows, :width], data.segment_ids[rows, :width], data.masked_lm_positions[rows])
        y = {"mlm": data.masked_lm_ids[rows], "nsp": data.next_sentence_labels[rows]}
        weights = {"mlm": data.masked_lm_weights[rows], "nsp": np.ones(len(rows), np.float32)}
        return x, y, weights


# -- the run ------------------------------------------------------------------


def _instance_key(options, tokens, corpus_hashes):
    values = [repr(getattr(options, name)) for name in INSTANCE_FIELDS]
    values += corpus_hashes + [hashlib.sha256("\n".join(tokens).encode("utf-8")).hexdigest()]
    return hashlib.sha256("\0".join(values).encode("utf-8")).hexdigest()


def _instances(output, options, tokenizer, tokens, progress):
    hashes = []
    for path in options.corpus:
        try:
            hashes.append(file_sha256(path))
        except OSError as e:
            raise DataError(f"corpus file {path}: cannot read it ({e.strerror or e})") from None
    key = _instance_key(options, tokens, hashes)
    path = os.path.join(output, INSTANCES_FILE)
    instances = Instances.load(path, key)
    if instances is None:
        documents = read_documents(options.corpus, tokenizer)
        logger.info("corpus: %d documents, %d sentences", len(documents), sum(map(len, documents)))
        instances = create_instances(documents, tokens, options, progress=progress)
        instances.save(path, key)
    return instances


def _save_state(directory, trainer, state):
    """Weights (with the optimizer's) first, then state.json, which commits."""
    os.makedirs(directory, exist_ok=True)
    with atomic_output(os.path.join(directory, WEIGHTS_FILE), suffix=".weights.h5") as tmp:
        trainer.save_weights(tmp)
    write_json(os.path.join(directory, STATE_FILE), state)


def pretrain(options, output, *, resume=False, progress=True):
    """Continue pre-training `options.checkpoint` on `options.corpus`.

    Returns the `RunRecord`; `results` holds global_step, instances,
    history (mean losses of each saved stretch), train_seconds and
    sequences_per_second.  The result is OUTPUT/checkpoint.
    """
    import keras
    from tqdm.auto import tqdm

    from kbert.seeding import reseed
    from kbert.tokenization import Tokenizer, load_vocab_tokens, validate_case_matches_checkpoint
    from kbert.weights.export import export_checkpoint
    from kbert.weights.loading import load_checkpoint

    validate_case_matches_checkpoint(cased=options.cased, checkpoint=options.checkpoint)
    record = runs.start_run(output, runs.RunRecord(kind="pretrain", status="training",
                                                   options=dataclasses.asdict(options),
                                                   max_seq_len=options.max_seq_len, cased=options.cased), resume)
    if record.status == "complete":
        logger.info("%s: run already complete", output)
        return record
    keras.utils.set_random_seed(options.seed)
    bert = load_checkpoint(options.checkpoint, training=True, trainable=True, fresh_heads=True)
    if bert.vocab_file is None:
        raise ConfigError(f"{options.checkpoint}: no vocab.txt beside the checkpoint")
    if options.max_seq_len > bert.bert_config.max_position_embeddings:
        raise ConfigError(f"--max-seq-len {options.max_seq_len} exceeds the checkpoint's max_position_embeddings "
                          f"({bert.bert_config.max_position_embeddings})")
    runs.copy_vocab(output, bert.vocab_file)
    tokens = load_vocab_tokens(runs.vocab_file(output))
    tokenizer = Tokenizer.from_vocab_file(runs.vocab_file(output), cased=options.cased,
                                          vocab_size=bert.bert_config.vocab_size)
    instances = _instances(output, options, tokenizer, tokens, progress)
    if not len(instances):
        raise DataError(f"{', '.join(options.corpus)}: no pre-training instance could be made")
    order = _BatchOrder(instances, options.batch_size, options.seed)
    total = options.num_train_steps or -(-len(instances) // options.batch_size)

    trainer = pretraining_model(bert)
    compile_pretraining(trainer, options, total)
    training_dir = os.path.join(output, TRAINING_DIR)
    state_path = os.path.join(training_dir, STATE_FILE)
    state = {"step": 0, "history": [], "seconds": 0.0}
    if os.path.isfile(state_path):
        state = read_json(state_path, error=ConfigError, what="pre-training state")
        trainer.optimizer.build(trainer.trainable_variables)
        trainer.load_weights(os.path.join(training_dir, WEIGHTS_FILE))
        logger.info("resuming at step %d of %d", state["step"], total)

    bar = tqdm(total=total * options.batch_size, initial=state["step"] * options.batch_size, desc="pretrain",
               unit="seq", disable=not progress, dynamic_ncols=True)
    step = state["step"]
    while step < total:
        # Each saved stretch draws its dropout from (seed, stretch) alone: a
        # resumed run replays it exactly.
        reseed(bert, options.seed, step // options.save_every)
        started, losses = time.perf_counter(), []
        end = min(total, (step // options.save_every + 1) * options.save_every)
        for step in range(step, end):
            x, y, weights = order.batch(step)
            logs = trainer.train_on_batch(x, y, sample_weight=weights, return_dict=True)
            losses.append([float(logs["loss"]), float(logs["mlm_loss"]), float(logs["nsp_loss"])])
            bar.update(options.batch_size)
            bar.set_postfix(mlm=f"{losses[-1][1]:.3f}", nsp=f"{losses[-1][2]:.3f}")
        step = end
        mean = np.mean(losses, axis=0)
        state["history"].append({"step": step, "loss": float(mean[0]), "mlm_loss": float(mean[1]),
                                 "nsp_loss": float(mean[2])})
        state["seconds"] += time.perf_counter() - started
        state["step"] = step
        _save_state(training_dir, trainer, state)
    bar.close()

    export_checkpoint(bert, os.path.join(output, "checkpoint"), vocab_file=runs.vocab_file(output), overwrite=True)
    record = record.replace(
        status="complete",
        files=runs.file_hashes(output, "pretrain"),
        results=dict(
            global_step=total,
            instances=len(instances),
            history=state["history"],
            train_seconds=state["seconds"],
            sequences_per_second=total * options.batch_size / max(state["seconds"], 1e-9),
            initialized=list(bert.load_report.initialized),
            backend=keras.backend.backend(),
        ),
    )
    runs.write_run(output, record)
    shutil.rmtree(training_dir, ignore_errors=True)  # the run is complete: nothing to resume
    return record
