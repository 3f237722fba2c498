"""Seconds per formula of `symmcd csp` with the default (static CHGNet) ranking: as a user runs
it, one process per formula (`symmcd csp FORMULA --n 20`: start-up, model and CHGNet loading
included) for the first `--cold` formulas, and `predict_structures` in one warm process."""

import tempfile

import harness
import torch

from symmcd.csp import predict_structures

FORMULAS = "LiFePO4,NaCl,KMgF3,CsPbI3,Li2O,MoS2,BaTiO3,Sr2RuO4,Cu2ZnSnS4,LaNiO3"


def main() -> None:
    args = harness.parser(__file__, __doc__, formulas=FORMULAS, cold=3, threads=None).parse_args()
    formulas, flag = args.formulas.split(","), [f"--threads={args.threads}"] * bool(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        commands = [("csp", f, "--n=20", f"--out={tmp}/{f}", *flag) for f in formulas[: args.cold]]
        cold = {command[1]: harness.cli_seconds(*command) for command in commands}
    if args.threads:
        torch.set_num_threads(args.threads)
    predict_structures(formulas[0], n=20, progress=False)  # loads the model, pool and CHGNet
    rows, warm = [], []
    for f in formulas:
        ranked, seconds = harness.timed(predict_structures, f, n=20, progress=False)
        warm.append(seconds)
        shown = f"{cold[f]:.1f}" if f in cold else ""
        rows.append(f"{f} | {shown} | {seconds:.1f} | {ranked[0].stage}, SG {ranked[0].spacegroup}")
    mean_cold = sum(cold.values()) / len(cold) if cold else float("nan")
    mean_warm = sum(warm) / len(warm)
    harness.report(
        args.out,
        f"csp speed, {harness.machine()}",
        "formula | one command (s) | warm process (s) | best candidate",
        rows,
        below=f"mean: one command {mean_cold:.1f} s, warm {mean_warm:.1f} s per formula",
    )


if __name__ == "__main__":
    main()
