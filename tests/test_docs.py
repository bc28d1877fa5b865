"""The documentation stays true to the code: README.md and docs/.

- the name-map tables in docs/loading.md are `kbert.weights.name_map`'s rows;
- the stage option tables in docs/pipeline.md and docs/pretraining.md are the
  options dataclasses' fields and defaults;
- docs/api.md documents exactly the public names of `kbert.__all__`;
- README.md is short, its relative links lead to files that exist, and the
  example programs it shows are the files under docs/examples/;
- every page is in mkdocs.yml's nav (`mkdocs build --strict` checks the
  links; this checks without mkdocs installed);
- no dated working notes ("today", "this change", issue numbers).

Keras-free: the name map is read from its file (it imports only `re` and
`dataclasses`), the options and `__all__` from the source's syntax tree, so
importing the `kbert` package (which loads Keras) is never needed.  The one
test that runs the example programs does so in subprocesses.

`python tests/test_docs.py` prints the generated tables, to paste into the
docs when the code changes.
"""

import ast
import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.keras_free

REPO = pathlib.Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
README = REPO / "README.md"
README_MAX_LINES = 200

# The name-map tables: the name_map.py constant -> the page that shows it.
NAME_MAPS = ("ORIGINAL", "HUGGING_FACE", "KERAS_HUB")
NAME_MAP_PAGE = DOCS / "loading.md"
# The options tables: (source file, dataclass) -> the page that shows it.
OPTION_TABLES = {
    ("kbert/options.py", "FinetuneOptions"): DOCS / "pipeline.md",
    ("kbert/options.py", "MaterialsOptions"): DOCS / "pipeline.md",
    ("kbert/options.py", "DistillOptions"): DOCS / "pipeline.md",
    ("kbert/pipeline.py", "PipelineOptions"): DOCS / "pipeline.md",
    ("kbert/options.py", "PretrainOptions"): DOCS / "pretraining.md",
    ("kbert/options.py", "PredictOptions"): DOCS / "pipeline.md",
}
# README code blocks that are files under docs/examples/, shown whole.
EXAMPLES = ("docs/examples/load_checkpoint.py", "docs/examples/keras_bert_program.py")

# Dated working-note phrasing: true the day it was written, false after.
DATED = re.compile(r"\btoday\b|\btoday's\b|\bthis change\b|\bthis session\b|\bthe issue\b|\bissue \d+|#\d+\b"
                   r"|\bre-measured after\b|\bnow reaches\b", re.IGNORECASE)
# In code, tests and records "today" and "#1" also occur as data (MRPC's "#1 ID" column).
SOURCE_DATED = re.compile(r"\btoday's\b|\bthis change\b|\bthis session\b|\bthe issue\b|\bissue \d+"
                          r"|\bre-measured after\b", re.IGNORECASE)


# -- reading the code without importing kbert --------------------------------


def name_map_module():
    """kbert/weights/name_map.py, executed from its file (no `kbert` import)."""
    path = REPO / "kbert" / "weights" / "name_map.py"
    spec = importlib.util.spec_from_file_location("_docs_name_map", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def name_map_rows(table_name):
    """[(name, layer, weight, transform or "")] of one table, as written."""
    table = getattr(name_map_module(), table_name)
    return [(row.name, row.layer, row.weight, row.transform or "") for row in table]


def option_fields(source, class_name):
    """[(field, default source text or None)] of a dataclass, read from the
    syntax tree; a default naming a module constant shows the constant's value."""
    text = (REPO / source).read_text(encoding="utf-8")
    tree = ast.parse(text)
    constants = {
        node.targets[0].id: ast.get_source_segment(text, node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
    }
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            fields = []
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    default = None if item.value is None else ast.get_source_segment(text, item.value)
                    if isinstance(item.value, ast.Name) and item.value.id in constants:
                        default = constants[item.value.id]
                    fields.append((item.target.id, default))
            return fields
    raise AssertionError(f"{source} has no class {class_name}")


def public_names():
    """(`_PUBLIC` {name: module}, `__all__`) of kbert/__init__.py."""
    tree = ast.parse((REPO / "kbert" / "__init__.py").read_text(encoding="utf-8"))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("_PUBLIC", "__all__"):
                found[node.targets[0].id] = ast.literal_eval(node.value)
    return found["_PUBLIC"], found["__all__"]


# -- reading the docs ------------------------------------------------------


def marked_table(page, marker):
    """The rows (lists of cell texts, backticks dropped) of the table that
    follows `<!-- marker -->` in `page`."""
    lines = page.read_text(encoding="utf-8").splitlines()
    comment = f"<!-- {marker} -->"
    assert comment in lines, f"{page.name} has no {comment} (the table the test compares)"
    rows = []
    for line in lines[lines.index(comment) + 1 :]:
        if not line.strip():
            if rows:
                break
            continue
        if not line.startswith("|"):
            break
        rows.append([cell.strip().replace("`", "") for cell in line.strip().strip("|").split("|")])
    assert len(rows) >= 2 and set(rows[1]) <= {"---", ":---", "---:"}, f"{page.name}: no table after {comment}"
    return rows[2:]


def name_map_markdown(table_name):
    lines = [f"<!-- name-map: {table_name} -->",
             "| checkpoint variable | Keras layer | weight | transform |", "|---|---|---|---|"]
    for name, layer, weight, transform in name_map_rows(table_name):
        lines.append(f"| `{name}` | `{layer}` | `{weight}` | {transform} |")
    return "\n".join(lines)


def options_markdown(source, class_name):
    lines = [f"<!-- options: {class_name} -->", "| field | default |", "|---|---|"]
    for field, default in option_fields(source, class_name):
        lines.append(f"| `{field}` | {'required' if default is None else f'`{default}`'} |")
    return "\n".join(lines)


def markdown_files():
    return sorted(DOCS.glob("*.md")) + [README]


def relative_links(text):
    """Link targets of `text` that are paths in this repository (no scheme,
    no pure anchors), without their #anchor; code blocks and spans skipped."""
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    text = re.sub(r"`[^`\n]*`", "", text)
    targets = []
    for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


def code_blocks(text):
    """[(info string, body)] of the fenced code blocks of `text`."""
    return re.findall(r"^```([^\n]*)\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


# -- the tests -------------------------------------------------------------


@pytest.mark.parametrize("table_name", NAME_MAPS)
def test_name_map_tables_are_name_map_rows(table_name):
    documented = [tuple(cells) for cells in marked_table(NAME_MAP_PAGE, f"name-map: {table_name}")]
    assert documented == name_map_rows(table_name), (
        f"{NAME_MAP_PAGE.name}'s {table_name} table differs from kbert/weights/name_map.py; "
        f"replace it with:\n\n{name_map_markdown(table_name)}\n"
    )


@pytest.mark.parametrize("source, class_name", list(OPTION_TABLES))
def test_option_tables_are_the_dataclass_fields(source, class_name):
    page = OPTION_TABLES[source, class_name]
    documented = [(cells[0], None if cells[1] == "required" else cells[1])
                  for cells in marked_table(page, f"options: {class_name}")]
    assert documented == option_fields(source, class_name), (
        f"{page.name}'s {class_name} table differs from {source}; "
        f"replace its first two columns with:\n\n{options_markdown(source, class_name)}\n"
    )


def test_api_page_documents_the_public_names():
    modules, exported = public_names()
    entries = re.findall(r"^::: ([\w.]+)$", (DOCS / "api.md").read_text(encoding="utf-8"), flags=re.MULTILINE)
    expected = sorted(f"{modules[name]}.{name}" for name in exported)
    assert sorted(entries) == expected, "docs/api.md's ::: entries are not kbert.__all__ (module.name of each)"


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; at most {README_MAX_LINES}"


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: p.name)
def test_relative_links_lead_to_files(page):
    missing = [target for target in relative_links(page.read_text(encoding="utf-8"))
               if not (page.parent / target).exists()]
    assert not missing, f"{page.relative_to(REPO)} links to files that do not exist: {missing}"


def test_readme_shows_the_example_files_whole():
    blocks = [body for info, body in code_blocks(README.read_text(encoding="utf-8")) if info.strip() == "python"]
    for example in EXAMPLES:
        assert (REPO / example).read_text(encoding="utf-8") in blocks, f"README.md does not show {example} whole"


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: p.name)
def test_shown_examples_are_the_files(page):
    """A page's Python block that begins as an example file begins is that
    file, whole and as it is."""
    blocks = [body for info, body in code_blocks(page.read_text(encoding="utf-8")) if info.strip() == "python"]
    for example in EXAMPLES:
        source = (REPO / example).read_text(encoding="utf-8")
        for body in blocks:
            if body.splitlines()[:1] == source.splitlines()[:1]:
                assert body == source, f"{page.relative_to(REPO)} shows an old copy of {example}"


def _sources():
    """The code, tests and benchmark records: dated notes are as wrong there."""
    found = [*REPO.joinpath("kbert").rglob("*.py"), *REPO.joinpath("tests").rglob("*.py"),
             *REPO.joinpath("benchmarks").rglob("*.py"), *REPO.joinpath("benchmarks").rglob("*.md")]
    # This file spells the phrases out to find them.
    return sorted(path for path in found if path.name != "test_docs.py")


@pytest.mark.parametrize("page", markdown_files() + _sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_dated_working_notes(page):
    pattern = DATED if page.is_relative_to(DOCS) or page.name == "README.md" else SOURCE_DATED
    found = [(number, line.strip()) for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
             if pattern.search(line)]
    assert not found, f"{page.relative_to(REPO)}: phrasing that is only true the day it was written: {found}"


def test_every_page_is_in_the_nav():
    config = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    in_nav = set(re.findall(r":\s*([\w-]+\.md)\s*$", config, flags=re.MULTILINE))
    pages = {page.name for page in DOCS.glob("*.md")}
    assert pages == in_nav, f"pages not in mkdocs.yml's nav: {sorted(pages - in_nav)}; missing: {sorted(in_nav - pages)}"


@pytest.mark.single_backend
@pytest.mark.parametrize("example", EXAMPLES)
def test_pages_show_what_the_examples_print(example):
    """Under `$ .venv/bin/python EXAMPLE`, README.md (and any page) shows what
    the example prints (on the tiny shared checkpoint; every backend prints
    the same)."""
    from needs import missing

    if not (REPO.parent / "shared" / "fixtures" / "keras_bert_test_checkpoint" / "bert_config.json").is_file():
        missing("the shared fixture ../shared/fixtures/keras_bert_test_checkpoint is missing")
    prompt = f"$ .venv/bin/python {example}\n"
    shown = {page: body[len(prompt):] for page in markdown_files()
             for info, body in code_blocks(page.read_text(encoding="utf-8")) if body.startswith(prompt)}
    assert README in shown, f"README.md shows no `{prompt.strip()}` block with its output"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, example], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for page, output in shown.items():
        assert output == result.stdout, f"{page.relative_to(REPO)}: {example} now prints:\n{result.stdout}"


if __name__ == "__main__":
    for table_name in NAME_MAPS:
        print(name_map_markdown(table_name), end="\n\n")
    for source, class_name in OPTION_TABLES:
        print(options_markdown(source, class_name), end="\n\n")
