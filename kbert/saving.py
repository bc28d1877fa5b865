"""kbert's Keras objects, registered for `keras.saving.load_model`.

Their classes register themselves when their modules are imported.  `import
kbert` imports them all, except inside the `kbert` command, which loads
Keras only when a command needs it; whatever reads a `.keras` file calls
`register_all()` first.
"""

import importlib

# Every module that defines a class or function registered with
# `keras.saving.register_keras_serializable(package="kbert")`.
REGISTERING_MODULES = ("kbert.layers", "kbert.losses", "kbert.model", "kbert.optimization", "kbert.student")


def register_all():
    """Import the registering modules (cheap once they are loaded)."""
    for name in REGISTERING_MODULES:
        importlib.import_module(name)
