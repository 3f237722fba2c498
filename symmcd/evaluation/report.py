"""Visual report: ``report.html`` plus PNG figures next to it (matplotlib, Agg backend)."""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from pymatgen.core import Structure  # noqa: E402

from symmcd.evaluation.distributions import spacegroup_histogram  # noqa: E402
from symmcd.evaluation.io import CrystalSet  # noqa: E402
from symmcd.evaluation.summary import CrystalSummary  # noqa: E402

EXAMPLES = 12
TOP_TEMPLATES = 25


def _save(figure: plt.Figure, path: Path) -> str:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name


def plot_spacegroups(samples: CrystalSummary, reference: CrystalSummary, path: Path) -> str:
    """Normalised space-group histograms of samples and reference over 1..230."""
    figure, axis = plt.subplots(figsize=(11, 3.5))
    groups = np.arange(1, 231)
    for summary, label, color in ((reference, "reference", "0.6"), (samples, "samples", "C0")):
        counts = spacegroup_histogram([int(x) for x in summary.spacegroup if x > 0])
        share = counts / counts.sum() if counts.sum() else counts
        axis.bar(groups, share, width=1.0, alpha=0.6, label=label, color=color)
    axis.set(xlabel="space group number", ylabel="share", xlim=(0, 231))
    axis.legend()
    return _save(figure, path)


def plot_distributions(
    samples: CrystalSummary, reference: CrystalSummary, values: dict, path: Path
) -> str:
    """Density, number of elements and formation energy: samples vs reference."""
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    rows = values.get("sample_wdist_rows", np.flatnonzero(samples.valid))
    panels = (
        ("density (g/cm$^3$)", samples.density[rows], reference.density, 40),
        (
            "number of elements",
            samples.num_elements[rows],
            reference.num_elements[reference.num_elements > 0],
            np.arange(0.5, 9.5),
        ),
        (
            "formation energy (eV/atom, CDVAE model)",
            values.get("sample_formation_energy", np.array([])),
            values.get("ref_formation_energy", np.array([])),
            40,
        ),
    )
    for axis, (label, sample_values, ref_values, bins) in zip(axes, panels, strict=True):
        sample_values = np.asarray(sample_values, dtype=float)
        ref_values = np.asarray(ref_values, dtype=float)
        sample_values = sample_values[np.isfinite(sample_values)]
        ref_values = ref_values[np.isfinite(ref_values)]
        both = np.concatenate([sample_values, ref_values])
        if isinstance(bins, int) and len(both):
            bins = np.linspace(np.percentile(both, 0.5), np.percentile(both, 99.5), bins)
        sides = ((ref_values, "reference", "0.6"), (sample_values, "samples", "C0"))
        for data, name, color in sides:
            if len(data):
                axis.hist(data, bins=bins, density=True, alpha=0.6, label=name, color=color)
        axis.set(xlabel=label, ylabel="density")
    axes[0].legend()
    return _save(figure, path)


def _short(label: str, width: int = 28) -> str:
    return label if len(label) <= width else label[: width - 3] + "..."


def plot_templates(samples: CrystalSummary, train: CrystalSummary, path: Path) -> str:
    """Most frequent Wyckoff templates among samples, coloured by presence in TRAIN, and the
    numbers of distinct templates found in / absent from TRAIN."""
    counts = Counter(t for t in samples.template if t)
    train_templates = set(train.template)
    top = counts.most_common(TOP_TEMPLATES)
    figure, (axis, totals) = plt.subplots(
        1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [5, 1]}
    )
    if top:
        labels = [t for t, _ in top]
        colors = ["C0" if t in train_templates else "C3" for t in labels]
        axis.bar(range(len(top)), [c for _, c in top], color=colors)
        axis.set_xticks(range(len(top)), [_short(t) for t in labels], rotation=75, fontsize=7)
    axis.set(ylabel="samples", title="most frequent Wyckoff templates (blue: in train, red: new)")
    seen = sum(1 for t in counts if t in train_templates)
    totals.bar([0, 1], [seen, len(counts) - seen], color=["C0", "C3"])
    totals.set_xticks([0, 1], ["in train", "new"])
    totals.set(title="distinct templates")
    return _save(figure, path)


def _draw_structure(axis, structure: Structure, title: str) -> None:
    coords = structure.cart_coords
    elements = [site.specie.symbol for site in structure]
    palette = {el: f"C{i % 10}" for i, el in enumerate(sorted(set(elements)))}
    for element in sorted(set(elements)):
        chosen = np.array([e == element for e in elements])
        axis.scatter(*coords[chosen].T, s=60, color=palette[element], label=element)
    matrix = structure.lattice.matrix
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)]) @ matrix
    for a in range(8):
        for b in range(a + 1, 8):
            if bin(a ^ b).count("1") == 1:
                axis.plot(*np.stack([corners[a], corners[b]]).T, color="0.4", lw=0.6)
    axis.set_title(title, fontsize=8)
    axis.legend(fontsize=6, loc="upper left")
    axis.set_axis_off()


def plot_examples(crystals: CrystalSet, summary: CrystalSummary, path: Path) -> str:
    """Grid of up to 12 valid samples (first in file order) with formula and space group."""
    chosen = [i for i in np.flatnonzero(summary.valid)[:EXAMPLES]]
    columns = 4
    rows = max(1, int(np.ceil(len(chosen) / columns)))
    figure = plt.figure(figsize=(3 * columns, 3 * rows))
    for k, index in enumerate(chosen):
        axis = figure.add_subplot(rows, columns, k + 1, projection="3d")
        title = f"{summary.formula[index]}  SG {summary.spacegroup[index]}"
        _draw_structure(axis, crystals.structures[index], title)
    return _save(figure, path)


# (metrics.json key, column name, shown as a percentage): the field's generation table
HEADLINE = (
    ("struct_valid", "struct. valid", True),
    ("comp_valid", "comp. valid", True),
    ("cov_recall", "COV-R", True),
    ("cov_precision", "COV-P", True),
    ("sg_jsd", "SG JSD", False),
    ("wdist_density", "wdist density", False),
    ("wdist_formation_energy", "wdist E_form", False),
    ("wdist_num_elements", "wdist #elem.", False),
    ("stable", "stable", True),
    ("sun", "S.U.N.", True),
    ("ssun", "S.U.N., not P1", True),
)


def headline_table(metrics: dict) -> str:
    """HTML table of the field's headline columns, in its order; stability columns (share of
    the relaxed samples) only when samples were relaxed."""
    cells = []
    for key, name, percent in HEADLINE:
        if key not in metrics:
            continue
        value = metrics[key]
        if value is None:
            text = "n/a"
        elif percent:
            text = f"{100 * value:.2f} %"
        else:
            text = f"{value:.4f}"
        cells.append((name, text))
    relaxed = metrics.get("n_relaxed")
    note = ""
    if relaxed:
        note = f"<p>Stability columns: shares of {relaxed} relaxed valid samples.</p>"
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _ in cells)
    row = "".join(f"<td>{html.escape(text)}</td>" for _, text in cells)
    return f"<table>\n<tr>{head}</tr>\n<tr>{row}</tr>\n</table>\n{note}"


def metrics_table(metrics: dict) -> str:
    """HTML table of the metrics, numbers rounded to 4 significant digits."""
    rows = []
    for key, value in metrics.items():
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        rows.append(f"<tr><td>{html.escape(key)}</td><td>{html.escape(text)}</td></tr>")
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def write_report(
    out_dir: Path,
    metrics: dict,
    crystals: CrystalSet,
    samples: CrystalSummary,
    reference: CrystalSummary,
    train: CrystalSummary,
    values: dict,
    relax_records: list[dict] | None = None,
) -> Path:
    """Write the PNG figures and ``report.html`` into ``out_dir``; return the HTML path."""
    out_dir = Path(out_dir)
    figures = [
        ("Space groups", plot_spacegroups(samples, reference, out_dir / "spacegroups.png")),
        (
            "Distributions",
            plot_distributions(samples, reference, values, out_dir / "distributions.png"),
        ),
        ("Wyckoff templates", plot_templates(samples, train, out_dir / "templates.png")),
        ("Example structures", plot_examples(crystals, samples, out_dir / "examples.png")),
    ]
    sections = "\n".join(
        f'<h2>{html.escape(title)}</h2>\n<img src="{name}" alt="{html.escape(title)}">'
        for title, name in figures
    )
    relax_note = ""
    if relax_records:
        relax_note = f"<p>{len(relax_records)} relaxation records in relaxed/relaxed.jsonl.</p>"
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>symmcd evaluation</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px}}
img{{max-width:100%}}</style>
</head><body>
<h1>symmcd evaluation: {html.escape(str(metrics.get("samples", "")))}</h1>
<p>{metrics.get("n")} samples against {html.escape(str(metrics.get("reference", "")))}.</p>
<h2>Headline</h2>
{headline_table(metrics)}
<h2>Metrics</h2>
{metrics_table(metrics)}
{relax_note}
{sections}
</body></html>
"""
    path = out_dir / "report.html"
    path.write_text(page)
    return path
