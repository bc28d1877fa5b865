"""The student registry: one row per student `kbert distill` can train.

A new student is one layer file (in `kbert/layers/`), one model class (a
functional `keras.Model` whose first two constructor arguments are
`vocab_size` and `num_labels`, with `embedding_dim` and `variant`, and a
`Student-Embedding` layer with `set_matrix`), and one row here.  A student
cut from the teacher itself (`start="teacher"`: the transformer student,
a `BertModel`) is built by `kbert.student.cut_teacher` instead.  Every
reader takes its students from this table: `kbert distill --student`,
`kbert run --students`, `kbert.student.build_student`, distillation's
rebuilding of the kept epoch and the pipeline's report.  The throughput
benchmark builds the CNN and BiLSTM through `build_student` and times the
transformer student's default shape (3 of MiniLM's layers) as a BERT
config (`benchmarks/throughput_parts/flops.py`).

Keras-free: a row names its class as "module:Class", imported on first
use, so `kbert distill --help` lists the students without loading Keras.
"""

import dataclasses
import importlib


@dataclasses.dataclass(frozen=True)
class StudentSpec:
    """One registered student.

    Attributes:
        name: what `--student` takes.
        target: "module:Class", the model class.
        title: how reports name it ("CNN student").
        options: the `DistillOptions` fields handed to the class's
            constructor under the same names (e.g. the BiLSTM's `units`).
        pairs_apart: the class takes `separator_id` and so can read a
            sentence pair's two sides apart (`--pairs siamese`).
        aliases: older class names of the same class, which saved `.keras`
            files and run states may carry.
        start: "embedding" (built by `build_student` from the teacher's
            token vectors) or "teacher" (cut from the teacher model's own
            layers by `cut_teacher`; it reads segment ids too).
        learning_rate: Adam's step size when `--learning-rate` is left out.
        pipeline_epochs: the epochs `kbert run` gives it, (demo, --full);
            the held-out slice then keeps one of them.
    """

    name: str
    target: str
    title: str
    options: tuple = ()
    pairs_apart: bool = False
    aliases: tuple = ()
    start: str = "embedding"
    learning_rate: float = 1e-3
    # The demo's 8 epochs: on the demo's own held-out train rows (seed 42,
    # the length-matched 5%), the CNN's agreement with the teacher was still
    # rising at epoch 4 (0.9415) and reached 0.9451 at epoch 8
    # (benchmarks/results/demo-selection-sst-2.md).
    pipeline_epochs: tuple = (8, 10)

    def load(self):
        """The model class (imports its module, and so Keras)."""
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


STUDENTS = {
    spec.name: spec
    for spec in (
        StudentSpec("cnn", "kbert.student:CNNStudent", "CNN student", aliases=("StudentModel",)),
        StudentSpec("bilstm", "kbert.student:BiLSTMStudent", "BiLSTM student", options=("units", "pooling"),
                    pairs_apart=True),
        # A BERT of the teacher's own layers learns at fine-tuning rates:
        # Adam's 1e-3 for the small students would wreck its start.
        StudentSpec("transformer", "kbert.model:BertModel", "transformer student",
                    options=("layers", "hidden", "heads", "intermediate", "layer_map", "narrow_start"), start="teacher",
                    learning_rate=5e-5,
                    # An epoch over SST-2's 67,349 sentences takes ~300 s on
                    # two cores; holdout agreement rose from epoch 1 to 2
                    # (benchmarks/results/transformer-student-sst-2.md).
                    pipeline_epochs=(2, 3)),
    )
}


def student_classes():
    """{class name, and each alias: class} of every registered student."""
    classes = {}
    for spec in STUDENTS.values():
        cls = spec.load()
        classes.update({name: cls for name in (cls.__name__, *spec.aliases)})
    return classes
