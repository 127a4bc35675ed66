"""Sphinx configuration for the nvf_sklearn documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` (warnings are
errors). The API pages import ``nvf_sklearn``, so torch and scikit-learn must
be installed in the environment that builds the docs.
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import nvf_sklearn  # noqa: E402

project = "nvf_sklearn"
author = "nvf_sklearn developers"
copyright = "nvf_sklearn developers"
release = nvf_sklearn.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
]

templates_path = ["_templates"]
# benchmarks_results.rst is pulled into benchmarks.rst by `.. include::`.
exclude_patterns = ["_build", "benchmarks_results.rst"]
root_doc = "index"

# API reference: one generated page per class, from docs/_templates/autosummary/class.rst.
autosummary_generate = True
autodoc_default_options = {"member-order": "alphabetical"}
autodoc_typehints = "none"  # numpydoc sections already give the types
# numpydoc's automatic "Methods" tables would need one stub page per method;
# the class template lists the methods itself.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False

html_theme = "alabaster"
html_static_path = []
html_theme_options = {
    "description": "scikit-learn density estimators built on normalizing flows",
    "fixed_sidebar": True,
}

