"""What a run prints and writes: the table, the ratios, the markdown file.

Ratios compare two measured records that agree on every key but the one
compared: kbert / peer, bucketed / padded, variant / default, and each
student (CNN, BiLSTM, the transformer cut from MiniLM) / its teachers
against the speed targets.
"""

import datetime
import importlib.metadata
import os
import platform

from benchmarks.throughput_parts.flops import MINILM, TRANSFORMER_STUDENTS
from kbert.atomic import write_text_atomic

# Student/teacher speed targets (items/s ratios), by teacher: the small
# students' (CNN, BiLSTM), and the transformer student's against the one
# teacher it is cut from (at least 2.5x).
STUDENT_TARGETS = {"bert-base": 100.0, MINILM: 15.0}
TRANSFORMER_STUDENT_TARGET = 2.5


def add_peak(records, peak):
    for record in records:
        record["peak_gflops"] = peak
        gflops = record.get("gflops_per_second")
        record["fraction_of_peak"] = None if gflops is None else gflops / peak
    return records


def _seq_len_text(record):
    if record["seq_len"] is None:
        return "-"
    if record["mode"] == "padded":
        return f"{record['seq_len']:.0f}"
    return f"mean {record['seq_len']:.1f}"


def format_table(records):
    header = ("impl", "backend", "model", "variant", "batch", "mode", "seq_len", "items/s", "GFLOP/s", "% peak", "note")
    lines = []
    for r in records:
        measured = r["items_per_second"] is not None
        lines.append((
            r["impl"], r["backend"], r["model"], r["variant"], str(r["batch"]), r["mode"], _seq_len_text(r),
            f"{r['items_per_second']:.2f}" if measured else "-",
            f"{r['gflops_per_second']:.1f}" if measured else "-",
            f"{100 * r['fraction_of_peak']:.1f}" if measured and r.get("fraction_of_peak") is not None else "-",
            "" if measured else f"skipped: {r.get('skipped')}",
        ))
    widths = [max(len(row[i]) for row in [header] + lines) for i in range(len(header) - 1)]
    out = []
    for row in [header] + lines:
        cells = [cell.ljust(w) if i < 6 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        out.append("  ".join(cells + [row[-1]]).rstrip())
        if row is header:
            out.append("-" * len(out[0]))
    return "\n".join(out)


def ratio_lines(records, *, over, under, same, line):
    """One line per pair of measured records, compared by items/s.

    For each record `a` with `over(a)`, in order, each record `b` with
    `under(a, b)` that equals `a` on the `same` keys, in order, gives
    `line(a, b, a's items/s / b's)`.
    """
    measured = [r for r in records if r.get("items_per_second")]
    lines = []
    for a in (r for r in measured if over(r)):
        for b in measured:
            if under(a, b) and all(a[k] == b[k] for k in same):
                lines.append(line(a, b, a["items_per_second"] / b["items_per_second"]))
    return lines


def _default(record):
    return record["variant"] == "default"


def _variant_text(record):
    return "" if _default(record) else f" {record['variant']}"


def _target_order(record):
    """Teachers in STUDENT_TARGETS' order, everything else first, each in record order."""
    targets = list(STUDENT_TARGETS)
    return targets.index(record["model"]) if record["model"] in targets else -1


def student_targets(record):
    """{teacher model: items/s ratio target} of a student's record; {} for any other."""
    if record["impl"] == "kbert-student":
        return STUDENT_TARGETS
    if record["impl"] == "kbert" and record["model"] in TRANSFORMER_STUDENTS:
        return {TRANSFORMER_STUDENTS[record["model"]]: TRANSFORMER_STUDENT_TARGET}
    return {}


def ratios(records):
    """[(title, lines)] of every comparison the report prints."""
    def peer(a, b):  # keras-hub runs on every backend: only the same one compares
        return (_default(b) and b["impl"] in ("transformers", "keras-hub")
                and (b["impl"] != "keras-hub" or b["backend"] == a["backend"]))

    def student_line(a, b, ratio):
        target = student_targets(a)[b["model"]]
        verdict = "met" if ratio >= target else "NOT met"
        return (f"{a['model']}/{b['model']} [{a['backend']}] b{a['batch']} "
                f"{a['mode']}: {ratio:.1f}x (target >= {target:g}x: {verdict})")

    return [
        ("kbert / peers", ratio_lines(
            records,
            over=lambda a: a["impl"] == "kbert" and _default(a),
            under=peer,
            same=("model", "batch", "mode"),
            line=lambda a, b, ratio: (f"kbert[{a['backend']}] / {b['impl']}[{b['backend']}]  {a['model']} "
                                      f"b{a['batch']} {a['mode']}: {ratio:.2f}x"),
        )),
        ("bucketed / padded", ratio_lines(
            records,
            over=lambda a: a["mode"] == "bucketed",
            under=lambda a, b: b["mode"] == "padded",
            same=("impl", "backend", "model", "batch", "variant"),
            line=lambda a, b, ratio: (f"{a['impl']}[{a['backend']}] {a['model']}{_variant_text(a)} "
                                      f"b{a['batch']}: bucketed/padded {ratio:.2f}x"),
        )),
        ("variant / default (speed only; int8 accuracy is checked elsewhere)", ratio_lines(
            records,
            over=lambda a: not _default(a),
            under=lambda a, b: _default(b),
            same=("impl", "backend", "model", "batch", "mode"),
            line=lambda a, b, ratio: (f"{a['impl']}[{a['backend']}] {a['model']} b{a['batch']} "
                                      f"{a['mode']}: {a['variant']}/default {ratio:.2f}x"),
        )),
        ("student / teacher", ratio_lines(
            # Each student meets its teachers in the targets' order.
            sorted(records, key=_target_order),
            over=lambda a: bool(student_targets(a)) and _default(a),
            under=lambda a, b: b["impl"] == "kbert" and b["model"] in student_targets(a) and _default(b),
            same=("backend", "batch", "mode"),
            line=student_line,
        )),
    ]


def format_report(records):
    parts = [format_table(records)]
    for title, lines in ratios(records):
        parts.append(f"\n{title}:\n" + ("\n".join("  " + line for line in lines) if lines else "  (no pair measured)"))
    return "\n".join(parts)


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions():
    found = {}
    for name in ("keras", "tensorflow", "jax", "torch", "transformers", "keras-hub", "numpy"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def write_markdown(path, report, *, command, peaks, note):
    """The report with its command, date, machine, peak and versions, written atomically."""
    machine = f"{os.cpu_count()} CPUs (nproc), {cpu_model()}"
    lines = [
        "# Throughput benchmark",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine}",
        "- float32 matmul peak (4096^2, best of 5): "
        + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peaks.items()),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
    ]
    if note:
        lines.append(f"- note: {note}")
    lines += ["", "```", report, "```", ""]
    write_text_atomic(path, "\n".join(lines))
