"""Sphinx configuration for the nvf_sklearn documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` (warnings are
errors). The API pages import ``nvf_sklearn``, so torch and scikit-learn must
be installed in the environment that builds the docs (``pip install -e
".[docs]"``). The build needs no network: the intersphinx inventories are kept
in ``docs/_inventories/`` (regenerate them with ``make_inventories.py`` there),
MathJax is served from the build's ``_static/mathjax`` (the
``sphinx-mathjax-offline`` extension), and the examples gallery is built from
the scripts without running them.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..")))
sys.path.insert(0, os.path.join(HERE, "sphinxext"))

import nvf_sklearn  # noqa: E402

project = "nvf_sklearn"
author = "nvf_sklearn developers"
copyright = "nvf_sklearn developers"
release = nvf_sklearn.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # serves MathJax 3 from _static/mathjax instead of a CDN
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_copybutton",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
# benchmarks_results.rst is pulled into benchmarks.rst by `.. include::`.
exclude_patterns = ["_build", "_inventories", "sphinxext", "benchmarks_results.rst"]
root_doc = "index"

# -- API reference -----------------------------------------------------------
# One generated page per class, from docs/_templates/autosummary/class.rst: a
# table of the public methods at the top, then the class and each method.
autosummary_generate = True
autodoc_default_options = {"member-order": "alphabetical"}
autodoc_typehints = "none"  # numpydoc sections already give the types
toc_object_entries_show_parents = "hide"  # "fit()", not "NVFDensity.fit()", in the page's table of contents
# numpydoc's automatic "Methods" tables would need one stub page per method;
# the class template lists the methods itself.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
# Parameter types become links (int, ndarray, RandomState, torch.device, ...)
# through the inventories below; words that are not types stay plain text.
numpydoc_xref_param_type = True
numpydoc_xref_aliases = {
    "RandomState": "numpy.random.RandomState",
    "Generator": "numpy.random.Generator",
    "torch.device": "torch.device",
    "device": "torch.device",
    "torch.Generator": "torch.Generator",
    "Module": "torch.nn.Module",
    "Pipeline": "sklearn.pipeline.Pipeline",
    "GaussianMixture": "sklearn.mixture.GaussianMixture",
}
numpydoc_xref_ignore = {
    "of", "or", "and", "shape", "default", "optional", "instance", "n_samples",
    "n_features", "n_components", "n_latent", "n_codes", "the", "same", "as",
    "if", "else", "a", "an", "in", "with", "for", "to", "auto", "at", "most",
    # scikit-learn's word for an unused argument, and the letters of image shapes.
    "Ignored", "C", "H", "W", "L", "n_validation",
}

# -- Intersphinx, from inventories kept in the repository (no network) -------
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", "_inventories/python.inv"),
    "numpy": ("https://numpy.org/doc/stable/", "_inventories/numpy.inv"),
    "sklearn": ("https://scikit-learn.org/stable/", "_inventories/sklearn.inv"),
    "torch": ("https://docs.pytorch.org/docs/stable/", "_inventories/torch.inv"),
}
intersphinx_timeout = 1  # never waits on a network: every inventory is a local file

# -- Examples gallery ----------------------------------------------------------
# The scripts in examples/ are shown, not run: the docs build is offline on two
# CPU cores, and the full examples take minutes. Each script names a committed
# figure in docs/images/ as its thumbnail (sphinx_gallery_thumbnail_path).
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "plot_gallery": "False",
    "filename_pattern": r"^$",  # run nothing, even with plot_gallery=True
    "within_subsection_order": "example_order.ExampleOrder",
    "backreferences_dir": "gen_modules/backreferences",
    "doc_module": ("nvf_sklearn",),
    "reference_url": {"nvf_sklearn": None},
    "remove_config_comments": True,
    "download_all_examples": True,
    "show_memory": False,
    "show_signature": False,
    "write_computation_times": False,  # nothing is run, so there are no times
    "default_thumb_file": os.path.join(HERE, "images", "quickstart.png"),
}

# -- HTML ------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"nvf_sklearn {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {
    # No left sidebar where it would list nothing (pages without sub-pages) or
    # where the width matters more (the example scripts' long code lines); the
    # gallery's index and the API pages keep their section navigation.
    "index": [],
    "install": [],
    "user_guide": [],
    "benchmarks": [],
    "auto_examples/[!i]*": [],
}
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
