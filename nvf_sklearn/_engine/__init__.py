"""The pure-PyTorch engine: flows, latent models, training. Nothing here imports scikit-learn.

The estimators import only the names in ``__all__``.
"""

from .base import DensityModel, Transform
from .dequantization import bits_per_dim, dequantize
from .distributed import fit_model
from .flow_density import FlowDensity, ImageFlowDensity
from .flows import Flow, spline_flow
from .image_flows import ImageFlow
from .initialization import initialize_parameters
from .latent import LatentFlowDensity
from .sequence import SequenceLatentFlowDensity, sequence_latent_flow
from .training import CheckReport, TrainingConfig, TrainingData, TrainingResult

__all__ = [
    "CheckReport",
    "DensityModel",
    "Flow",
    "FlowDensity",
    "ImageFlow",
    "ImageFlowDensity",
    "LatentFlowDensity",
    "SequenceLatentFlowDensity",
    "TrainingConfig",
    "TrainingData",
    "TrainingResult",
    "Transform",
    "bits_per_dim",
    "dequantize",
    "fit_model",
    "initialize_parameters",
    "sequence_latent_flow",
    "spline_flow",
]
