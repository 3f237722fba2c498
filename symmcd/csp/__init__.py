"""Structure prediction (``symmcd csp``): retrieved templates, refined by the network, ranked by
CHGNet energy (:mod:`symmcd.csp.pipeline`); retrieval in :mod:`symmcd.csp.templates`."""

from symmcd.csp.pipeline import (
    RANKING_COLUMNS,
    RANKING_FILE,
    Candidate,
    check_formulas,
    csp_to_dir,
    format_ranking,
    predict_many,
    predict_structures,
)

__all__ = [
    "RANKING_COLUMNS",
    "RANKING_FILE",
    "Candidate",
    "check_formulas",
    "csp_to_dir",
    "format_ranking",
    "predict_many",
    "predict_structures",
]
