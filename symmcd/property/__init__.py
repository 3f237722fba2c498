"""Property prediction from symmcd's crystal representations.

A regressor on the asymmetric unit (one node per orbit) or on the full conventional cell (one node
per atom), with or without the symmetry information (per-node site symmetry and the space group's
encoding): the network is the denoiser's message-passing trunk (``Denoiser.encode``) at time 0 with
a regression head on its pooled states. ``symmcd property train`` / ``predict`` are the commands.
"""

from symmcd.property.data import PropertyDataset, load_labels
from symmcd.property.model import PropertyModel, PropertyRegressor, load_property_model
from symmcd.property.train import PropertyConfig, mean_absolute_error, predict, train_property

__all__ = [
    "PropertyConfig",
    "PropertyDataset",
    "PropertyModel",
    "PropertyRegressor",
    "load_labels",
    "load_property_model",
    "mean_absolute_error",
    "predict",
    "train_property",
]
