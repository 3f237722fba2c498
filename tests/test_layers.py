"""The package's layers (DESIGN.md): no module imports one from a layer above its own, and
sampling and evaluation do not import each other. Read from the source, so lazy imports inside
functions count too."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "symmcd"
LAYERS = [
    {"errors", "signals"},
    {"symmetry", "chemistry"},
    {"data", "diffusion", "model"},
    {"config", "checkpoint"},
    {"training", "sampling", "evaluation", "property"},
    {"csp"},
    {"cli"},
]
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}
SIBLINGS_APART = {"training", "sampling", "evaluation", "property"}


def part(module: str) -> str:
    """The top-level part of a module name inside the package (``symmcd.x.y`` -> ``x``)."""
    return module.split(".")[1] if module.count(".") else ""


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("symmcd"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("symmcd")}
    return found


def test_no_import_reaches_up_a_layer():
    problems = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        own = part(".".join(relative.parts))
        if own not in LEVEL:  # the package __init__ (lazy public API)
            continue
        for module in imports(path):
            other = part(module)
            if not other or other == own:
                continue
            if LEVEL[other] > LEVEL[own]:
                problems.append(f"{relative} imports {module} (a higher layer)")
            if own in SIBLINGS_APART and other in SIBLINGS_APART:
                problems.append(f"{relative} imports {module} (a sibling layer)")
    assert not problems, "\n".join(problems)
