"""The README's comparison with the method's published MP-20 results, one command per row set.

Samples N crystals with the shipped model (or --checkpoint), one draw per crystal
(`--max-attempts 1`, the default and the published protocol: collapsed or off-symmetry crystals
count as failures; `--max-attempts 10` is symmcd's default sampler, which redraws them), either
over all space groups (`--set all`) or restricted to the 10 most common MP-20 groups (`--set
top10`); evaluates them against the whole MP-20 test split and the shipped training data,
relaxing a seeded subsample of `--relax` valid samples with CHGNet; prints the metrics table and
the Wyckoff-template table as markdown, beside the paper's figures.

    python scripts/paper_tables.py --set all --out RUN_DIR [--n 10000] [--relax 100]
    python scripts/paper_tables.py --set top10 --out RUN_DIR [--n 10000] [--relax 100]
        [--max-attempts 1] [--repulsion 0] [--element-decoding argmax] [--precision auto]
        [--workers W]
        [--checkpoint PATH] [--no-symmetric-relax] [--no-coverage] [--json PATH]

Besides the printed tables, writes every metric, the settings and this command as JSON
(``--json``, default ``docs/results/paper_tables_<set>[_attempts<K>][_repulsion<D>].json``),
from which ``tools/make_docs.py`` builds the results page.

RUN_DIR/samples is reused when it exists and was written with the same settings (so a long run
can be evaluated, or re-printed, without sampling again; relaxations done before, even by a
stopped run, are reused from the crystal store; `symmcd sample --n N --seed S --out
RUN_DIR/samples` writes such a folder); RUN_DIR/eval holds metrics.json and the
HTML report. The fingerprints of the test and training sets are cached (~/.cache/symmcd).
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

from symmcd.cli import add_sampling_options
from symmcd.evaluation import evaluate
from symmcd.sampling import sample_to_dir
from symmcd.sampling.config import PRESETS
from symmcd.sampling.sampler import load_model

TOP10 = (2, 12, 14, 62, 63, 139, 166, 194, 221, 225)
PUBLISHED = PRESETS["published"]  # the defaults of this script: the published protocol

# SymmCD paper (MP-20, 10,000 samples); stable and S.U.N. in % of relaxed samples; the
# Wasserstein distances (Table 2: density, formation energy by CDVAE's model, #elements) for all
# groups only.
PAPER_KEYS = (
    "struct_valid",
    "comp_valid",
    "cov_recall",
    "cov_precision",
    "sg_jsd",
    "stable",
    "sun",
)
PAPER = {
    "all": (94.32, 85.85, 99.64, 98.87, 0.0899, 9.4, 7.0),
    "top10": (97.31, 87.10, 97.21, 99.42, 0.4737, 11.7, 9.9),
}
PAPER_WDIST = {
    "all": {
        "wdist_density": 0.0901,
        "wdist_formation_energy": 0.1166,
        "wdist_num_elements": 0.3990,
    },
    "top10": {},
}
PAPER_TEMPLATES = (2794, 40.8, 1654)
TARGETS = "struct. valid >= 99 %, comp. valid >= 88 %, SG JSD <= 0.07, new templates >= 2,000 "
TARGETS += "per 10,000, S.U.N. >= 10 %"


def ensure_samples(folder: Path, args: argparse.Namespace) -> dict:
    """Sample into `folder` unless it already holds a run with the same settings."""
    spacegroups = list(TOP10) if args.set == "top10" else []
    summary_path = folder / "summary.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        conditions = summary["conditions"]
        same = (
            summary["n"] == args.n
            and (conditions["spacegroups"] or []) == spacegroups
            and conditions["seed"] == args.seed
            and conditions["max_attempts"] == args.max_attempts
            and conditions.get("repulsion", 0.0) == args.repulsion
            and conditions.get("element_decoding", "argmax") == args.element_decoding
            and (args.precision == "auto" or conditions.get("precision", "32") == args.precision)
        )
        if not same:
            raise SystemExit(f"{folder} holds a run with other settings; pick another --out")
        print(f"reusing samples in {folder}")
        return summary
    return sample_to_dir(
        folder,
        args.n,
        checkpoint=args.checkpoint,
        spacegroups=spacegroups or None,
        seed=args.seed,
        max_attempts=args.max_attempts,
        precision=args.precision,
        repulsion=args.repulsion,
        element_decoding=args.element_decoding,
    )


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial share (successes of n)."""
    share, z2 = successes / n, z * z
    centre = (share + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(share * (1 - share) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return centre - half, centre + half


def relaxed_share_line(name: str, share: float | None, n: int) -> str:
    """'name: k of n = x %, 95 % Wilson interval a-b %' for a share of the relaxed crystals."""
    if share is None or n == 0:
        return f"{name}: n/a"
    count = round(share * n)
    low, high = wilson_interval(count, n)
    return (
        f"{name}: {count} of {n} = {100 * share:.2f} %, 95 % Wilson interval "
        f"{100 * low:.1f}-{100 * high:.1f} %"
    )


def model_line(checkpoint: str | None) -> str:
    loaded = load_model(checkpoint)
    parameters = sum(p.numel() for p in loaded.model.parameters())
    meta = getattr(loaded, "metadata", {})
    hardware = meta.get("hardware", {})
    return (
        f"model: {checkpoint or 'shipped default.pt'}, {parameters / 1e6:.2f} M parameters, "
        f"{meta.get('epochs', '?')} epochs ({meta.get('wall_seconds', 0) / 3600:.1f} h on "
        f"{hardware.get('cpu_count', '?')} x {hardware.get('machine', '?')} CPU cores, "
        f"{hardware.get('accelerator', '?')}), val loss {meta.get('val_loss', float('nan')):.3f}, "
        f"{meta.get('sampling_steps', 'all')} sampling steps"
        + (f"; fine-tuned from {meta['fine_tuned_from']}" if "fine_tuned_from" in meta else "")
    )


def default_json_path(args: argparse.Namespace) -> Path:
    name = f"paper_tables_{args.set}"
    if args.max_attempts != 1:
        name += f"_attempts{args.max_attempts}"
    if args.repulsion:
        name += f"_repulsion{args.repulsion:g}"
    if args.element_decoding != "argmax":
        name += "_" + args.element_decoding.replace("-", "")
    return Path(__file__).resolve().parents[1] / "docs" / "results" / f"{name}.json"


def write_record(args: argparse.Namespace, summary: dict, metrics: dict) -> None:
    """Everything the results page needs from this run, as JSON."""
    import sys

    path = args.json or default_json_path(args)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "command": "python scripts/paper_tables.py " + " ".join(sys.argv[1:]),
        "set": args.set,
        "model": model_line(args.checkpoint),
        "sampling": {k: summary.get(k) for k in ("n", "seconds", "crystals_per_second")},
        "sampling_conditions": summary.get("conditions", {}),
        "paper": paper_record(args.set),
        "metrics": {k: v for k, v in metrics.items() if not isinstance(v, dict)},
    }
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")


def paper_record(which: str) -> dict:
    """The paper's figures for a row set, by metric key."""
    return dict(zip(PAPER_KEYS, PAPER[which], strict=True)) | PAPER_WDIST[which]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("all", "top10"), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--relax", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--checkpoint", default=None)
    add_sampling_options(  # the published protocol unless told otherwise
        parser, ["max_attempts", "precision", "repulsion", "element_decoding"], PUBLISHED
    )
    parser.add_argument("--json", type=Path, default=None, help="where to write the JSON record")
    parser.add_argument(
        "--no-symmetric-relax",
        dest="relax_symmetric",
        action="store_false",
        help="relax only freely (the table's columns), not also keeping symmetry: half the time",
    )
    parser.add_argument(
        "--no-coverage",
        dest="coverage",
        action="store_false",
        help="skip the CrystalNN fingerprints: COV-R / COV-P print as n/a",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    started = time.perf_counter()
    summary = ensure_samples(args.out / "samples", args)
    metrics_path = args.out / "eval" / "metrics.json"
    previous = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    settings_then = (
        previous.get("relax"),
        previous.get("relax_symmetric", True),
        previous.get("coverage", True),
    )
    if settings_then == (args.relax, args.relax_symmetric, args.coverage):
        print(f"reusing {metrics_path}")
        metrics = previous
    else:
        metrics = evaluate(
            args.out / "samples",
            None,
            None,
            args.out / "eval",
            relax=args.relax,
            workers=args.workers,
            seed=args.seed,
            relax_symmetric=args.relax_symmetric,
            coverage=args.coverage,
        )

    label = "all SGs" if args.set == "all" else "10 SGs"
    row_note = "" if args.max_attempts == 1 else f", up to {args.max_attempts} draws"
    if args.repulsion:
        row_note += f", repulsion {args.repulsion:g} Å"
    if args.element_decoding != "argmax":
        row_note += f", {args.element_decoding} elements"
    write_record(args, summary, metrics)
    print()
    print(model_line(args.checkpoint))
    draws = "one draw" if args.max_attempts == 1 else f"up to {args.max_attempts} draws"
    print(
        f"samples: {summary['n']} ({label}), {draws} per crystal, seed {args.seed}, precision "
        f"{summary['conditions'].get('precision', '32')}; sampling "
        f"{summary['seconds']:.0f} s ({summary['crystals_per_second']:.2f} crystals/s); "
        f"evaluation {metrics['seconds_total']:.0f} s; reference: {metrics['n_reference']} "
        f"MP-20 test crystals; relaxed: {metrics.get('n_relaxed', 0)} valid samples"
    )
    print()
    print("| | struct. valid | comp. valid | COV-R | COV-P | SG JSD | stable (relaxed) | S.U.N. |")
    print("|---|---|---|---|---|---|---|---|")
    paper = PAPER[args.set]
    print(
        f"| SymmCD paper, {label} | {paper[0]} | {paper[1]} | {paper[2]} | {paper[3]} | "
        f"{paper[4]} | {paper[5]} | {paper[6]} |"
    )
    print(
        f"| symmcd, {label}{row_note} | {percent(metrics['struct_valid'])} | "
        f"{percent(metrics['comp_valid'])} | {percent(metrics['cov_recall'])} | "
        f"{percent(metrics['cov_precision'])} | {metrics['sg_jsd']:.4f} | "
        f"{percent(metrics.get('stable'))} | {percent(metrics.get('sun'))} |"
    )
    print()
    print("| | unique templates | share in train | new templates |")
    print("|---|---|---|---|")
    if args.set == "all":
        print(
            f"| SymmCD paper, {label} | {PAPER_TEMPLATES[0]:,} | {PAPER_TEMPLATES[1]} % | "
            f"{PAPER_TEMPLATES[2]:,} |"
        )
    print(
        f"| symmcd, {label}{row_note} | {metrics['unique_templates']:,} | "
        f"{percent(metrics['templates_in_train'])} % | {metrics['new_templates']:,} |"
    )
    print()
    extra = (
        "struct_valid_1A",
        "sg_match",
        "p1_fraction",
        "unique",
        "novel",
        "wdist_density",
        "wdist_num_elements",
        "wdist_density_all_valid",
        "wdist_num_elements_all_valid",
    )
    extra += ("wdist_formation_energy", "metastable", "msun", "ssun", "stable_fixsym")
    extra += ("sun_fixsym", "seconds_per_relaxation", "seconds_per_relaxation_fixsym")
    for key in extra:
        print(f"{key}: {metrics.get(key)}")
    for key in ("stable", "sun"):
        print(relaxed_share_line(key, metrics.get(key), metrics.get("n_relaxed", 0)))
    print(f"targets: {TARGETS}")
    print(f"wall time of this command: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
