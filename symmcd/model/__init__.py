"""The denoiser network (torch only)."""

from symmcd.model.denoiser import Denoiser, DenoiserConfig, DenoiserOutput

__all__ = ["Denoiser", "DenoiserConfig", "DenoiserOutput"]
