"""kbert's import graph, read from the source with `ast`: no cycle, and no
import against the layering that docs/architecture.md documents.

Every import counts, at module level or inside a function: an import
moved into a function to break a cycle still ties the two modules.  The
layers are read from the architecture page's table, so the page and the
code cannot disagree.
"""

import ast
import pathlib
import re

import pytest

pytestmark = pytest.mark.keras_free

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = REPO / "kbert"
ARCHITECTURE = REPO / "docs" / "architecture.md"
BACKENDS = ("keras", "tensorflow", "jax", "torch")


def modules():
    """{dotted module name: path} of every module in the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _resolve(name, known):
    """The longest known module that `name` (a module or module.attribute) names."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return None


def imports(path, known, *, top_level_only=False):
    """(kbert modules, other top-level packages) that the file at `path` imports."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    ours, theirs = set(), set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "kbert":
                resolved = _resolve(name, known)
                if resolved:
                    ours.add(resolved)
            else:
                theirs.add(name.split(".")[0])
    return ours, theirs


def graph():
    known = modules()
    edges = {}
    for name, path in known.items():
        ours, _ = imports(path, known)
        # A package's own __init__ is what `import kbert.x` runs first; it is not an edge.
        edges[name] = {other for other in ours if other != name and not name.startswith(other + ".")
                       and other != "kbert"}
    return edges


def cycles(edges):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def documented_layers():
    """{module: layer number} from the architecture page's table of layers."""
    known = modules()
    layer_of = {}
    for line in ARCHITECTURE.read_text().splitlines():
        row = re.match(r"\|\s*(\d+)\.[^|]*\|([^|]*)\|", line)
        if not row:
            continue
        for entry in re.findall(r"`([^`]+)`", row.group(2)):
            name = "kbert." + entry.replace("/", ".")
            if name.endswith(".*"):
                package = name[:-2]
                members = [m for m in known if m == package or m.startswith(package + ".")]
            else:
                members = [name]
            for member in members:
                assert member in known, f"docs/architecture.md names `{entry}`, which is no module"
                layer_of[member] = int(row.group(1))
    return layer_of


def test_there_is_no_import_cycle():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_module_is_in_the_documented_layers():
    layer_of = documented_layers()
    missing = sorted(set(modules()) - set(layer_of) - {"kbert"})
    assert missing == [], f"add these to the table of layers in docs/architecture.md: {missing}"


def test_no_module_imports_from_a_layer_above_its_own():
    layer_of = documented_layers()
    against = [f"{name} (layer {layer_of[name]}) imports {other} (layer {layer_of[other]})"
               for name, others in sorted(graph().items()) if name in layer_of
               for other in sorted(others) if other in layer_of and layer_of[other] > layer_of[name]]
    assert against == []


@pytest.mark.parametrize("name", ["kbert.cli", "kbert.commands.flags", "kbert.options", "kbert.registry",
                                  "kbert.saving", "kbert.errors", "kbert.checks", "kbert.weights.name_map"])
def test_what_the_command_line_reads_first_is_keras_free(name):
    known = modules()
    seen, todo = set(), [name]
    while todo:  # everything these modules import at module level, transitively
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        ours, theirs = imports(known[current], known, top_level_only=True)
        loaded = sorted(set(theirs) & set(BACKENDS))
        assert not loaded, f"{name} loads {loaded} through {current}"
        # Importing kbert.x runs kbert/__init__ first; it defers its imports.
        todo.extend(ours - {"kbert"})
