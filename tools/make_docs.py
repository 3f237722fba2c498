"""Fill the generated blocks of docs/results.md and README.md from the committed result files.

Every table and measured figure on those pages sits between ``<!-- generated:NAME -->`` and
``<!-- /generated -->``: NAME is an experiment of ``scripts/experiments.yaml`` (its table or
notes) or a section of it (the table over its experiments); the prose around them is written by
hand. ``--check`` exits 1 when a page is out of date; a block no renderer knows, or a registered
experiment no block shows, is an error.

    python tools/make_docs.py [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from run_experiment import registry  # noqa: E402  (the registry of scripts/experiments.yaml)

RESULTS = ROOT / "docs" / "results"
PAGES = (ROOT / "docs" / "results.md", ROOT / "README.md")
BLOCK = re.compile(r"(<!-- generated:(\S+) -->\n).*?(<!-- /generated -->)", re.S)
PAPER_TEMPLATES = "2,794 / 40.8 % / 1,654"  # the paper's Wyckoff templates, all SGs
AT_LEAST = {"band_gap": 2.0}  # per property, a floor whose share the targets table shows
CSP_STAGES = (
    ("retrieval", "retrieved templates alone, in prototype order"),
    ("refined", "+ refinement by the network, in prototype order"),
    ("pipeline", "+ CHGNet ranking: `symmcd csp` as shipped"),
)


def load(name: str):
    """The result of one experiment (a list of rows for ``.jsonl``), or None if not run."""
    path = RESULTS / registry()[name]["file"]
    if not path.is_file():
        return None
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return json.loads(path.read_text())


def pct(value, digits: int = 2) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}"


def num(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def short(value) -> str:
    return "-" if value is None else f"{value:g}"


def share(values: list, hit) -> float | None:
    """Share of the measured values (None or NaN = failed, left out) for which ``hit`` holds."""
    known = [v for v in values if v is not None and v == v]
    return sum(map(hit, known)) / len(known) if known else None


def table(header: str, rows: list[str]) -> str:
    """A markdown table from its header cells ("a | b | c") and ready-made rows."""
    columns = header.count("|") + 1
    return "\n".join([f"| {header} |", "|" + "---|" * columns, *rows])


def section(name: str) -> list[tuple[str, dict, dict]]:
    """(experiment, entry, result) of one section's experiments that have run, in order."""
    return [(n, e, r) for n, e in registry().items() if e["section"] == name and (r := load(n))]


def paper_table() -> str:
    """The headline: each paper-table run under the paper's figures for its set."""
    lines, shown = [], set()
    for _, entry, rec in section("paper"):
        if rec["set"] not in shown:
            p = rec["paper"]
            keys = ("struct_valid", "comp_valid", "cov_recall", "cov_precision", "sg_jsd")
            keys += ("wdist_density", "wdist_formation_energy", "wdist_num_elements")
            cells = [str(p.get(k, "-")) for k in (*keys, "stable", "sun", "ssun")]
            sets = "all SGs" if rec["set"] == "all" else "10 SGs"
            lines.append(f"| SymmCD paper, {sets} | " + " | ".join(cells) + " |")
            shown.add(rec["set"])
        m = rec["metrics"]
        relaxed = f" ({m['n_relaxed']} relaxed)" if m.get("n_relaxed") else ""
        lines.append(
            f"| {entry['label']} | {pct(m['struct_valid'])} | {pct(m['comp_valid'])} | "
            f"{pct(m['cov_recall'])} | {pct(m['cov_precision'])} | {num(m['sg_jsd'])} | "
            f"{num(m['wdist_density'])} | {num(m['wdist_formation_energy'])} | "
            f"{num(m['wdist_num_elements'])} | {pct(m.get('stable'), 1)} | "
            f"{pct(m.get('sun'), 1)}{relaxed} | {pct(m.get('ssun'), 1)} |"
        )
    header = "MP-20, 10,000 crystals | struct. valid | comp. valid | COV-R | COV-P | SG JSD | "
    header += "wdist density | wdist E_form | wdist #elem. | stable | S.U.N. | S.U.N., not P1"
    return table(header, lines)


def paper_note(entry: dict, rec: dict) -> str:
    m = rec["metrics"]
    return (
        f"- {entry['label']}: `{rec['command']}`; {rec['model']}; sampling "
        f"{rec['sampling']['seconds']:.0f} s; templates {m['unique_templates']:,} distinct / "
        f"{pct(m['templates_in_train'], 1)} % in train / {m['new_templates']:,} new "
        f"(paper, all SGs: {PAPER_TEMPLATES}); unique {pct(m['unique'])} %, novel "
        f"{pct(m['novel'])} %; at 1 Å {pct(m['struct_valid_1A'])} %; SG match "
        f"{pct(m['sg_match'])} %; wdist density {num(m['wdist_density_all_valid'], 3)}, "
        f"#elements {num(m['wdist_num_elements_all_valid'], 3)} (over every valid sample), "
        f"E_form with CHGNet {num(m['wdist_formation_energy_chgnet'], 3)} eV/atom; SG JSD "
        f"with symmcd's first definition {num(m.get('sg_jsd_base2_all_readable'))}"
    )


def ablation_table(entry: dict, rows: list[dict]) -> str:
    header = "row | struct. valid | at 1 Å | comp. valid | SG match | wdist #elements | "
    header += "elements rebalanced | crystals/s | command"
    return table(
        header,
        [
            f"| {r['label']} | {pct(r['struct_valid'])} | {pct(r['struct_valid_1A'])} | "
            f"{pct(r['comp_valid'])} | {pct(r['sg_match'])} | {num(r['wdist_num_elements'], 3)} "
            f"| {pct(r.get('rebalanced', 0.0), 1)} | {r['crystals_per_s']:.1f} | "
            f"`{r['command']}` |"
            for r in rows
        ],
    )


def ci(stats: dict, key: str) -> str:
    low, high = stats[f"{key}_ci95"]
    return f"{pct(stats[key], 1)} ({pct(low, 1)}-{pct(high, 1)})"


def csp_table() -> str:
    """Per test set and subset, each stage of the pipeline."""
    lines = []
    subsets = (
        ("all", "", CSP_STAGES),
        ("formula_not_in_pool", ", formula absent from the pool", CSP_STAGES),
        ("formula_in_pool", ", formula in the pool (a polymorph of it is known)", CSP_STAGES[-1:]),
    )
    for _, entry, rec in section("csp"):
        k = rec["k"]
        for subset, suffix, stages in subsets:
            s = rec[subset]
            lines += [
                f"| {entry['label']}{suffix}: {name} | {s['test_crystals']:,} | "
                f"{ci(s[key], 'match_at_1')} | {ci(s[key], f'match_at_{k}')} | "
                f"{num(s[key][f'rmse_at_{k}'])} | {pct(s[key].get('metre'), 1)} | "
                f"{num(s[key].get('crmse'))} |"
                for key, name in stages
            ]
    header = "test set: ordering | test crystals | match @1 % | match @20 % | RMSE @20 | "
    return table(header + "METRe % | cRMSE", lines)


def csp_note(entry: dict, rec: dict) -> str:
    s = rec["all"]
    planned = re.search(r"--compositions (\d+)", rec["command"])
    partial = ""
    if planned and int(planned.group(1)) > s["test_crystals"]:
        partial = (
            f"**partial**: {s['test_crystals']:,} of the {int(planned.group(1)):,} seeded test "
            "crystals so far; the same command resumes the run. "
        )
    return (
        f"- {entry['label']}: {partial}`{rec['command']}`; pool: {rec['pool']}; "
        f"{s['no_template']} test crystals had no template of their stoichiometry (generative "
        f"prior), {s['no_candidates']} no candidate, {s['templates_not_refined']} templates "
        f"larger than the network's cells kept unrefined; {rec['seconds_per_formula']:.1f} s per "
        f"formula ({rec['machine']}). {rec['protocol']}."
    )


def targets_table(entry: dict, rec: dict) -> str:
    """One targets run: per (target, guidance) row, where the measured property landed."""
    out = [
        f"**{entry['label']}**, measured with {rec['measured_with']}; {rec['n']} crystals per "
        f"row; `{rec['command']}`",
        "",
    ]
    if "predictor" in rec:
        pred, cfg = rec["predictor"], rec["predictor"]["config"]
        out += [
            f"Predictor: `symmcd property train --target {cfg['target']} --representation "
            f"{cfg['representation']}{'' if cfg['symmetry'] else ' --no-symmetry'} "
            f"--epochs {cfg['epochs']} --hidden-dim {cfg['hidden_dim']} "
            f"--layers {cfg['num_layers']}`: test MAE {num(pred['test_mae'], 3)} over "
            f"{pred['test_labels']:,} test crystals ({pred['train_labels']:,} training labels).",
            "",
        ]
    floor = AT_LEAST.get(rec["property"])
    header = "target | guidance | median (25-75 %) | within +-0.5 of target | within +-0.25 "
    header += "(untargeted) | " + ("" if floor is None else f">= {floor:g} (untargeted) | ")
    header += "struct. valid | comp. valid | SG match | novel | relaxations converged | sampling s"
    rows = []
    base = next((r["values"] for r in rec["rows"] if r["target"] is None), None)
    for r in rec["rows"]:
        hits, above = "-", ""
        if r["target"] is not None:
            near = lambda v, t=r["target"]: abs(v - t) <= 0.25  # noqa: E731
            hits = pct(share(r["values"], near), 1)
            hits += "" if base is None else f" ({pct(share(base, near), 1)})"
        if floor is not None:
            above = pct(share(r["values"], lambda v: v >= floor), 1)
            if base is not None and r["target"] is not None:
                above += f" ({pct(share(base, lambda v: v >= floor), 1)})"
            above += " | "
        rows.append(
            f"| {short(r['target'])} | {short(r['guidance'])} | "
            f"{r['median']:.2f} ({r['q25']:.2f} to {r['q75']:.2f}) | "
            f"{pct(r.get('within_0.5'), 1)} | {hits} | {above}{pct(r['struct_valid'], 1)} | "
            f"{pct(r['comp_valid'], 1)} | {pct(r.get('sg_match'), 1)} | {pct(r['novel'], 1)} | "
            f"{pct(r.get('relax_converged'), 1)} | {r['sampling_seconds']:.0f} |"
        )
    return "\n".join(out + [table(header, rows), ""] + median_gaps(rec["rows"]))


def median_gaps(rows: list[dict]) -> list[str]:
    """Per guidance weight: the lowest and highest target and how far apart their medians are."""
    lines = []
    for weight in sorted({r["guidance"] for r in rows if r["guidance"] is not None}):
        targeted = sorted((r for r in rows if r["guidance"] == weight), key=lambda r: r["target"])
        if len(targeted) >= 2:
            low, high = targeted[0], targeted[-1]
            lines.append(
                f"Guidance {weight:g}: targets {low['target']:g} and {high['target']:g} give "
                f"medians {low['median']:.2f} and {high['median']:.2f}, "
                f"{high['median'] - low['median']:.2f} apart "
                f"(targets {high['target'] - low['target']:g} apart)."
            )
    return lines


def sweep_summary(entry: dict, rec: dict) -> str:
    counts = ", ".join(f"{key} {n}" for key, n in rec["counts"].items())
    return f"{entry['label']}: {rec['n']} cases, {counts}; `{entry['command']}`."


SECTION_TABLES = {"paper": paper_table, "csp": csp_table}
EXPERIMENT_BLOCKS = {
    "paper": paper_note,
    "ablation": ablation_table,
    "csp": csp_note,
    "targets": targets_table,
    "checks": sweep_summary,
}


def render(name: str) -> str:
    """The text of one generated block."""
    experiments = registry()
    if name in experiments:
        entry, rec = experiments[name], load(name)
        if rec is None:
            return f"_Not run yet: `{entry['command']}`._"
        return EXPERIMENT_BLOCKS[entry["section"]](entry, rec)
    if name in SECTION_TABLES:
        return SECTION_TABLES[name]()
    raise SystemExit(f"make_docs: no renderer for the block {name!r}")


def portable(text: str) -> str:
    """``text`` with this checkout written as ``.`` and this machine's home folder as ``~``."""
    return text.replace(str(ROOT) + "/", "./").replace(str(Path.home()), "~")


def filled(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + portable(render(m.group(2))) + "\n" + m.group(3), text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale pages")
    args = parser.parse_args()
    texts = {page: page.read_text() for page in PAGES}
    shown = {m.group(2) for text in texts.values() for m in BLOCK.finditer(text)}
    unshown = [
        name
        for name, entry in registry().items()
        if name not in shown and entry["section"] not in shown
    ]
    if unshown:
        sys.exit(f"make_docs: registered experiments no block shows: {', '.join(unshown)}")
    stale = [page for page, text in texts.items() if filled(text) != text]
    if args.check:
        if stale:
            sys.exit("out of date: " + ", ".join(str(p.relative_to(ROOT)) for p in stale))
        return
    for page in stale:
        page.write_text(filled(texts[page]))
    scrubbed = [p.name for p in sorted(RESULTS.glob("*.json*")) if scrub(p)]
    print(f"updated {len(stale)} page(s)" + (f"; scrubbed {scrubbed}" if scrubbed else ""))


def scrub(path: Path) -> bool:
    """Rewrite a result file without machine paths (scripts record their commands as run)."""
    text = path.read_text()
    cleaned = portable(text)
    if cleaned != text:
        path.write_text(cleaned)
    return cleaned != text


if __name__ == "__main__":
    main()
