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
vocab.txt, instances.npz (made once), training/ (every `save_every` steps:
state-STEP.weights.h5, the weights and optimizer state, then state.json,
which names the step and commits it; until the run is complete) and, when
done, checkpoint/: the original
format with the MLM and NSP heads, which `load_checkpoint`, `kbert
finetune --checkpoint RUN` and Google's code read.  A killed run resumes
from its last save and replays the same batches and the same dropout, so
the result is the one an uninterrupted run gives.

Every input is checked before the first write (the options, the
checkpoint, its vocabulary and positions, the corpus and the instances it
gives), so a refused command leaves no run behind and the corrected one
starts as if it had been the first.  A resumed run reads only what it has
checked: state.json's fields against the run's options and instances, its
checksum, and the sha256 it records of the weights file and of the
instances.  A damaged state.json or weights file is a DataError naming it
(training/ may then be removed to train again from step 0).
instances.npz is a cache: made again exactly from the corpus and seed
when it is damaged, with a warning, and checked against the sha256 the
run recorded before it is trained on.

Shapes: B batch, T sequence length, P max_predictions_per_seq, H hidden
size, V vocabulary size.
"""

import dataclasses
import hashlib
import json
import logging
import os
import random
import re
import shutil
import time
import zipfile

import numpy as np

from kbert import runs
from kbert.atomic import atomic_output, file_sha256, read_json, refuse_overlap, remove_quietly, write_json
from kbert.checks import is_int, is_number
from kbert.errors import ConfigError, DataError
from kbert.options import PretrainOptions  # noqa: F401  (re-exported: the stage's options)

logger = logging.getLogger(__name__)

INSTANCES_FILE = "instances.npz"
TRAINING_DIR = "training"
STATE_FILE = "state.json"
# Each save writes its own weights file, and state.json, written after it,
# names the step: a kill between the two writes leaves the previous save
# whole (one file name for every save would pair the old step with the
# new weights).
WEIGHTS_FILE = "state-{step}.weights.h5"
WEIGHTS_NAME = re.compile(r"state-\d+\.weights\.h5")
# Options that decide the instances; the rest decide only the training.
INSTANCE_FIELDS = ("max_seq_len", "max_predictions_per_seq", "masked_lm_prob", "short_seq_prob",
                   "dupe_factor", "whole_word_mask", "cased", "seed")


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

    def sha256(self):
        """sha256 of every array's name, dtype, shape and bytes: what a
        resumed run checks it trains on (the .npz file's own bytes hold a
        time stamp, so instances made again exactly hash differently)."""
        digest = hashlib.sha256()
        for field in dataclasses.fields(self):
            array = np.ascontiguousarray(getattr(self, field.name))
            digest.update(f"{field.name} {array.dtype.str} {array.shape}\n".encode("utf-8"))
            digest.update(array.tobytes())
        return digest.hexdigest()

    @classmethod
    def load(cls, path, key, options, vocab_size):
        """The instances stored at `path` for `key`, or None when there are
        none or they are another corpus's or options'.

        Raises:
            DataError: naming the file, when it is not a whole .npz of
                instances for `options` (an array missing, of another
                dtype or shape, or holding ids outside `vocab_size`).
        """
        if not os.path.lexists(path):
            return None
        try:
            archive = np.load(path, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):  # an .npy file
                raise DataError(f"{path}: not an .npz archive")
            with archive:
                if "key" not in archive.files:
                    raise DataError(f"{path}: no `key` array; not pre-training instances")
                if str(archive["key"]) != key:
                    return None
                missing = [f.name for f in dataclasses.fields(cls) if f.name not in archive.files]
                if missing:
                    raise DataError(f"{path}: missing arrays {missing}")
                instances = cls(**{f.name: archive[f.name] for f in dataclasses.fields(cls)})
        except DataError:
            raise
        # Truncated or bit-flipped zips (BadZipFile, EOFError, a CRC or
        # header ValueError), unsupported or "encrypted" entries
        # (RuntimeError) and files that are no zip at all end here.
        except (OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile) as e:
            raise DataError(f"{path}: unreadable .npz ({type(e).__name__}: {e})") from None
        instances._check(path, options, vocab_size)
        return instances

    def _check(self, path, options, vocab_size):
        """Raise DataError (naming `path`) unless the arrays are instances
        `create_instances` could have made for `options`."""
        n = len(self.lengths) if self.lengths.ndim == 1 else None  # None: no shape matches
        t, p = options.max_seq_len, options.max_predictions_per_seq
        shapes = dict(input_ids=(n, t), segment_ids=(n, t), lengths=(n,), masked_lm_positions=(n, p),
                      masked_lm_ids=(n, p), masked_lm_weights=(n, p), next_sentence_labels=(n,))
        for name, shape in shapes.items():
            array = getattr(self, name)
            dtype = np.float32 if name == "masked_lm_weights" else np.int32
            if array.dtype != dtype or array.shape != shape:
                raise DataError(f"{path}: `{name}` is {array.dtype} {array.shape}, "
                                f"expected {np.dtype(dtype)} {shape}")
        if not n:
            raise DataError(f"{path}: no instance")
        if self.lengths.min() < 1 or self.lengths.max() > t:
            raise DataError(f"{path}: `lengths` outside 1..{t}")
        padding = np.arange(t) >= self.lengths[:, None]
        if self.input_ids.min() < 0 or self.input_ids.max() >= vocab_size or self.masked_lm_ids.min() < 0 or \
                self.masked_lm_ids.max() >= vocab_size:
            raise DataError(f"{path}: token ids outside the vocabulary of {vocab_size}")
        if self.input_ids[padding].any() or self.segment_ids[padding].any():
            raise DataError(f"{path}: non-zero ids beyond a row's `lengths`")
        for name in ("segment_ids", "next_sentence_labels", "masked_lm_weights"):
            if not np.isin(getattr(self, name), (0, 1)).all():
                raise DataError(f"{path}: `{name}` holds values other than 0 and 1")
        # Unused slots hold position 0: every position indexes the row's pieces.
        if self.masked_lm_positions.min() < 0 or (self.masked_lm_positions >= self.lengths[:, None]).any():
            raise DataError(f"{path}: `masked_lm_positions` outside their rows")


class _Vocabulary:
    """What instance making needs of the vocabulary, by id; `source` names
    it in the DataError for a missing special token."""

    def __init__(self, tokens, source="the vocabulary"):
        index = {token: i for i, token in enumerate(tokens)}
        for token in ("[CLS]", "[SEP]", "[MASK]"):
            if token not in index:
                raise DataError(f"{source} has no {token}, which pre-training needs")
        self.cls, self.sep, self.mask = index["[CLS]"], index["[SEP]"], index["[MASK]"]
        self.size = len(tokens)
        self.continues_word = np.array([t.startswith("##") for t in tokens])


def _truncate_pair(first, second, max_pieces, rng):
    """(first, second) cut to `max_pieces` together: one piece at a time
    from the longer of the two, at its front or back at random."""
    # Bounds move rather than pieces being deleted one by one, which took
    # quadratic time on a huge line (one sentence of millions of pieces);
    # the draws, and so the instances, are the same.
    bounds = [[0, len(first)], [0, len(second)]]
    while bounds[0][1] - bounds[0][0] + bounds[1][1] - bounds[1][0] > max_pieces:
        longer = bounds[0] if bounds[0][1] - bounds[0][0] > bounds[1][1] - bounds[1][0] else bounds[1]
        if rng.random() < 0.5:
            longer[0] += 1
        else:
            longer[1] -= 1
    return first[bounds[0][0]:bounds[0][1]], second[bounds[1][0]:bounds[1][1]]


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
            first, second = _truncate_pair(first, second, max_pieces, rng)
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


def _instances(output, options, tokenizer, tokens, progress, expected=None):
    """(instances, key): the instances of `options.corpus`, with key None
    when read from the run's instances.npz, or the key to save them under
    (`Instances.save`) when made now.

    instances.npz is a cache, made deterministically from the corpus, the
    vocabulary and the options: one that is damaged, or (given `expected`,
    the `Instances.sha256` a resumed run trained on) not the run's, is made
    again, with a warning, rather than refused.

    Raises:
        DataError: naming the corpus files: one missing or not UTF-8, fewer
            than two documents in all, or instances other than `expected`.
    """
    hashes = []
    for path in options.corpus:
        try:
            hashes.append(file_sha256(path))
        except OSError as e:
            raise DataError(f"corpus file {path}: cannot read it ({e.strerror or e})") from None
    key = _instance_key(options, tokens, hashes)
    path = os.path.join(output, INSTANCES_FILE)
    try:
        instances = Instances.load(path, key, options, len(tokens))
    except DataError as e:
        logger.warning("%s; making the instances again from the corpus", e)
        instances = None
    if instances is not None:
        if expected in (None, instances.sha256()):
            return instances, None
        logger.warning("%s: not the instances the run trained on; making them again from the corpus", path)
    files = ", ".join(options.corpus)
    documents = read_documents(options.corpus, tokenizer)
    logger.info("corpus: %d documents, %d sentences", len(documents), sum(map(len, documents)))
    try:
        instances = create_instances(documents, tokens, options, progress=progress)
    except DataError as e:  # too few documents: the vocabulary was checked before
        raise DataError(f"corpus {files}: {e}") from None
    if expected is not None and instances.sha256() != expected:
        raise DataError(f"corpus {files}: its instances are not those the run in {output} trained on (the corpus "
                        f"or the checkpoint's vocabulary changed since it began); restore them, or start a new run "
                        f"with another --output")
    return instances, key


HISTORY_FIELDS = {"step", "loss", "mlm_loss", "nsp_loss"}


def _state_checksum(state):
    """sha256 of state.json's values but `checksum`: a flipped bit, or a
    value changed into another in range, is caught."""
    values = {k: v for k, v in state.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode("utf-8")).hexdigest()


def _save_state(directory, trainer, state):
    """This step's weights (with the optimizer's), then state.json, which
    names the step and commits it; then earlier steps' weights go."""
    os.makedirs(directory, exist_ok=True)
    name = WEIGHTS_FILE.format(step=state["step"])
    path = os.path.join(directory, name)
    with atomic_output(path, suffix=".weights.h5") as tmp:
        trainer.save_weights(tmp)
    state = dict(state, weights_sha256=file_sha256(path))
    write_json(os.path.join(directory, STATE_FILE), dict(state, checksum=_state_checksum(state)))
    for other in os.listdir(directory):
        if other != name and WEIGHTS_NAME.fullmatch(other):
            remove_quietly(os.path.join(directory, other))


def _damaged(path, problem):
    """The DataError for a damaged file of training/, saying the way out."""
    return DataError(f"{path}: {problem}; restore it, or remove {os.path.dirname(path)} to train this run again "
                     f"from step 0 (--resume)")


def _is_loss(value):
    # A diverged run's NaN loss is still a loss: the file may record it.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _read_state(path):
    """The saved state at `path`, every field's type and the checksum
    checked (its ranges, which need the run's length: `_check_steps`).

    Raises:
        DataError: naming the file and the field.
    """
    try:
        state = read_json(path, error=DataError, what="pre-training state")
    except DataError as e:
        raise _damaged(path, str(e).removeprefix(f"{path}: ")) from None

    def need(name, ok, expected):
        if not ok:
            raise _damaged(path, f"`{name}` is {state.get(name)!r:.80}, expected {expected}")

    need("step", is_int(state.get("step"), 1), "a step count")
    history = state.get("history")
    need("history", isinstance(history, list) and all(
        isinstance(h, dict) and set(h) == HISTORY_FIELDS and is_int(h["step"], 1)
        and all(_is_loss(h[k]) for k in ("loss", "mlm_loss", "nsp_loss")) for h in history),
        "a list of {step, loss, mlm_loss, nsp_loss}")
    need("seconds", is_number(state.get("seconds")) and state["seconds"] >= 0, "seconds of training")
    need("sequences", is_int(state.get("sequences"), 0), "a count of sequences")
    for name in ("instances_sha256", "weights_sha256", "checksum"):
        need(name, isinstance(state.get(name), str) and re.fullmatch("[0-9a-f]{64}", state[name]), "a sha256")
    if state["checksum"] != _state_checksum(state):
        raise _damaged(path, "changed since it was written (its values do not match its checksum)")
    return state


def _check_steps(path, state, options, total):
    """Refuse a state whose step, history or count of sequences is not one
    this run (`total` steps of `options`) saves.

    Raises:
        DataError: naming the file and the field.
    """
    step, every = state["step"], options.save_every
    # Saves happen every save_every steps and after the last.
    if step > total or (step != total and step % every):
        raise _damaged(path, f"`step` is {step}, not a step this run of {total} saves at (every {every})")
    if [h["step"] for h in state["history"]] != list(range(every, step, every)) + [step]:
        raise _damaged(path, f"`history` does not hold one entry for each save up to step {step}")
    # Every step trains batch_size rows (the stream wraps around the instances).
    if state["sequences"] != step * options.batch_size:
        raise _damaged(path, f"`sequences` is {state['sequences']}, not {step} steps of {options.batch_size}")


def _checked_weights(directory, state):
    """The path of the saved step's weights file, once it is the file
    state.json recorded (its sha256).

    Raises:
        DataError: naming the weights file, missing, unreadable or changed.
    """
    path = os.path.join(directory, WEIGHTS_FILE.format(step=state["step"]))
    try:
        digest = file_sha256(path)
    except OSError as e:
        raise _damaged(path, f"cannot read it ({e.strerror or e}); {STATE_FILE} says step {state['step']} "
                             f"was saved there") from None
    if digest != state["weights_sha256"]:
        raise _damaged(path, f"changed since it was saved (its sha256 differs from {STATE_FILE}'s)")
    return path


def _load_weights(path, trainer):
    """Load a saved step's weights and optimizer state into `trainer`.

    Raises:
        DataError: naming the file, when it does not fit the model.
    """
    trainer.optimizer.build(trainer.trainable_variables)
    try:
        trainer.load_weights(path)
    except (OSError, ValueError, KeyError) as e:  # the --checkpoint changed under the run
        raise _damaged(path, f"does not fit this run's model ({type(e).__name__}: {e})") from None


def pretrain(options, output, *, resume=False, progress=True):
    """Continue pre-training `options.checkpoint` on `options.corpus`.

    Returns the `RunRecord`; `results` holds global_step, instances,
    sequences (the rows trained on: batch_size a step, wrapping around
    the instances), history (mean losses of each saved stretch),
    train_seconds and sequences_per_second.  The result is
    OUTPUT/checkpoint.

    Every refusal comes before `output` is first written, so the
    corrected command (without --resume) starts as if it were the first.

    Raises:
        ConfigError: a run is at `output` and `resume` is false, or it ran
            with other options; the checkpoint has no vocab.txt, or fewer
            positions than `max_seq_len`.
        CheckpointError: the checkpoint cannot be read.
        DataError: a corpus file is missing or not UTF-8, or the corpus
            holds fewer than two documents; a resumed run's state.json or
            weights file is damaged, or its corpus changed since.
    """
    import keras
    from tqdm.auto import tqdm

    from kbert.seeding import reseed
    from kbert.tokenization import Tokenizer, load_vocab_tokens, validate_case_matches_checkpoint
    from kbert.views import pretraining_model
    from kbert.weights.export import export_checkpoint
    from kbert.weights.loading import checkpoint_directory, load_checkpoint

    validate_case_matches_checkpoint(cased=options.cased, checkpoint=options.checkpoint)
    record = runs.RunRecord(kind="pretrain", status="training", options=dataclasses.asdict(options),
                            max_seq_len=options.max_seq_len, cased=options.cased)
    # Refused at once if the run cannot start; written only once every input is checked.
    stored = runs.check_start(output, record, resume)
    if stored is not None and stored.status == "complete":
        logger.info("%s: run already complete", output)
        return stored
    training_dir = os.path.join(output, TRAINING_DIR)
    state_path = os.path.join(training_dir, STATE_FILE)
    state = None
    if os.path.lexists(state_path):
        if stored is None:  # not this run's to overwrite
            raise ConfigError(f"{output}: holds a saved pre-training state ({state_path}) but no run.json; "
                              f"choose another --output")
        state = _read_state(state_path)
    keras.utils.set_random_seed(options.seed)
    bert = load_checkpoint(options.checkpoint, training=True, trainable=True, fresh_heads=True)
    if bert.vocab_file is None:
        raise ConfigError(f"{options.checkpoint}: no vocab.txt beside the checkpoint")
    # Refused now rather than after training, when OUTPUT/checkpoint is written.
    refuse_overlap(output, [checkpoint_directory(options.checkpoint), bert.vocab_file, *options.corpus],
                   flag="--output", error=ConfigError)
    if options.max_seq_len > bert.bert_config.max_position_embeddings:
        raise ConfigError(f"--max-seq-len {options.max_seq_len} exceeds the checkpoint's max_position_embeddings "
                          f"({bert.bert_config.max_position_embeddings})")
    tokens = load_vocab_tokens(bert.vocab_file)
    tokenizer = Tokenizer.from_vocab_file(bert.vocab_file, cased=options.cased,
                                          vocab_size=bert.bert_config.vocab_size)
    _Vocabulary(tokens, f"vocabulary file {bert.vocab_file}")  # [MASK] too, before the corpus is read
    instances, unsaved_key = _instances(output, options, tokenizer, tokens, progress,
                                        expected=state and state["instances_sha256"])
    total = options.num_train_steps or -(-len(instances) // options.batch_size)
    if state is not None:
        _check_steps(state_path, state, options, total)
        weights_path = _checked_weights(training_dir, state)

    record = runs.start_run(output, record, resume)
    runs.copy_vocab(output, bert.vocab_file)
    if unsaved_key is not None:
        instances.save(os.path.join(output, INSTANCES_FILE), unsaved_key)
    order = _BatchOrder(instances, options.batch_size, options.seed)
    trainer = pretraining_model(bert)
    compile_pretraining(trainer, options, total)
    if state is None:
        state = {"step": 0, "history": [], "seconds": 0.0, "sequences": 0, "instances_sha256": instances.sha256()}
    else:
        _load_weights(weights_path, trainer)
        logger.info("resuming at step %d of %d", state["step"], total)

    bar = tqdm(total=total * options.batch_size, initial=state["sequences"], desc="pretrain", unit="seq",
               disable=not progress, dynamic_ncols=True)
    step = state["step"]
    while step < total:
        # Each saved stretch draws its dropout from (seed, stretch) alone: a
        # resumed run replays it exactly.
        reseed(bert, options.seed, step // options.save_every)
        started, losses, sequences = time.perf_counter(), [], 0
        end = min(total, (step // options.save_every + 1) * options.save_every)
        for step in range(step, end):
            x, y, weights = order.batch(step)
            logs = trainer.train_on_batch(x, y, sample_weight=weights, return_dict=True)
            losses.append([float(logs["loss"]), float(logs["mlm_loss"]), float(logs["nsp_loss"])])
            sequences += len(y["nsp"])
            bar.update(len(y["nsp"]))
            bar.set_postfix(mlm=f"{losses[-1][1]:.3f}", nsp=f"{losses[-1][2]:.3f}")
        step = end
        mean = np.mean(losses, axis=0)
        state["history"].append({"step": step, "loss": float(mean[0]), "mlm_loss": float(mean[1]),
                                 "nsp_loss": float(mean[2])})
        state["seconds"] += time.perf_counter() - started
        state["sequences"] += sequences
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
            sequences=state["sequences"],
            history=state["history"],
            train_seconds=state["seconds"],
            sequences_per_second=state["sequences"] / max(state["seconds"], 1e-9),
            initialized=list(bert.load_report.initialized),
            backend=keras.backend.backend(),
        ),
    )
    runs.write_run(output, record)
    shutil.rmtree(training_dir, ignore_errors=True)  # the run is complete: nothing to resume
    return record
