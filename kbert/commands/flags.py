"""One flag vocabulary for every command.

A flag that sets a stage option is spelled after its field (`max_seq_len`
-> `--max-seq-len`) and takes its default from the stage's frozen options
dataclass, never restated here.  Booleans are `--x/--no-x` pairs.  Old
spellings keep working and print a warning (`--out` -> `--output`,
`--max-len` -> `--max-seq-len`).
"""

import argparse
import dataclasses
import sys
import typing

# Old spelling -> current one, accepted with a warning so users' scripts keep working.
DEPRECATED = {"--out": "--output", "--max-len": "--max-seq-len", "--glue-dir": "--data-dir"}
_OLD = {new: old for old, new in DEPRECATED.items()}
# Old switches of a boolean: old -> (current spelling, the value it sets).
DEPRECATED_SWITCHES = {"--uncased": ("--no-cased", False)}


def _warn(old, new):
    print(f"kbert: {old} is deprecated; use {new}", file=sys.stderr)


class _Store(argparse.Action):
    """`store`, warning on stderr when the old spelling was typed."""

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string in DEPRECATED:
            _warn(option_string, DEPRECATED[option_string])
        setattr(namespace, self.dest, values)


class _Switch(argparse.Action):
    """An old switch of a boolean: sets its value and warns."""

    def __init__(self, option_strings, dest, value, **kwargs):
        super().__init__(option_strings, dest, nargs=0, **kwargs)
        self.value = value

    def __call__(self, parser, namespace, values, option_string=None):
        _warn(option_string, DEPRECATED_SWITCHES[option_string][0])
        setattr(namespace, self.dest, self.value)


def field_default(options_class, name):
    """The default of `options_class`'s field `name`."""
    for field in dataclasses.fields(options_class):
        if field.name == name:
            if field.default_factory is not dataclasses.MISSING:
                return field.default_factory()
            # A required field (no default) gets None: the flag is then required.
            return None if field.default is dataclasses.MISSING else field.default
    raise TypeError(f"{options_class.__name__} has no field {name!r}")


def add_flag(parser, flag, aliases=(), **kwargs):
    """`parser.add_argument(flag, ...)`, adding the flag's old spelling if it
    has one, and `aliases` (other current spellings, no warning)."""
    names = [flag, *aliases] + ([_OLD[flag]] if flag in _OLD else [])
    if flag in _OLD and kwargs.get("action") is None:
        kwargs["action"] = _Store
    if kwargs.get("action") is not bool:
        return parser.add_argument(*names, **kwargs)
    kwargs["action"] = argparse.BooleanOptionalAction
    kwargs.setdefault("default", False)
    action = parser.add_argument(*names, **kwargs)
    for old, (new, value) in DEPRECATED_SWITCHES.items():
        if new in (flag, "--no-" + flag[2:]):
            parser.add_argument(old, action=_Switch, value=value, dest=action.dest,
                                default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return action


def add_option(parser, options_class, name, help=None, **kwargs):  # kwargs: add_flag's
    """A flag for the stage option `name`, typed and defaulted by the dataclass."""
    default = field_default(options_class, name)
    flag = "--" + name.replace("_", "-")
    # A bool field defaulting to None ("the stage decides", e.g. a resumed
    # run's own value) is a --x/--no-x pair too.
    if isinstance(default, bool) or typing.get_type_hints(options_class)[name] is bool:
        return add_flag(parser, flag, action=bool, default=default, help=help, dest=name, **kwargs)
    if "type" not in kwargs and default is not None:
        kwargs["type"] = type(default)
    return add_flag(parser, flag, default=default, help=help, dest=name, **kwargs)


def options_from_args(options_class, args, **extra):
    """Build `options_class` from the parsed flags named after its fields."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(options_class) if hasattr(args, f.name)}
    values.update(extra)
    return options_class(**values)
