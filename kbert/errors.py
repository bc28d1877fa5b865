"""One exception family for everything kbert refuses.

Catch `KbertError` to handle any of them; the subclasses say which kind of
input was wrong.  Every message names the file, the variable or the line.
"""


class KbertError(Exception):
    """Base class of every error kbert raises on bad input."""


class ConfigError(KbertError, ValueError):
    """A configuration file or argument is missing, unreadable or inconsistent."""


class CheckpointError(KbertError):
    """A checkpoint is missing, corrupt, or does not fit the model."""


class DataError(KbertError, ValueError):
    """A data file (TSV, feature cache, teaching materials) is malformed."""
