"""Evaluation of generated crystals: the field's metrics, stability and a visual report.

``evaluate(samples, reference, train, out_dir, relax=0, workers=None, seed=0, progress=True)``
writes ``metrics.json`` with flat keys: struct_valid, comp_valid, valid, cov_recall,
cov_precision, wdist_density, wdist_num_elements, wdist_formation_energy (CDVAE's 1,000-sample
subsample, CDVAE's MP-20 property model on both sides), wdist_formation_energy_chgnet (CHGNet),
wdist_density_all_valid, wdist_num_elements_all_valid, sg_jsd (the field's:
valid samples, natural log, pymatgen's tolerances), sg_jsd_base2_all_readable, sg_match,
p1_fraction, unique_templates (count), templates_in_train (share of distinct templates),
new_templates (count), unique, novel, and with ``relax > 0`` stable, metastable, sun, msun, ssun
(plus ``*_fixsym``), ``n`` and the settings used; ``coverage=False`` skips the
fingerprints (cov_* null). ``relax_dir`` relaxes a folder of CIFs.
"""

from symmcd.evaluation.evaluate import evaluate
from symmcd.evaluation.relax import relax_dir

__all__ = ["evaluate", "relax_dir"]
