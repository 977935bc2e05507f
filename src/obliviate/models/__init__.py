"""Load and save causal language models from spec strings (see ``loader``)."""

from obliviate.models.loader import LoadedModel, load_model, save_model

__all__ = ["LoadedModel", "load_model", "save_model"]
