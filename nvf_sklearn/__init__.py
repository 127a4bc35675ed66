"""nvf_sklearn: scikit-learn density estimators built on normalizing flows.

- :class:`NFDensity`: a neural spline flow.
- :class:`NVFDensity`: a neural spline flow conditioned on a learned discrete
  latent state (the Normalizing Variational Flow), for multi-modal data.
"""

from ._nf import NFDensity
from ._nvf import NVFDensity

__all__ = ["NFDensity", "NVFDensity"]
__version__ = "0.1.0"
