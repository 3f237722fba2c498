"""Training: the Lightning module (`module.py`), EMA (`ema.py`) and `train()` (`train.py`).

Configs live in `symmcd.config`, sampling checkpoints in `symmcd.checkpoint`, both below training
and sampling.
"""
