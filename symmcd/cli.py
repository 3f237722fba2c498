"""The `symmcd` command line: argument parsing only.

Each subcommand calls one function of the package; errors a user can cause (`SymmcdError`) are
printed on one line and end the process with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from symmcd.errors import InputError, SymmcdError

# light to import (no torch): the sample options take their defaults from these fields
from symmcd.sampling.config import (
    DEFAULT_GUIDANCE,
    ELEMENT_DECODINGS,
    MAX_ATTEMPTS,
    MAX_MIN_DISTANCE,
    MAX_SCREEN,
    PRECISIONS,
    PRESETS,
    SamplingConfig,
)
from symmcd.signals import Terminated, exit_on_sigterm

SAMPLING_DEFAULTS = {f.name: f.default for f in dataclass_fields(SamplingConfig)}
# = symmcd.sampling.writers.FORMATS (restated so that a bad --format is refused before torch)
SAMPLE_FORMATS = ("cif", "extxyz", "poscar")

# integer options checked right after parsing, before any command imports torch (seconds):
# option dest -> smallest allowed value; None (not given) is always allowed
INTEGER_MINIMUMS = {
    "n": 1,
    "steps": 1,
    "batch_size": 1,
    "seed": 0,
    "max_attempts": 1,
    "corrector_steps": 0,
    "screen": 1,
    "top_k_spacegroups": 1,
    "threads": 1,
    "workers": 1,
    "relax": 0,
}
CHECKED_COMMANDS = ("sample", "csp", "evaluate", "relax", "prepare")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (exit status 2), like every other."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def check_arguments(args: argparse.Namespace) -> None:
    """The checks that need no package code (integer ranges, output formats), run before a
    command imports torch, so a mistyped option is refused at once; InputError naming it."""
    if args.command not in CHECKED_COMMANDS:
        return
    for dest, minimum in INTEGER_MINIMUMS.items():
        value = getattr(args, dest, None)
        if value is None or value >= minimum:
            continue
        kind = "positive" if minimum == 1 else "non-negative"
        if dest == "threads":  # the wording of sampling's torch_threads
            raise InputError(f"threads must be a positive integer, got {value}")
        raise InputError(f"--{dest.replace('_', '-')}: {value} must be a {kind} integer")
    if args.command == "sample":
        unknown = [item.lower() for item in args.format if item.lower() not in SAMPLE_FORMATS]
        if unknown or not args.format:
            bad = ", ".join(unknown) if unknown else "(none)"
            raise InputError(
                f"format: unknown output format {bad}; choose from {', '.join(SAMPLE_FORMATS)}"
            )
    if args.command == "relax":
        if not args.fmax > 0:
            raise InputError(f"--fmax: {args.fmax} must be a positive force in eV/Å")
        if not args.time_limit >= 0:  # NaN too
            raise InputError(f"--time-limit: {args.time_limit} must be 0 (no limit) or more")


def _str_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _cmd_prepare(args: argparse.Namespace) -> None:
    from symmcd.data.prepare import prepare_dataset, prepare_mp20

    sources = {
        split: [Path(p) for p in paths]
        for split, paths in (("train", args.train), ("val", args.val), ("test", args.test))
        if paths
    }
    if args.dataset and sources:
        raise InputError("give either --dataset or --train/--val/--test, not both")
    if not args.dataset and "train" not in sources:
        raise InputError("nothing to prepare: give --dataset mp20 or --train FILE_OR_DIR")
    if args.dataset:
        if args.dataset != "mp20":
            raise InputError(f"unknown shipped dataset {args.dataset!r} (available: mp20)")
        prepare_mp20(
            Path(args.out), symprec=args.symprec, workers=args.workers, overwrite=args.overwrite
        )
    else:
        prepare_dataset(
            sources,
            Path(args.out),
            symprec=args.symprec,
            workers=args.workers,
            overwrite=args.overwrite,
            refuse_empty=True,
        )


def _cmd_info(args: argparse.Namespace) -> None:
    from symmcd.data.dataset import dataset_info

    print(dataset_info(Path(args.path)))


def _cmd_train(args: argparse.Namespace) -> None:
    from symmcd.training.train import parse_overrides, train

    best = train(
        args.config,
        Path(args.out),
        data_dir=Path(args.data) if args.data else None,
        max_epochs=args.max_epochs,
        devices=args.devices,
        strategy=args.strategy,
        accelerator=args.accelerator,
        resume=args.resume,
        overrides=parse_overrides(args.set),
        init_from=args.init_from,
    )
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:  # DDP: only the first process reports
        print(f"best model: {best}")


def sampling_config(args: argparse.Namespace, given: set[str] | frozenset[str] = frozenset()):
    """The SamplingConfig of the `sample` options (each field is an option of the same name):
    the ``--preset``'s values, replaced by the options in ``given`` (those on the command line),
    and the option defaults (the fields' defaults) for the rest."""
    from dataclasses import fields

    from symmcd.sampling.config import SamplingConfig

    if args.spacegroups and args.top_k_spacegroups:
        raise InputError("give either --spacegroups or --top-k-spacegroups, not both")
    preset = PRESETS[args.preset]
    options = {
        f.name: getattr(args, f.name)
        for f in fields(SamplingConfig)
        if f.name in given or f.name not in preset
    }
    return SamplingConfig.preset(args.preset, **options)


def given_options(argv: Sequence[str]) -> set[str]:
    """The destinations of the options on the command line ``argv`` (defaults left out): the
    parser again, with every default of the chosen command suppressed."""
    parser = build_parser()
    for action in parser._subparsers._group_actions:  # the COMMAND choice
        for sub in action.choices.values():
            for option in sub._actions:
                option.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def _cmd_sample(args: argparse.Namespace) -> None:
    from symmcd.sampling import sample_to_dir

    config = sampling_config(args, args.given)
    screen_scores = None
    if config.screen > 1:
        from symmcd.evaluation.cdvae_property import target_distance
        from symmcd.evaluation.workers import default_workers

        screen_scores = target_distance(dict(config.targets), default_workers(), progress=True)
    sample_to_dir(
        Path(args.out),
        args.n,
        config,
        checkpoint=Path(args.checkpoint) if args.checkpoint else None,
        formats=tuple(args.format),
        overwrite=args.overwrite,
        threads=args.threads,
        screen_scores=screen_scores,
        resume=args.resume,
        shard=args.shard,
        workers=args.workers,
    )


def _cmd_csp(args: argparse.Namespace) -> None:
    from symmcd.csp import csp_to_dir
    from symmcd.sampling.sampler import torch_threads

    with torch_threads(args.threads):
        csp_to_dir(
            Path(args.out),
            args.formulas,
            n=args.n,
            checkpoint=Path(args.checkpoint) if args.checkpoint else None,
            relax=args.relax,
            overwrite=args.overwrite,
            workers=args.workers,
            spacegroups=args.spacegroups,
            seed=args.seed,
            steps=args.steps,
            templates=args.templates,
            refine_start=args.refine_start,
        )


def _cmd_evaluate(args: argparse.Namespace) -> None:
    import contextlib

    from symmcd.evaluation import evaluate
    from symmcd.evaluation.workers import dask_cluster

    engine = contextlib.nullcontext()
    if args.cluster is not None:
        engine = dask_cluster(args.cluster, args.workers)
    with engine:
        metrics = evaluate(
            Path(args.samples),
            reference=Path(args.reference) if args.reference else None,
            train=[Path(p) for p in args.train] if args.train else None,
            out_dir=Path(args.out),
            relax=args.relax,
            workers=args.workers,
            seed=args.seed,
            relax_symmetric=args.relax_symmetric,
            coverage=args.coverage,
            overwrite=args.overwrite,
        )
    report_skipped(metrics.get("n_unreadable", 0), metrics.get("n", 0), Path(args.out))
    width = max(len(key) for key in metrics)
    for key, value in metrics.items():
        print(f"{key:<{width}}  {value}")


def _cmd_relax(args: argparse.Namespace) -> None:
    from symmcd.evaluation import relax_dir

    summary = relax_dir(
        Path(args.cif_dir),
        Path(args.out),
        keep_symmetry=args.keep_symmetry,
        steps=args.steps,
        fmax=args.fmax,
        workers=args.workers,
        time_limit=args.time_limit or None,
        overwrite=args.overwrite,
    )
    report_skipped(summary.get("unreadable", 0), summary.get("n", 0), Path(args.out))
    print(json.dumps(_json_ready(summary), indent=2))


def report_skipped(skipped: int, total: int, out: Path) -> None:
    """One line on stderr when some inputs could not be read (listed in OUT/skipped.csv)."""
    if skipped:
        print(
            f"skipped {skipped} of {total} input(s) that could not be read; file and reason of "
            f"each in {out / 'skipped.csv'}",
            file=sys.stderr,
        )


def _json_ready(value):
    """``value`` with NaN and infinities as None, so that it prints as strict JSON."""
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cmd_property_train(args: argparse.Namespace) -> None:
    import torch

    from symmcd.data.prepare import resolve_data_dir
    from symmcd.property.train import PropertyConfig, train_from_prepared

    if args.threads < 0:
        raise InputError(f"--threads: {args.threads} must be 0 (torch's default) or more")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = PropertyConfig(
        target=args.target,
        representation=args.representation,
        symmetry=not args.no_symmetry,
        hidden_dim=args.hidden_dim,
        num_layers=args.layers,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
    )
    data_dir = resolve_data_dir(Path(args.data) if args.data else None)
    metrics = train_from_prepared(config, data_dir, Path(args.out), resume=args.resume)
    test = metrics.get("test_mae")
    print(
        f"best epoch {metrics['best_epoch']}: val MAE {metrics['best_val_mae']:.4f}"
        + (f", test MAE {test:.4f} over {metrics['test_labels']} crystals" if test else "")
        + f" ({metrics['train_labels']} labelled training crystals); {args.out}/model.pt"
    )


def _cmd_property_predict(args: argparse.Namespace) -> None:
    from symmcd.data.io import check_writable_file
    from symmcd.property.predict import predict_cifs

    out = Path(args.out)
    check_writable_file(out)
    frame = predict_cifs(Path(args.model), Path(args.input))
    frame.to_csv(out, index=False)
    skipped = int(frame["reason"].notna().sum()) if "reason" in frame.columns else 0
    print(
        f"wrote {len(frame) - skipped} predictions"
        + (f" and {skipped} skipped crystals (with their reason)" if skipped else "")
        + f" to {out}"
    )


def _option(flag: str, text: str, **settings: Any) -> tuple[str, dict[str, Any]]:
    return flag, {"help": text, **settings}


def sampling_options() -> dict[str, tuple[str, dict[str, Any]]]:
    """Per ``SamplingConfig`` field: its option flag and argparse settings (the default is the
    field's, or a script's own; ``%(default)s`` in the help follows it)."""
    return {
        "spacegroups": _option(
            "--spacegroups",
            "numbers or symbols in any setting, e.g. 225,194 or Fm-3m,P6_3/mmc,P2_1/n,R-3m:H",
            type=_str_list,
        ),
        "top_k_spacegroups": _option(
            "--top-k-spacegroups", "the K most common training groups", type=int
        ),
        "elements": _option("--elements", "allowed elements, e.g. Li,Fe,P,O", type=_str_list),
        "formula": _option(
            "--formula",
            "exact composition, e.g. LiFePO4 (any number of formula units per cell); counts "
            "with a common factor, e.g. Li4O4, are the exact cell content",
        ),
        "steps": _option("--steps", "denoising steps (default: model's)", type=int),
        "batch_size": _option(
            "--batch-size",
            "crystals denoised together (%(default)s; lower it to use less memory)",
            type=int,
        ),
        "seed": _option("--seed", "random seed; same seed, same crystals (%(default)s)", type=int),
        "precision": _option(
            "--precision",
            "network arithmetic: auto = bf16 on CPUs with native bfloat16, else 32 (%(default)s)",
            choices=PRECISIONS,
        ),
        "max_attempts": _option(
            "--max-attempts",
            "draws per crystal: one whose atoms collapse (< 0.5 A) or whose spglib check fails "
            f"is redrawn, up to N draws in all (%(default)s; at most {MAX_ATTEMPTS}; 1 keeps "
            "every first draw)",
            type=int,
        ),
        "corrector_steps": _option(
            "--corrector-steps",
            "Langevin corrector moves of the coordinates before each denoising step "
            "(%(default)s; 0: predictor only; each move costs one more network call)",
            type=int,
        ),
        "min_distance": _option(
            "--min-distance",
            "redraw crystals with two atoms closer than this many Angstrom (%(default)s, the "
            f"collapse threshold; at most {MAX_MIN_DISTANCE:g})",
            type=float,
        ),
        "element_temperature": _option(
            "--element-temperature",
            "divide the network's element logits by this at every step (%(default)s; 1, as "
            "trained; below 1 favours the elements it finds most likely; 0.05-10)",
            type=float,
        ),
        "charge_balanced": _option(
            "--charge-balanced",
            "also redraw crystals whose composition fails SMACT's charge-neutrality test "
            "(compositional validity): a filter, counted in `attempts`",
            action="store_true",
        ),
        "element_decoding": _option(
            "--element-decoding",
            "the last element draw: the network's likeliest element per orbit (argmax), or, for "
            "a crystal that fails SMACT's charge-neutrality test, the likeliest elements that "
            "pass it (charge-balanced; default %(default)s)",
            choices=ELEMENT_DECODINGS,
        ),
        "repulsion": _option(
            "--repulsion",
            "in the last 10%% of steps, push apart orbits whose replicated atoms come closer "
            "than D Å (%(default)s; 0: off, as in the published protocol)",
            type=float,
            metavar="D",
        ),
        "targets": _option(
            "--target",
            "sample toward a property, e.g. --target formation_energy_per_atom=-2.5 or "
            "--target band_gap=1.5 (repeatable; uses the shipped conditioned model unless "
            "--checkpoint names another conditioned model)",
            dest="targets",
            action="append",
            metavar="NAME=VALUE",
        ),
        "guidance": _option(
            "--guidance",
            "classifier-free guidance weight for --target, refused without one (default "
            f"{DEFAULT_GUIDANCE:g}; 1: the conditional model alone, one network call per step; "
            "above 1 pushes harder toward the target at twice the calls and some compositional "
            "validity, see docs/results.md; 0: unconditional)",
            type=float,
            metavar="W",
        ),
        "screen": _option(
            "--screen",
            "with a formation-energy --target: sample K times as many crystals and keep those "
            "whose formation energy, as CDVAE's model predicts it, lies nearest the target "
            f"(%(default)s: off; at most {MAX_SCREEN}; about 0.15 s per candidate and core)",
            type=int,
            metavar="K",
        ),
    }


def add_sampling_options(
    parser: argparse.ArgumentParser,
    names: Sequence[str] | None = None,
    defaults: dict[str, Any] | None = None,
) -> None:
    """Add the options of ``SamplingConfig``'s fields (all, or ``names``) to ``parser``, each
    with the field's default unless ``defaults`` gives another (a script that defaults to the
    published protocol): the one place a sampling option is defined."""
    options = sampling_options()
    for name in names or options:
        flag, settings = options[name]
        default = (defaults or {}).get(name, SAMPLING_DEFAULTS[name])
        if settings.get("action") == "store_true":
            parser.add_argument(flag, **settings)
        else:
            parser.add_argument(flag, default=default, **settings)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="symmcd",
        description="Generate symmetric inorganic crystals by diffusion over the asymmetric unit.",
    )
    from symmcd import __version__

    parser.add_argument("--version", action="version", version=f"symmcd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("prepare", help="turn CIFs into a training cache of asymmetric units")
    p.add_argument("--dataset", help="a shipped dataset to prepare (mp20)")
    p.add_argument("--train", nargs="+", metavar="SRC", help="CSV(s) of CIFs or folder(s) of .cif")
    p.add_argument("--val", nargs="+", metavar="SRC", help="validation CSV(s)/folder(s)")
    p.add_argument("--test", nargs="+", metavar="SRC", help="test CSV(s)/folder(s)")
    p.add_argument("--out", required=True, help="output folder for the cache")
    p.add_argument("--symprec", type=float, default=0.1, help="spglib tolerance in Å (0.1)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--overwrite", action="store_true", help="rebuild an existing cache")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("info", help="summarise a prepared dataset")
    p.add_argument("path", help="a prepared folder or one cache file")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("train", help="train a model (Lightning; CPU, GPU, DDP)")
    p.add_argument("--config", default="cpu-small", help="shipped config name or YAML path")
    p.add_argument("--out", required=True, help="run folder (checkpoints, logs, model.pt)")
    p.add_argument("--data", help="prepared data folder (default: shipped MP-20, prepared once)")
    p.add_argument(
        "--max-epochs", type=int, default=None, help="stop after N epochs (default: the config's)"
    )
    p.add_argument("--devices", type=int, default=1, help="devices to train on (%(default)s)")
    p.add_argument("--strategy", default="auto", help="e.g. ddp")
    p.add_argument("--accelerator", default="auto", help="cpu, gpu or auto")
    p.add_argument("--resume", action="store_true", help="continue from RUN/last.ckpt")
    p.add_argument(
        "--init-from",
        metavar="MODEL",
        help="start from the weights of a model.pt ('default': the shipped model), to fine-tune",
    )
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override config entries, e.g. --set max_epochs=100 model.hidden_dim=512",
    )
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("sample", help="generate crystals (uses the shipped model by default)")
    p.add_argument("--n", type=int, required=True, help="number of crystals")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--checkpoint", help="model.pt to use (default: the shipped model)")
    p.add_argument(
        "--format",
        type=_str_list,
        default=["cif"],
        help="output formats, comma-separated: cif (cifs/), extxyz (samples.extxyz), poscar "
        "(poscar/, one POSCAR per crystal); default cif",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    p.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default="default",
        help="named settings, under any option given here: published = one draw per crystal, no "
        "repulsion, argmax elements (the protocol of the published figures); default = the "
        "defaults shown (%(default)s)",
    )
    add_sampling_options(p)
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads outside the sampling arithmetic, which always runs on one "
        "thread so that the crystals do not depend on this (default: the cores other processes "
        "leave free, from the load average)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the unfinished run of these settings in OUT.partial from its finished "
        "chunks (of --batch-size crystals each)",
    )
    p.add_argument(
        "--shard",
        metavar="I/K",
        help="make only shard I of K (every K-th chunk): shards of one run give the crystals of "
        "the unsplit run; the last to finish writes OUT",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes sampling the chunks side by side, one CPU thread each (%(default)s)",
    )
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser(
        "csp",
        help="structure prediction: known structures of the stoichiometry with the elements "
        "substituted, refined by the network, ranked by CHGNet energy",
    )
    p.add_argument("formulas", nargs="+", metavar="FORMULA", help="e.g. LiFePO4 NaCl")
    p.add_argument("--n", type=int, default=20, help="candidates per formula (20)")
    p.add_argument("--out", required=True, help="output folder (CIFs + ranking.csv)")
    p.add_argument("--relax", action="store_true", help="relax each candidate with CHGNet")
    p.add_argument(
        "--templates",
        help="known structures to retrieve templates from: a folder of CIFs, a CIF or a CSV "
        "with a cif column (default: the shipped MP-20 train + val splits)",
    )
    p.add_argument(
        "--refine-start",
        type=float,
        default=0.1,
        metavar="F",
        help="refine each template by denoising from F x the trained steps (%(default)s; 0: "
        "use the templates as retrieved)",
    )
    p.add_argument("--spacegroups", type=_str_list, help="restrict the groups, e.g. 62,194 or Pnma")
    p.add_argument("--checkpoint", help="model.pt to use (default: the shipped model)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: model's)")
    p.add_argument("--seed", type=int, default=0, help="random seed (%(default)s)")
    p.add_argument("--workers", type=int, default=None, help="relaxation processes")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: the cores other processes leave free)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    p.set_defaults(func=_cmd_csp)

    p = sub.add_parser("evaluate", help="the field's metrics and an HTML report")
    p.add_argument("samples", help="folder written by `symmcd sample`, a folder of CIFs, or a CSV")
    p.add_argument("--reference", help="CSV of CIFs (default: shipped MP-20 test split)")
    p.add_argument("--train", nargs="+", help="training CSV(s) for novelty (default: MP-20)")
    p.add_argument("--out", required=True, help="output folder (metrics.json, report.html)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    p.add_argument("--relax", type=int, default=0, help="relax N samples with CHGNet")
    p.add_argument(
        "--no-symmetric-relax",
        dest="relax_symmetric",
        action="store_false",
        help="relax only freely, not also keeping the symmetry (*_fixsym metrics): half the time",
    )
    p.add_argument(
        "--no-coverage",
        dest="coverage",
        action="store_false",
        help="skip the CrystalNN fingerprints (the slowest unrelaxed metric) and leave COV-R / "
        "COV-P out",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes for parsing, fingerprints, CDVAE-model graphs and relaxation "
        "(default: all cores; with --cluster local, the cluster's workers)",
    )
    p.add_argument(
        "--cluster",
        metavar="local|ADDRESS",
        help="do the per-crystal work on a Dask cluster: 'local' starts one on this machine, "
        "an address (tcp://host:8786) joins a running scheduler; the metrics are the same",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the subsamples drawn for the formation-energy distances (%(default)s)",
    )
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("property", help="predict a property (e.g. formation energy) from a crystal")
    psub = p.add_subparsers(dest="property_command", required=True, metavar="ACTION")
    q = psub.add_parser("train", help="fit a regressor on a prepared folder's labelled crystals")
    q.add_argument("--out", required=True, help="run folder (model.pt, last.pt, metrics.json)")
    q.add_argument("--data", help="prepared data folder (default: shipped MP-20, prepared once)")
    q.add_argument("--target", default="formation_energy_per_atom", help="CSV column to fit")
    q.add_argument(
        "--representation",
        default="asymmetric_unit",
        choices=["asymmetric_unit", "full_cell"],
        help="crystal as the network sees it: one node per orbit or per atom (%(default)s)",
    )
    q.add_argument(
        "--no-symmetry", action="store_true", help="hide the site symmetries and the space group"
    )
    q.add_argument("--epochs", type=int, default=40, help="training epochs (%(default)s)")
    q.add_argument("--hidden-dim", type=int, default=128, help="network width (%(default)s)")
    q.add_argument("--layers", type=int, default=3, help="message-passing layers (%(default)s)")
    q.add_argument("--batch-size", type=int, default=64, help="crystals per step (%(default)s)")
    q.add_argument("--lr", type=float, default=1e-3, help="learning rate (%(default)s)")
    q.add_argument("--seed", type=int, default=0, help="random seed (%(default)s)")
    q.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    q.add_argument("--resume", action="store_true", help="continue from RUN/last.pt")
    q.set_defaults(func=_cmd_property_train)
    q = psub.add_parser("predict", help="predictions for a CSV of CIFs or a folder of CIF files")
    q.add_argument("input", help="CSV with a cif column, or a folder of .cif files")
    q.add_argument("--model", required=True, help="model.pt of a `symmcd property train` run")
    q.add_argument("--out", required=True, help="CSV to write (id, prediction; skipped rows)")
    q.set_defaults(func=_cmd_property_predict)

    p = sub.add_parser("relax", help="relax CIFs with CHGNet")
    p.add_argument("cif_dir", help="folder of .cif files (searched recursively)")
    p.add_argument(
        "--out", required=True, help="output folder: relaxed CIFs (same names) + relaxed.jsonl"
    )
    p.add_argument(
        "--keep-symmetry",
        action="store_true",
        help="ASE FixSymmetry constraint; the relaxed CIFs are written in the kept space group",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    p.add_argument(
        "--steps", type=int, default=500, help="most FIRE steps per crystal (%(default)s)"
    )
    p.add_argument(
        "--fmax",
        type=float,
        default=0.1,
        help="converged when every force is below this, in eV/Å (%(default)s)",
    )
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument(
        "--time-limit",
        type=float,
        default=600.0,
        help="seconds per crystal before its relaxation is stopped as failed (%(default)s; 0: "
        "no limit)",
    )
    p.set_defaults(func=_cmd_relax)
    return parser


RESUME_HINTS = {  # what a command stopped by SIGTERM keeps, and how it goes on
    "sample": "; add --resume to the same command to keep the finished chunks",
    "train": "; add --resume to continue from the last checkpoint",
    "evaluate": "; the same command goes on from the crystals already in the crystal store",
    "relax": "; the same command goes on from the crystals already in the crystal store",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    # only `sample` has a --preset to apply under the options given; the re-parse is for it
    args.given = given_options(argv) if args.command == "sample" else set()
    try:
        check_arguments(args)
        with exit_on_sigterm():
            args.func(args)
    except SymmcdError as err:
        print(f"symmcd {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"symmcd {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated as stop:
        hint = RESUME_HINTS.get(args.command, "")
        print(f"symmcd {args.command}: stopped by SIGTERM{hint}", file=sys.stderr)
        return stop.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
