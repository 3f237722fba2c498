"""The comparison with the method's published MP-20 results, one command per row set.

Samples N crystals with the shipped model (or --checkpoint) under the published protocol unless
told otherwise (one draw per crystal: collapsed or off-symmetry crystals count as failures), over
all space groups (`--set all`) or the 10 most common MP-20 groups (`--set top10`); evaluates them
against the whole MP-20 test split, relaxing a seeded subsample of `--relax` valid samples with
CHGNet; writes every metric, the settings and the paper's figures as JSON (`--json`, default
`docs/results/paper_tables_<set>[_attempts<K>][_repulsion<D>][_<decoding>].json`), from which
`tools/make_docs.py` builds the results page.

    python scripts/paper_tables.py --set all --out RUN_DIR [--n 10000] [--relax 100]
        [--max-attempts 1] [--repulsion 0] [--element-decoding argmax] [--precision auto]
        [--workers W] [--checkpoint PATH] [--no-symmetric-relax] [--no-coverage] [--json PATH]

RUN_DIR/samples and RUN_DIR/eval/metrics.json are reused when they were written with the same
settings (an evaluation with others is replaced), so a stopped run resumes (descriptors,
fingerprints, energies and relaxations done before come from the crystal store).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from symmcd.cli import add_sampling_options
from symmcd.evaluation import evaluate
from symmcd.sampling import sample_to_dir
from symmcd.sampling.config import PRESETS
from symmcd.sampling.sampler import load_model

TOP10 = (2, 12, 14, 62, 63, 139, 166, 194, 221, 225)
SAMPLING = ("max_attempts", "precision", "repulsion", "element_decoding")
# The SymmCD paper (MP-20, 10,000 samples); stable and S.U.N. in % of relaxed samples; the
# Wasserstein distances (its Table 2) for all groups only.
PAPER = {
    "all": {
        "struct_valid": 94.32,
        "comp_valid": 85.85,
        "cov_recall": 99.64,
        "cov_precision": 98.87,
        "sg_jsd": 0.0899,
        "stable": 9.4,
        "sun": 7.0,
        "wdist_density": 0.0901,
        "wdist_formation_energy": 0.1166,
        "wdist_num_elements": 0.3990,
    },
    "top10": {
        "struct_valid": 97.31,
        "comp_valid": 87.10,
        "cov_recall": 97.21,
        "cov_precision": 99.42,
        "sg_jsd": 0.4737,
        "stable": 11.7,
        "sun": 9.9,
    },
}


def ensure_samples(folder: Path, args: argparse.Namespace) -> dict:
    """Sample into `folder` unless it already holds a run with the same settings."""
    wanted = {"spacegroups": list(TOP10) if args.set == "top10" else None, "seed": args.seed}
    wanted |= {key: getattr(args, key) for key in SAMPLING}
    if (folder / "summary.json").is_file():
        summary = json.loads((folder / "summary.json").read_text())
        then = {"repulsion": 0.0, "element_decoding": "argmax"} | summary["conditions"]
        then |= {"spacegroups": then["spacegroups"] or None, "precision": then.get("precision")}
        if args.precision == "auto":  # auto resolves per machine: any precision will do
            then["precision"] = "auto"
        if summary["n"] != args.n or any(then.get(k) != v for k, v in wanted.items()):
            sys.exit(f"{folder} holds a run with other settings; pick another --out")
        print(f"reusing samples in {folder}")
        return summary
    return sample_to_dir(folder, args.n, checkpoint=args.checkpoint, **wanted)


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
    name += f"_attempts{args.max_attempts}" if args.max_attempts != 1 else ""
    name += f"_repulsion{args.repulsion:g}" if args.repulsion else ""
    name += (
        "_" + args.element_decoding.replace("-", "") if args.element_decoding != "argmax" else ""
    )
    return Path(__file__).resolve().parents[1] / "docs" / "results" / f"{name}.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("all", "top10"), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--relax", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--checkpoint", default=None)
    add_sampling_options(parser, SAMPLING, PRESETS["published"])
    parser.add_argument("--json", type=Path, default=None, help="where to write the JSON record")
    off = {"action": "store_false"}
    parser.add_argument("--no-symmetric-relax", dest="relax_symmetric", help="free only", **off)
    parser.add_argument("--no-coverage", dest="coverage", help="no fingerprints, COV-R/P", **off)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    summary = ensure_samples(args.out / "samples", args)
    metrics_path = args.out / "eval" / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    options = {key: getattr(args, key) for key in ("relax", "relax_symmetric", "coverage")}
    then = {"relax": None, "relax_symmetric": True, "coverage": True} | metrics
    if all(then[key] == value for key, value in options.items()):
        print(f"reusing {metrics_path}")
    else:
        samples, folder = args.out / "samples", args.out / "eval"
        options |= {"workers": args.workers, "seed": args.seed, "overwrite": True}
        metrics = evaluate(samples, None, None, folder, **options)
    path = args.json or default_json_path(args)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "command": "python scripts/paper_tables.py " + " ".join(sys.argv[1:]),
        "set": args.set,
        "model": model_line(args.checkpoint),
        "sampling": {k: summary.get(k) for k in ("n", "seconds", "crystals_per_second")},
        "sampling_conditions": summary.get("conditions", {}),
        "paper": PAPER[args.set],
        "metrics": {k: v for k, v in metrics.items() if not isinstance(v, dict)},
    }
    path.write_text(json.dumps(record, indent=1) + "\n")
    shown = ("struct_valid", "comp_valid", "cov_recall", "sg_jsd", "stable", "sun")
    print(f"wrote {path}: " + ", ".join(f"{k} {metrics.get(k)}" for k in shown))


if __name__ == "__main__":
    main()
