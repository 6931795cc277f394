"""An evaluation report as rows: the panel's table, the CSV export and the README's Markdown.

One list of columns serves all three, so they never disagree. The first row
is the real-vs-real floor; each further row is one model and sampler.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

# (heading, how to read it from an entry, format); None where a figure does not apply.
Column = tuple[str, Callable[[dict], Any], str]


def _get(*keys: str):
    def read(entry: dict):
        value: Any = entry
        for key in keys:
            if not isinstance(value, dict) or value.get(key) is None:
                return None
            value = value[key]
        return value
    return read


def _class_extreme(pick):
    def read(entry: dict):
        fractions = entry.get("class_fractions")
        return pick(fractions) if fractions else None
    return read


COLUMNS: list[Column] = [
    ("FID", _get("fid"), ".2f"),
    ("FID∞", _get("fid_infinity"), ".2f"),
    ("KID", _get("kid"), ".1f"),
    ("IS", _get("is"), ".2f"),
    ("precision", _get("precision"), ".3f"),
    ("recall", _get("recall"), ".3f"),
    ("confident", _get("confident_fraction"), ".1%"),
    ("min class", _class_extreme(min), ".1%"),
    ("max class", _class_extreme(max), ".1%"),
    ("ms/image", _get("ms_per_image"), "ms"),
    ("ms/image onnx", _get("ms_per_image_by_backend", "onnx"), "ms"),
    ("ms/image torch", _get("ms_per_image_by_backend", "torch"), "ms"),
    ("−ELBO nats", _get("likelihood", "nats"), ".1f"),
    ("bits/dim", _get("likelihood", "bits_per_dim"), ".3f"),
]
HEADINGS = ["model"] + [c[0] for c in COLUMNS]


def entries(report: dict) -> list[tuple[str, dict]]:
    """(name, entry) for the floor, then every model, in report order."""
    out = [("real held-out digits (floor)", report["floor"])] if report.get("floor") else []
    return out + list(report.get("models", {}).items())


def raw_rows(report: dict) -> list[list[Any]]:
    """Numbers as they are (None where not applicable or failed)."""
    return [[name] + [read(entry) if "error" not in entry else None for _, read, _ in COLUMNS]
            for name, entry in entries(report)]


def formatted(value: Any, spec: str) -> str:
    if value is None:
        return "—"
    if spec == "ms":  # 0.068 ms for a VAE, 4,960 ms for DDPM-1000: three figures, no exponents
        return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    return format(value, spec)


def text_rows(report: dict) -> list[list[str]]:
    rows = []
    for name, entry in entries(report):
        if "error" in entry:
            rows.append([name] + ["failed"] + [""] * (len(COLUMNS) - 1))
        else:
            rows.append([name] + [formatted(read(entry), spec) for _, read, spec in COLUMNS])
    return rows


def markdown_table(report: dict, skip_empty: bool = True) -> str:
    """A Markdown table; columns that are empty in every row are left out."""
    rows = text_rows(report)
    keep = [i for i in range(len(HEADINGS))
            if i == 0 or not skip_empty or any(r[i] not in ("—", "") for r in rows)]
    lines = ["| " + " | ".join(HEADINGS[i] for i in keep) + " |", "|" + "---|" * len(keep)]
    lines += ["| " + " | ".join(r[i] for i in keep) + " |" for r in rows]
    return "\n".join(lines)


def plain_table(report: dict) -> str:
    """Aligned columns for a terminal."""
    rows = [HEADINGS] + text_rows(report)
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADINGS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


def _atomic_write(path: str | os.PathLike, write: Callable) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_csv(report: dict, path: str | os.PathLike) -> Path:
    """The table with full-precision numbers and the ten class fractions."""
    def write(f):
        out = csv.writer(f)
        out.writerow(HEADINGS + [f"class {d}" for d in range(10)])
        for (name, entry), row in zip(entries(report), raw_rows(report)):
            fractions = entry.get("class_fractions") or [None] * 10
            out.writerow(["" if v is None else v for v in row + list(fractions)])
    return _atomic_write(path, write)


def write_json(report: dict, path: str | os.PathLike) -> Path:
    return _atomic_write(path, lambda f: (json.dump(report, f, indent=2, ensure_ascii=False), f.write("\n")))
