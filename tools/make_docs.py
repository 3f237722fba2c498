"""Build docs/results.md (and the README's headline table) from the committed result files.

Every figure on the results page comes from a JSON file in ``docs/results/`` written by the
experiment's own command (named beside each table); this script only formats them, so the
page can always be rebuilt and never drifts from the outputs:

    python tools/make_docs.py [--check]

``--check`` exits 1 when the committed pages differ from what the result files give.
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
PAGE = ROOT / "docs" / "results.md"
README = ROOT / "README.md"
START, END = "<!-- headline:start -->", "<!-- headline:end -->"

# Published MP-20 CSP figures (match rate %, RMSE), from each paper's MP-20 CSP table.


def load(name: str):
    path = RESULTS / name
    if not path.is_file():
        return None
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return json.loads(path.read_text())


def pct(value, digits: int = 2) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}"


def num(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def registered(section: str) -> list[tuple[str, str]]:
    """(file, label) of the registered experiments of one section, in registry order."""
    return [
        (entry["file"], entry["label"])
        for entry in registry().values()
        if entry["section"] == section
    ]


def paper_rows() -> list[tuple[str, dict]]:
    """(label, record) of each paper-table run, in registry order."""
    return [(label, rec) for name, label in registered("paper") if (rec := load(name)) is not None]


def headline_table() -> str:
    rows = paper_rows()
    if not rows:
        return "_No paper-table run recorded yet (`scripts/paper_tables.py`)._"
    lines = [
        "| MP-20, 10,000 crystals | struct. valid | comp. valid | COV-R | COV-P | SG JSD | "
        "wdist density | wdist E_form | wdist #elem. | stable | S.U.N. | S.U.N., not P1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    shown_paper = set()
    for label, rec in rows:
        if rec["set"] not in shown_paper:
            p = rec["paper"]
            name = "SymmCD paper, " + ("all SGs" if rec["set"] == "all" else "10 SGs")
            lines.append(
                f"| {name} | {p['struct_valid']} | {p['comp_valid']} | {p['cov_recall']} | "
                f"{p['cov_precision']} | {p['sg_jsd']} | {p.get('wdist_density', 'n/a')} | "
                f"{p.get('wdist_formation_energy', 'n/a')} | "
                f"{p.get('wdist_num_elements', 'n/a')} | {p['stable']} | {p['sun']} | "
                f"{p.get('ssun', 'n/a')} |"
            )
            shown_paper.add(rec["set"])
        m = rec["metrics"]
        relaxed = m.get("n_relaxed") or 0
        # records written before wdist_formation_energy_chgnet existed hold CHGNet's figure
        e_form = (
            num(m["wdist_formation_energy"])
            if "wdist_formation_energy_chgnet" in m
            else "n/a (CHGNet's)"
        )
        lines.append(
            f"| {label} | {pct(m['struct_valid'])} | {pct(m['comp_valid'])} | "
            f"{pct(m['cov_recall'])} | {pct(m['cov_precision'])} | {num(m['sg_jsd'])} | "
            f"{num(m['wdist_density'])} | {e_form} | {num(m['wdist_num_elements'])} | "
            f"{pct(m.get('stable'), 1)} | {pct(m.get('sun'), 1)}"
            + (f" ({relaxed} relaxed) |" if relaxed else " |")
            + f" {pct(m.get('ssun'), 1)} |"
        )
    return "\n".join(lines)


def paper_section() -> str:
    out = ["## Against the published numbers", "", headline_table(), ""]
    for label, rec in paper_rows():
        m = rec["metrics"]
        out.append(
            f"- {label}: `{rec['command']}`; {rec['model']}; sampling "
            f"{rec['sampling']['seconds']:.0f} s; templates {m['unique_templates']:,} distinct / "
            f"{pct(m['templates_in_train'], 1)} % in train / {m['new_templates']:,} new "
            f"(paper, all SGs: 2,794 / 40.8 % / 1,654); unique {pct(m['unique'])} %, novel "
            f"{pct(m['novel'])} %; at 1 Å {pct(m['struct_valid_1A'])} %; SG match "
            f"{pct(m['sg_match'])} %; wdist density {num(m['wdist_density_all_valid'], 3)}, "
            f"#elements {num(m['wdist_num_elements_all_valid'], 3)} (over every valid sample), "
            "E_form with CHGNet "
            f"{num(m.get('wdist_formation_energy_chgnet', m['wdist_formation_energy']), 3)} "
            "eV/atom; SG JSD "
            "with symmcd's first "
            f"definition {num(m.get('sg_jsd_base2_all_readable'))}"
        )
    out += [
        "",
        "Published protocol: one draw per crystal, so crystals that collapse or lose their "
        "symmetry count as failures; the default sampler redraws them (and pushes colliding "
        "orbits apart, `--repulsion 1.0`). SG JSD as the field's code computes it (natural log, "
        "valid samples, pymatgen's default tolerances; [evaluation.md](evaluation.md)). "
        "Stability: CHGNet relaxation against the offline hull of MP-20 + MPTS-52 entries, "
        "which calls stable a large share of what MP puts above its hull (calibration below): "
        "these rates are upper bounds, not comparable with the paper's DFT/MP-hull figures. "
        "S.U.N., not P1: stable, unique, novel and still above P1 after the free relaxation, "
        "the share the field now reports beside S.U.N. because unconstrained generators reach "
        "S.U.N. with many P1 crystals (the paper did not report it). "
        "Trained on the offline MP-20 training set (not the full train split the paper used).",
        "",
    ]
    return "\n".join(out)


def ablation_section() -> str:
    rows = load("ablation.jsonl")
    out = ["## What each lever buys (one draw per crystal, 1,000 crystals at seeds 0 and 1)", ""]
    if not rows:
        return "\n".join(out + ["_Not run yet._", ""])
    out += [
        "| row | struct. valid | at 1 Å | comp. valid | SG match | wdist #elements | "
        "elements rebalanced | crystals/s | command |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['label']} | {pct(r['struct_valid'])} | {pct(r['struct_valid_1A'])} | "
            f"{pct(r['comp_valid'])} | {pct(r['sg_match'])} | {num(r['wdist_num_elements'], 3)} "
            f"| {pct(r.get('rebalanced', 0.0), 1)} | {r['crystals_per_s']:.1f} | "
            f"`{r['command']}` |"
        )
    out += [
        "",
        "Values pooled over the two seeds (2,000 crystals: about +-0.8 points on a validity "
        "share). Elements rebalanced: crystals whose composition failed SMACT's test and took "
        "the likeliest charge-balanced elements instead (`symmcd.sampling.charge_balance`). "
        "crystals/s was measured while other jobs shared the cores "
        "(load averages in the file): it compares rows only roughly; the default-sampler "
        "table below has the timed runs.",
        "",
    ]
    return "\n".join(out)


CSP_PEERS = [
    ("DiffCSP (Jiao et al., NeurIPS 2023)", "51.49 / 0.0631", "77.93 / 0.0492"),
    ("FlowMM (Miller et al., ICML 2024)", "61.39", ""),
    ("Crystalite (no templates)", "66.09 / 0.033", ""),
    ("CSPML (Kusaba et al. 2022; retrieved template, elements substituted)", "70.51", ""),
    ("DiffCSP++ (Jiao et al., ICLR 2024; CSPML templates refined)", "70.58 / 0.0272", ""),
    ("CrystaLLM (formula only)", "55.85", "75.14"),
    ("OMatG (Hoellmer et al., ICML 2025)", "69.83", "78.27 (k=5)"),
]
CSP_STAGES = (
    ("retrieval", "retrieved templates alone, in prototype order"),
    ("refined", "+ refinement by the network, in prototype order"),
    ("pipeline", "+ CHGNet ranking: `symmcd csp` as shipped"),
)


def ci(stats: dict, key: str) -> str:
    low, high = stats[f"{key}_ci95"]
    return f"{pct(stats[key], 1)} ({pct(low, 1)}-{pct(high, 1)})"


def csp_rows(rec: dict, subset: str, label: str, stages: tuple = CSP_STAGES) -> list[str]:
    if subset not in rec:
        return []
    s, k = rec[subset], rec["k"]
    return [
        f"| {label}: {name} | {s['test_crystals']:,} | {ci(s[key], 'match_at_1')} | "
        f"{ci(s[key], f'match_at_{k}')} | {num(s[key][f'rmse_at_{k}'])} | "
        f"{pct(s[key].get('metre'), 1)} | {num(s[key].get('crmse'))} |"
        for key, name in stages
    ]


def csp_section() -> str:
    out = ["## Structure prediction (`symmcd csp`)", ""]
    runs = [(load(f"csp_benchmark_{d}.json"), d) for d in ("mp20", "mpts52")]
    if not any(rec for rec, _ in runs):
        return "\n".join(out + ["_Not run yet._", ""])
    out += [
        "Each test crystal's reduced formula goes through the whole pipeline (retrieval of "
        "templates of the same stoichiometry, refinement, the generative prior where no "
        "template exists, CHGNet ranking) and each row orders the same candidates as one "
        "stage would. @1: the first candidate matches; @20: any of the first 20; 95 % Wilson "
        "intervals. Leaks to keep in mind: CHGNet was trained on MPtrj, which holds test "
        "crystals, so the energy-ranked rows are not blind (the retrieval rows use no energy); "
        "the shipped network, which refines, trained on MP-20 crystals of which 688 are in "
        "MPTS-52 test. Each MPTS-52 row retrieves from MPTS-52's own older side only. "
        "Polymorph-aware metrics (Martirossyan et al. 2025): the n test crystals of one formula "
        "get its first n candidates, METRe is the share of test crystals any of them matches, "
        "cRMSE the mean RMS distance of the best match with stol = 0.5 where none matches. "
        "MP-20-ps, the polymorph-grouped split, cannot be rebuilt here (its files are not "
        'offline, and 6,561 train crystals are missing); the rows "formula absent from the '
        'pool" are its nearest analogue: no polymorph of the test formula is known to the '
        "pipeline.",
        "",
        "| test set: ordering | test crystals | match @1 % | match @20 % | RMSE @20 | METRe % "
        "| cRMSE |",
        "|---|---|---|---|---|---|---|",
    ]
    for rec, name in runs:
        if rec is None:
            continue
        label = {"mp20": "MP-20", "mpts52": "MPTS-52"}[name]
        out += csp_rows(rec, "all", label)
        out += csp_rows(rec, "formula_not_in_pool", f"{label}, formula absent from the pool")
        out += csp_rows(
            rec,
            "formula_in_pool",
            f"{label}, formula in the pool (a polymorph of it is known)",
            CSP_STAGES[-1:],
        )
    old = load("csp_benchmark_generative.json")
    if old is not None:
        s = old["all"]
        out.append(
            f"| MP-20: generative prior only (the earlier `symmcd csp`, energy-ranked) | "
            f"{s['compositions']:,} | {pct(s['energy_top1_match_rate'], 1)} | "
            f"{pct(s['k20_match_rate'], 1)} | {num(s['k20_rmse'])} |"
        )
    out.append("")
    for rec, name in runs:
        if rec is None:
            continue
        s = rec["all"]
        planned = re.search(r"--compositions (\d+)", rec["command"])
        if planned and int(planned.group(1)) > s["test_crystals"]:
            out.append(
                f"- {name}: **partial**: {s['test_crystals']:,} of the {int(planned.group(1)):,} "
                "seeded test crystals so far; the same command resumes the run."
            )
        out.append(
            f"- {name}: `{rec['command']}`; pool: {rec['pool']}; {s['no_template']} test "
            f"crystals had no template of their stoichiometry (generative prior), "
            f"{s['no_candidates']} no candidate, {s.get('templates_not_refined', 0)} templates "
            f"larger than the network's cells kept unrefined; "
            f"{rec['seconds_per_formula']:.1f} s per formula ({rec['machine']}). {rec['protocol']}."
        )
    if old is not None:
        out.append(
            f"- generative prior only: `{old['command']}`, by the script before templates "
            f"({old['protocol']}); `--generative-only` runs that pipeline today."
        )
    out += ["", "Peers, MP-20 test (all 9,046 crystals), from their papers:", ""]
    out += ["| method | @1 match % / RMSE | @20 match % / RMSE |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in CSP_PEERS]
    out.append("")
    return "\n".join(out)


# Per property, a floor whose share the targets table shows: wide-gap crystals (issue 38's band-gap
# criterion, predicted gap >= 2 eV).
AT_LEAST = {"band_gap": 2.0}


def short(value) -> str:
    return "-" if value is None else f"{value:g}"


def targets_section() -> str:
    out = ["## Property-targeted sampling (`symmcd sample --target`)", ""]
    records = [
        (load(name), label)
        for name, label in registered("targets")
        if name.startswith("property_targets_")
    ]
    if not any(rec for rec, _ in records):
        return "\n".join(out + ["_Not run yet._", ""])
    out += [
        "The conditioned model named in each table, default sampler otherwise; the property of the "
        "structurally valid samples against the target, and what the guidance weight costs. "
        "Target `-` is the same model without a target. Novelty is against the MP-20 training "
        "split (StructureMatcher, as `symmcd evaluate`). Formation energies are CHGNet's after "
        "relaxation: on the crystals as sampled CHGNet's energies follow the unrelaxed geometry "
        "more than the chemistry (medians above zero, in the wrong order, in a 10-crystal "
        "probe), and a relaxation stopped at its step limit leaves the energy above its "
        "minimum, most often for the strongly bound (oxide, fluoride) crystals of low targets. "
        "Band gaps are a property model's predictions on the crystals as sampled, not DFT.",
        "",
    ]
    for rec, label in records:
        if rec is None:
            continue
        out += [
            f"**{label}**, measured with {rec['measured_with']}; {rec['n']} crystals per row; "
            f"`{rec['command']}`",
            "",
        ]
        if "predictor" in rec:
            out += [predictor_line(rec["predictor"]), ""]
        floor = AT_LEAST.get(rec["property"])
        out += [
            "| target | guidance | median (25-75 %) | within +-0.5 of target | within +-0.25 "
            "(untargeted) | "
            + ("" if floor is None else f">= {floor:g} (untargeted) | ")
            + "struct. valid | comp. valid | SG match | novel | relaxations converged | "
            "sampling s |",
            "|---|---|---|---|---|---|---|---|---|---|---|" + ("" if floor is None else "---|"),
        ]
        untargeted = next((r for r in rec["rows"] if r["target"] is None), None)
        for r in rec["rows"]:
            converged = r.get("relax_converged")
            hits = "-"
            if r["target"] is not None:
                hits = pct(hit_share(r["values"], r["target"]), 1)
                if untargeted is not None:
                    hits += f" ({pct(hit_share(untargeted['values'], r['target']), 1)})"
            above = ""
            if floor is not None:
                above = pct(share_at_least(r["values"], floor), 1)
                if untargeted is not None and r["target"] is not None:
                    above += f" ({pct(share_at_least(untargeted['values'], floor), 1)})"
                above += " | "
            sg_match = r.get("sg_match")
            out.append(
                f"| {short(r['target'])} | {short(r['guidance'])} | "
                f"{r['median']:.2f} ({r['q25']:.2f} to {r['q75']:.2f}) | "
                f"{'-' if r.get('within_0.5') is None else pct(r['within_0.5'], 1)} | {hits} | "
                f"{above}{pct(r['struct_valid'], 1)} | {pct(r['comp_valid'], 1)} | "
                f"{'-' if sg_match is None else pct(sg_match, 1)} | "
                f"{pct(r['novel'], 1)} | {'-' if converged is None else pct(converged, 1)} | "
                f"{r['sampling_seconds']:.0f} |"
            )
        out += ["", *median_gaps(rec["rows"]), ""]
    return "\n".join(out)


def share_at_least(values: list, floor: float) -> float | None:
    """Share of the measured values (NaN = failed, left out) at or above ``floor``."""
    known = [v for v in values if v is not None and v == v]
    return sum(v >= floor for v in known) / len(known) if known else None


def hit_share(values: list, target: float, window: float = 0.25) -> float | None:
    """Share of the measured values (NaN = failed, left out) within ``window`` of ``target``."""
    known = [v for v in values if v is not None and v == v]
    return sum(abs(v - target) <= window for v in known) / len(known) if known else None


def portable(text: str) -> str:
    """``text`` with this checkout written as ``.`` and this machine's home folder as ``~``."""
    return text.replace(str(ROOT) + "/", "./").replace(str(Path.home()), "~")


def predictor_line(pred: dict) -> str:
    cfg = pred.get("config") or {}
    return (
        f"Predictor: `symmcd property train --target {cfg.get('target')} --representation "
        f"{cfg.get('representation')}{'' if cfg.get('symmetry') else ' --no-symmetry'} "
        f"--epochs {cfg.get('epochs')} --hidden-dim {cfg.get('hidden_dim')} "
        f"--layers {cfg.get('num_layers')}`: test MAE {num(pred.get('test_mae'), 3)} over "
        f"{pred.get('test_labels'):,} test crystals ({pred.get('train_labels'):,} training labels)."
    )


def median_gaps(rows: list[dict]) -> list[str]:
    """Per guidance weight: the lowest and highest target and how far apart their medians are."""
    lines = []
    for weight in sorted({r["guidance"] for r in rows if r["guidance"] is not None}):
        targeted = sorted((r for r in rows if r["guidance"] == weight), key=lambda r: r["target"])
        if len(targeted) < 2:
            continue
        low, high = targeted[0], targeted[-1]
        lines.append(
            f"Guidance {weight:g}: targets {low['target']:g} and {high['target']:g} give medians "
            f"{low['median']:.2f} and {high['median']:.2f}, {high['median'] - low['median']:.2f} "
            f"apart (targets {high['target'] - low['target']:g} apart)."
        )
    return lines


def archive_section() -> str:
    return (
        "## Archived checks and one-off studies\n\nWhich prototype ranking ships, what the "
        "asymmetric unit costs a property model, CHGNet's formation energies and the reference "
        "hull on known crystals, SG JSD against an independent recomputation, CDVAE's property "
        "model as converted: [archive/checks.md](archive/checks.md), with the commit that "
        "reproduces each.\n"
    )


def page() -> str:
    """The results page, with this machine's home folder written as ``~`` and the checkout as
    ``.`` wherever a recorded command or path names them."""
    return portable(
        "\n".join(
            [
                "# Results",
                "",
                "Generated by `python tools/make_docs.py` from the files in "
                "[results/](results/), each written by the command named beside its table and "
                "registered in `scripts/experiments.yaml` (`python tools/run_experiment.py NAME` "
                "reruns one); "
                "nothing here is typed by hand. Measured on 2 x86_64 CPU cores, no GPU. "
                "Figures of earlier models and metric definitions: [archive/](archive/).",
                "",
                paper_section(),
                ablation_section(),
                csp_section(),
                targets_section(),
                archive_section(),
                not_run_section(),
            ]
        )
    )


def not_run_section() -> str:
    """The registered experiments whose result file is missing (each section leaves them out)."""
    missing = [
        f"- {name}: `{entry['command']}`"
        for name, entry in registry().items()
        if not (RESULTS / entry["file"]).is_file()
    ]
    return "\n".join(["## Registered, not run yet", "", *missing, ""]) if missing else ""


def readme_with_headline(text: str) -> str:
    if START not in text or END not in text:
        return text
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{headline_table()}\n{END}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    new_page = page()
    new_readme = readme_with_headline(README.read_text())
    if args.check:
        stale = [
            str(path)
            for path, text in ((PAGE, new_page), (README, new_readme))
            if not path.is_file() or path.read_text() != text
        ]
        if stale:
            print("out of date: " + ", ".join(stale), file=sys.stderr)
            sys.exit(1)
        return
    PAGE.write_text(new_page)
    README.write_text(new_readme)
    scrubbed = scrub_machine_paths()
    print(f"wrote {PAGE} and the headline table of {README}")
    if scrubbed:
        print(f"machine paths scrubbed from {', '.join(scrubbed)}")


def scrub_machine_paths() -> list[str]:
    """Rewrite the committed result files with this checkout as ``.`` and the home folder as
    ``~`` (the scripts record their command lines and folders as run): no machine paths in the
    repository."""
    changed = []
    for path in sorted(RESULTS.glob("*.json*")):
        text = path.read_text()
        if portable(text) != text:
            path.write_text(portable(text))
            changed.append(path.name)
    return changed


if __name__ == "__main__":
    main()
