"""nvf_sklearn: scikit-learn density estimators built on normalizing flows.

Tables:

- :class:`NFDensity`: a neural spline flow.
- :class:`NVFDensity`: a neural spline flow conditioned on a learned discrete
  latent state (the Normalizing Variational Flow), for multi-modal data.

Images of integer pixel levels:

- :class:`NFImageDensity`: a convolutional spline flow.
- :class:`NVFImageDensity`: the same flow conditioned on a grid of discrete
  codes with a transformer prior.
"""

from ._nf import NFDensity
from ._nf_image import NFImageDensity
from ._nvf import NVFDensity
from ._nvf_image import NVFImageDensity

__all__ = ["NFDensity", "NFImageDensity", "NVFDensity", "NVFImageDensity"]
__version__ = "0.3.0"
