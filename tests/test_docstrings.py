"""Every public layer and model of kbert documents itself: a class docstring
whose `Args:` section names each constructor argument and whose `Example:`
section holds Python that runs.

The arguments are those of the class's own `__init__` in kbert (a layer
without one takes only the Keras base class's keyword arguments), and every
docstring lists `**kwargs` for those.  Each ```python block of the example
is run with `exec` in a namespace of its own, so an example that no longer
matches the code fails here on every backend.
"""

import inspect
import re
import textwrap

import pytest

import kbert
import kbert.layers

CLASSES = {name: getattr(kbert.layers, name) for name in kbert.layers.__all__}
CLASSES.update(BertModel=kbert.BertModel, CNNStudent=kbert.CNNStudent, BiLSTMStudent=kbert.BiLSTMStudent)

# A Google-style section header: a capitalised line of its own ending in a colon.
SECTION = re.compile(r"^[A-Z][A-Za-z ]*:$")
CODE = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def docstring(cls):
    # The class's own docstring, not one inherited from Keras.
    text = cls.__dict__.get("__doc__")
    assert text, f"{cls.__name__} has no class docstring"
    return inspect.cleandoc(text)


def section(text, title):
    """The body of section `title` (dedented), or None if there is none."""
    lines = text.splitlines()
    if f"{title}:" not in lines:
        return None
    body = []
    for line in lines[lines.index(f"{title}:") + 1:]:
        if SECTION.match(line):
            break
        body.append(line)
    return textwrap.dedent("\n".join(body)).strip("\n")


def init_parameters(cls):
    """The named parameters of the kbert `__init__` that `cls` runs (none
    when it inherits Keras' own), without self, *args and **kwargs."""
    for klass in cls.__mro__:
        if "__init__" in klass.__dict__:
            if not klass.__module__.startswith("kbert."):
                return []
            signature = inspect.signature(klass.__init__)
            return [
                p.name
                for p in signature.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            ]
    return []


def documented_arguments(args):
    # An entry is a line at the section's indentation: `name: text`.
    return re.findall(r"^(\*{0,2}\w+):", args, re.MULTILINE)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_args_name_every_parameter(name):
    cls = CLASSES[name]
    args = section(docstring(cls), "Args")
    assert args is not None, f"{name}: no Args: section"
    documented = documented_arguments(args)
    expected = init_parameters(cls) + ["**kwargs"]
    assert sorted(documented) == sorted(expected), f"{name}: Args documents {documented}, __init__ takes {expected}"
    assert len(set(documented)) == len(documented), f"{name}: an argument is documented twice"


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_example_runs(name):
    example = section(docstring(CLASSES[name]), "Example")
    assert example is not None, f"{name}: no Example: section"
    blocks = CODE.findall(example)
    assert blocks, f"{name}: the Example: section has no ```python block"
    for code in blocks:
        exec(compile(code, f"<{name} example>", "exec"), {"__name__": f"example_{name}"})
