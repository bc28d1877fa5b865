"""Value checks shared by every reader of user input: one definition of
"an integer" (a bool is not one), "a number" (finite, not a bool, not a
string) and of a stage's options dataclass being well typed."""

import dataclasses
import math
import typing

from kbert.errors import ConfigError


def is_int(value, low=None):
    """An int (not a bool), at least `low` when given."""
    return isinstance(value, int) and not isinstance(value, bool) and (low is None or value >= low)


def is_number(value):
    """A finite int or float (not a bool, not a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # a JSON integer too large for a float
        return False


def check_option_types(options):
    """Refuse a field of a frozen options dataclass whose value does not
    have its declared type (`int`, `float`, `bool`, `str`, `tuple` of str),
    with a ConfigError naming the flag; None is allowed where the default is None.
    Tuple fields given as lists are turned into tuples in place."""
    hints = typing.get_type_hints(type(options))
    for field in dataclasses.fields(options):
        value, kind = getattr(options, field.name), hints[field.name]
        flag = "--" + field.name.replace("_", "-")
        if value is None and field.default is None:
            continue
        if kind is tuple:
            if isinstance(value, str) or not isinstance(value, (tuple, list)) or \
                    not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{flag} must be a list of names, got {value!r}")
            object.__setattr__(options, field.name, tuple(value))
            continue
        ok = {int: is_int, float: is_number, bool: lambda v: isinstance(v, bool),
              str: lambda v: isinstance(v, str)}[kind](value)
        if not ok:
            raise ConfigError(f"{flag} must be {'a number' if kind is float else f'a {kind.__name__}'}, "
                              f"got {value!r}")
