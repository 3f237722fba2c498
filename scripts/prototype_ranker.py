"""Which structure type does a composition take? Prototype ranking measured leave-one-out.

Each query is a pool crystal left out in turn; its true prototype is its own key. The ranking
puts the prototypes of the other pool crystals of its stoichiometry in order; prototype@1 is the
share whose true key comes first (among queries whose prototype exists elsewhere in the pool, and
over all queries). Compared:

- ``mixture``: the shipped score, a mixture over members of the substitution likelihood;
- ``learned``: classifiers on (query, member) pairs, trained on other queries, that say whether
  the two share a prototype (CSPML's idea: learn which compositions share a structure), from the
  substitution likelihood and how far each substituted element moves in element-property space
  (electronegativity, radius, period, group, Mendeleev number, common oxidation states), per site
  and for the composition as a whole: a logistic model (prototype = log-sum-exp of its members'
  logits) and gradient-boosted trees (prototype = its best member), alone and added to the
  mixture.

    python scripts/prototype_ranker.py [--queries 1000] [--train-queries 3000] [--seed 0]
"""

from __future__ import annotations

import argparse
import functools
import json
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
from pymatgen.core import Element
from scipy.special import log_expit, logsumexp
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from tqdm import tqdm

from symmcd.csp.substitution import SubstitutionTable
from symmcd.csp.templates import (
    PROTOTYPE_TEMPERATURE,
    TemplatePool,
    assign_elements,
    shipped_pool,
    stoichiometry,
)
from symmcd.symmetry.encoding import NUM_ELEMENTS

ROOT = Path(__file__).resolve().parents[1]
PROPERTY_NAMES = ("X", "radius", "row", "group", "mendeleev", "max_ox", "min_ox")
NUM_FEATURES = 4 + 3 * len(PROPERTY_NAMES)
MIXTURE_PLUS_TREES_WEIGHT = 4.0  # the best of 0.5, 1, 2, 4 on a first run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000, help="held-out queries scored")
    parser.add_argument("--train-queries", type=int, default=3000, help="queries for training")
    parser.add_argument("--negatives", type=int, default=40, help="pairs of each label per query")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs/results/prototype_ranker.json")
    args = parser.parse_args()
    started = time.perf_counter()
    pool = shipped_pool()
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(pool))
    held = order[: args.queries]
    train_queries = order[args.queries : args.queries + args.train_queries]
    # the substitution table of the pool less the held-out queries
    table = SubstitutionTable.from_pool(pool.subset(np.sort(order[args.queries :])))
    features, labels = [], []
    for q in tqdm(train_queries, desc="training pairs"):
        x, y = pair_features(pool, table, int(q))
        if len(y) == 0 or y.sum() == 0:
            continue
        pick = np.concatenate(
            [
                np.flatnonzero(y)[: args.negatives],
                rng.permutation(np.flatnonzero(~y))[: args.negatives],
            ]
        )
        features.append(x[pick])
        labels.append(y[pick])
    x_train, y_train = np.concatenate(features), np.concatenate(labels)
    mean, scale = x_train.mean(axis=0), x_train.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    logistic = LogisticRegression(max_iter=3000).fit((x_train - mean) / scale, y_train)
    trees = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05).fit(x_train, y_train)
    results: dict[str, list[int]] = defaultdict(list)
    for q in tqdm(held, desc="held-out queries"):
        x, _ = pair_features(pool, table, int(q))
        if len(x) == 0:
            continue
        keys = [pool.prototype[i] for i in members_of(pool, int(q))]
        truth = pool.prototype[int(q)]
        mixture = x[:, 0] / PROTOTYPE_TEMPERATURE
        tree_log_p = log_expit(trees.decision_function(x))
        variants = {
            "mixture (shipped)": (mixture, logsumexp),
            "learned, logistic": (logistic.decision_function((x - mean) / scale), logsumexp),
            "learned, trees, best member": (tree_log_p, max),
            f"mixture + {MIXTURE_PLUS_TREES_WEIGHT:g} x trees": (
                mixture + MIXTURE_PLUS_TREES_WEIGHT * tree_log_p,
                logsumexp,
            ),
        }
        for name, (score, pool_of) in variants.items():
            results[name].append(int(top_key(keys, score, pool_of) == truth))
        results["present"].append(int(truth in keys))
    present = np.array(results.pop("present"), dtype=bool)
    report = {
        "command": "python scripts/prototype_ranker.py "
        f"--queries {args.queries} --train-queries {args.train_queries} --seed {args.seed}",
        "pool": f"{pool.source} ({len(pool):,} crystals)",
        "training_pairs": int(len(y_train)),
        "queries_with_templates": int(len(present)),
        "prototype_elsewhere_in_pool": int(present.sum()),
        "prototype_at_1_percent": {
            name: {
                "all": round(100 * float(np.mean(hits)), 2),
                "prototype_in_pool": round(100 * float(np.mean(np.array(hits)[present])), 2),
            }
            for name, hits in results.items()
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


def members_of(pool: TemplatePool, q: int) -> list[int]:
    """The other pool crystals of the query's stoichiometry."""
    return [i for i in pool.by_stoichiometry[stoichiometry(pool.reduced_counts[q])] if i != q]


def pair_features(
    pool: TemplatePool, table: SubstitutionTable, q: int
) -> tuple[np.ndarray, np.ndarray]:
    """Features of (query q, member) for every member, and whether the two share a prototype."""
    query = pool.reduced_counts[q]
    rows, same = [], []
    for i in members_of(pool, q):
        mapping, log_p = assign_elements(pool.reduced_counts[i], query, table)
        rows.append(features(pool.reduced_counts[i], mapping, log_p))
        same.append(pool.prototype[i] == pool.prototype[q])
    if not rows:
        return np.zeros((0, NUM_FEATURES)), np.zeros(0, dtype=bool)
    return np.array(rows), np.array(same, dtype=bool)


def features(template_counts: dict[int, int], mapping: dict[int, int], log_p: float) -> np.ndarray:
    """(NUM_FEATURES,): log-likelihood of the mapping, the share of elements and of atoms it
    changes, the number of elements, then per element property the atom-weighted mean and the
    largest |change| over sites and the |change| of the composition's mean."""
    props = element_properties()
    old = np.array(list(template_counts), dtype=np.int64)
    new = np.array([mapping[int(e)] for e in old], dtype=np.int64)
    weight = np.array([template_counts[int(e)] for e in old], dtype=float)
    weight /= weight.sum()
    delta = np.abs(props[new] - props[old])
    changed = old != new
    return np.concatenate(
        [
            [log_p, changed.mean(), weight[changed].sum(), len(old)],
            weight @ delta,
            delta.max(axis=0),
            np.abs(weight @ (props[new] - props[old])),
        ]
    )


@functools.cache
def element_properties() -> np.ndarray:
    """(100, P) element properties (Z - 1), each scaled to unit spread over the elements."""
    values = np.zeros((NUM_ELEMENTS, len(PROPERTY_NAMES)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for z in range(1, NUM_ELEMENTS + 1):
            e = Element.from_Z(z)
            states = e.common_oxidation_states or e.oxidation_states or (0,)
            radius = e.atomic_radius if e.atomic_radius is not None else e.atomic_radius_calculated
            values[z - 1] = (
                float(e.X) if e.X and np.isfinite(e.X) else 0.0,
                float(radius or 0.0),
                e.row,
                e.group,
                float(e.mendeleev_no or 0),
                max(states),
                min(states),
            )
    spread = values.std(axis=0)
    return values / np.where(spread > 0, spread, 1.0)


def top_key(keys: list, score: np.ndarray, pool_of) -> tuple:
    """The prototype whose members' scores, pooled by ``pool_of``, are highest."""
    grouped: dict = defaultdict(list)
    for key, s in zip(keys, score.tolist(), strict=True):
        grouped[key].append(s)
    return max(grouped, key=lambda k: (pool_of(grouped[k]), str(k)))


if __name__ == "__main__":
    main()
