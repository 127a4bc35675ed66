"""Write the intersphinx inventories that ``docs/conf.py`` reads, offline.

    python docs/_inventories/make_inventories.py

The documentation builds without network access (CI is offline), so
intersphinx cannot download ``objects.inv`` from docs.python.org, numpy.org,
scikit-learn.org or pytorch.org. Instead each project gets a small
hand-written inventory here, listing only the objects this documentation links
to (in prose, in See Also sections, in the parameter types that numpydoc turns
into links, and in the example scripts), each with its public URL. The files
are written by Sphinx's own inventory writer (``InventoryFile.dump``: a
version-2 ``objects.inv``, zlib-compressed), and read back to check them.

To link to a new object: add it to the table of its project below, rerun this
script and commit the ``.inv`` files. An object missing here is not an error
in the build; its reference is simply rendered as plain text.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from sphinx.util.inventory import InventoryFile

HERE = Path(__file__).resolve().parent

#: (name, domain:role, page relative to the project's base URL, anchor, display name or None).
#: An anchor of ``None`` is the name itself (the usual case for Python objects).
Entry = tuple[str, str, str, "str | None", "str | None"]


def python_objects() -> list[Entry]:
    builtins = "library/functions.html"
    types = "library/stdtypes.html"
    entries: list[Entry] = [
        ("int", "py:class", builtins, None, None),
        ("float", "py:class", builtins, None, None),
        ("bool", "py:class", builtins, None, None),
        ("complex", "py:class", builtins, None, None),
        ("object", "py:class", builtins, None, None),
        ("slice", "py:class", builtins, None, None),
        ("callable", "py:function", builtins, None, None),
        ("isinstance", "py:function", builtins, None, None),
        ("str", "py:class", types, None, None),
        ("list", "py:class", types, None, None),
        ("tuple", "py:class", types, None, None),
        ("dict", "py:class", types, None, None),
        ("None", "py:data", "library/constants.html", None, None),
        ("True", "py:data", "library/constants.html", None, None),
        ("False", "py:data", "library/constants.html", None, None),
        ("ValueError", "py:exception", "library/exceptions.html", None, None),
        ("TypeError", "py:exception", "library/exceptions.html", None, None),
        ("RuntimeError", "py:exception", "library/exceptions.html", None, None),
        ("UserWarning", "py:exception", "library/exceptions.html", None, None),
        ("RuntimeWarning", "py:exception", "library/exceptions.html", None, None),
        ("pickle", "py:module", "library/pickle.html", "module-pickle", None),
        ("pickle.dump", "py:function", "library/pickle.html", None, None),
        ("pickle.load", "py:function", "library/pickle.html", None, None),
        ("warnings", "py:module", "library/warnings.html", "module-warnings", None),
        ("warnings.catch_warnings", "py:class", "library/warnings.html", None, None),
        ("warnings.filterwarnings", "py:function", "library/warnings.html", None, None),
        ("logging", "py:module", "library/logging.html", "module-logging", None),
        ("os.PathLike", "py:class", "library/os.html", None, None),
        ("pathlib.Path", "py:class", "library/pathlib.html", None, None),
        ("contextlib.contextmanager", "py:function", "library/contextlib.html", None, None),
        ("collections.namedtuple", "py:function", "library/collections.html", None, None),
        ("argparse", "py:module", "library/argparse.html", "module-argparse", None),
        ("time.perf_counter", "py:function", "library/time.html", None, None),
        # numpydoc links "bool" in parameter types to this label.
        ("bltin-boolean-values", "std:label", types, "bltin-boolean-values", "Boolean Values"),
        ("iterable", "std:term", "glossary.html", "term-iterable", None),
        ("sequence", "std:term", "glossary.html", "term-sequence", None),
        ("generator", "std:term", "glossary.html", "term-generator", None),
    ]
    return entries


def numpy_objects() -> list[Entry]:
    generated = "reference/generated/numpy.{}.html"
    entries: list[Entry] = [
        ("numpy", "py:module", "reference/index.html", "module-numpy", None),
        ("numpy.ndarray", "py:class", generated.format("ndarray"), None, None),
        ("numpy.memmap", "py:class", generated.format("memmap"), None, None),
        ("numpy.dtype", "py:class", generated.format("dtype"), None, None),
        ("numpy.random.RandomState", "py:class", "reference/random/legacy.html", None, None),
        ("numpy.random.Generator", "py:class", "reference/random/generator.html", None, None),
        ("numpy.random.default_rng", "py:function", "reference/random/generator.html", None, None),
        ("numpy.float32", "py:attribute", "reference/arrays.scalars.html", None, None),
        ("numpy.float64", "py:attribute", "reference/arrays.scalars.html", None, None),
        ("numpy.inf", "py:data", "reference/constants.html", None, None),
        ("numpy.nan", "py:data", "reference/constants.html", None, None),
        ("numpy.floor", "py:data", generated.format("floor"), None, None),
        ("numpy.log", "py:data", generated.format("log"), None, None),
        ("numpy.exp", "py:data", generated.format("exp"), None, None),
        ("numpy.load", "py:function", generated.format("load"), None, None),
        ("numpy.save", "py:function", generated.format("save"), None, None),
        ("numpy.asarray", "py:function", generated.format("asarray"), None, None),
        ("numpy.linspace", "py:function", generated.format("linspace"), None, None),
        ("numpy.meshgrid", "py:function", generated.format("meshgrid"), None, None),
        # numpydoc links "array-like" and "scalar" in parameter types to these.
        ("array_like", "std:term", "glossary.html", "term-array_like", "array_like"),
        ("arrays.scalars", "std:label", "reference/arrays.scalars.html", "arrays-scalars", "Scalars"),
    ]
    return entries


def sklearn_objects() -> list[Entry]:
    def cls(name: str, *methods: str) -> list[Entry]:
        page = f"modules/generated/{name}.html"
        return [(name, "py:class", page, None, None)] + [(f"{name}.{m}", "py:method", page, None, None) for m in methods]

    def func(name: str) -> Entry:
        return (name, "py:function", f"modules/generated/{name}.html", None, None)

    entries: list[Entry] = [
        *cls("sklearn.mixture.GaussianMixture", "fit", "score", "score_samples", "sample", "bic", "aic",
             "predict", "predict_proba"),
        *cls("sklearn.mixture.BayesianGaussianMixture", "fit", "score"),
        *cls("sklearn.neighbors.KernelDensity", "fit", "score", "score_samples", "sample"),
        *cls("sklearn.model_selection.GridSearchCV", "fit"),
        *cls("sklearn.model_selection.KFold"),
        *cls("sklearn.pipeline.Pipeline"),
        *cls("sklearn.preprocessing.StandardScaler"),
        *cls("sklearn.decomposition.PCA"),
        *cls("sklearn.cluster.KMeans"),
        *cls("sklearn.ensemble.IsolationForest"),
        *cls("sklearn.base.BaseEstimator", "get_params", "set_params", "get_metadata_routing"),
        *cls("sklearn.base.DensityMixin", "score"),
        *cls("sklearn.exceptions.ConvergenceWarning"),
        *cls("sklearn.exceptions.NotFittedError"),
        func("sklearn.pipeline.make_pipeline"),
        func("sklearn.model_selection.train_test_split"),
        func("sklearn.model_selection.cross_val_score"),
        func("sklearn.datasets.make_moons"),
        func("sklearn.datasets.make_blobs"),
        func("sklearn.datasets.load_digits"),
        func("sklearn.metrics.roc_auc_score"),
        func("sklearn.metrics.adjusted_rand_score"),
        func("sklearn.utils.check_random_state"),
        func("sklearn.utils.estimator_checks.check_estimator"),
        func("sklearn.base.clone"),
        ("sklearn.mixture", "py:module", "api/sklearn.mixture.html", "module-sklearn.mixture", None),
        ("sklearn.neighbors", "py:module", "api/sklearn.neighbors.html", "module-sklearn.neighbors", None),
        ("mixture", "std:label", "modules/mixture.html", "mixture", "Gaussian mixture models"),
        ("density_estimation", "std:label", "modules/density.html", "density-estimation", "Density Estimation"),
        ("metadata_routing", "std:label", "metadata_routing.html", "metadata-routing", "Metadata Routing"),
        ("grid_search", "std:label", "modules/grid_search.html", "grid-search",
         "Tuning the hyper-parameters of an estimator"),
        ("random_state", "std:term", "glossary.html", "term-random_state", None),
        ("n_jobs", "std:term", "glossary.html", "term-n_jobs", None),
        ("warm_start", "std:term", "glossary.html", "term-warm_start", None),
    ]
    return entries


def torch_objects() -> list[Entry]:
    generated = "generated/{}.html"
    entries: list[Entry] = [
        ("torch", "py:module", "torch.html", "module-torch", None),
        ("torch.device", "py:class", "tensor_attributes.html", None, None),
        ("torch.dtype", "py:class", "tensor_attributes.html", None, None),
        ("torch.Tensor", "py:class", "tensors.html", None, None),
        ("torch.Generator", "py:class", generated.format("torch.Generator"), None, None),
        ("torch.nn.Module", "py:class", generated.format("torch.nn.Module"), None, None),
        ("torch.optim.Adam", "py:class", generated.format("torch.optim.Adam"), None, None),
        ("torch.no_grad", "py:class", generated.format("torch.no_grad"), None, None),
        ("torch.compile", "py:function", generated.format("torch.compile"), None, None),
        ("torch.manual_seed", "py:function", generated.format("torch.manual_seed"), None, None),
        ("torch.set_num_threads", "py:function", generated.format("torch.set_num_threads"), None, None),
        ("torch.get_num_threads", "py:function", generated.format("torch.get_num_threads"), None, None),
        ("torch.save", "py:function", generated.format("torch.save"), None, None),
        ("torch.load", "py:function", generated.format("torch.load"), None, None),
        ("torch.cuda.is_available", "py:function", generated.format("torch.cuda.is_available"), None, None),
        ("torch.cuda.device_count", "py:function", generated.format("torch.cuda.device_count"), None, None),
        ("torch.random.fork_rng", "py:function", "random.html", None, None),
        ("torch.distributed", "py:module", "distributed.html", "module-torch.distributed", None),
        ("torch.distributed.init_process_group", "py:function", "distributed.html", None, None),
        ("torch.nn.parallel.DistributedDataParallel", "py:class",
         generated.format("torch.nn.parallel.DistributedDataParallel"), None, None),
    ]
    return entries


#: Inventory file name -> (project name as the real inventory states it, version label, entries).
INVENTORIES = {
    "python": ("Python", "3", python_objects),
    "numpy": ("NumPy", "stable", numpy_objects),
    "sklearn": ("scikit-learn", "stable", sklearn_objects),
    "torch": ("PyTorch", "stable", torch_objects),
}


class _Domain:
    """The part of a Sphinx domain that ``InventoryFile.dump`` reads."""

    def __init__(self, name: str, objects: list[tuple[str, str, str, str, str, int]]) -> None:
        self.name = name
        self._objects = objects

    def get_objects(self):
        return iter(self._objects)


class _Domains(dict):
    """``env.domains``: Sphinx 8+ calls ``sorted()``, earlier versions ``values()``."""

    def sorted(self):
        return [self[name] for name in sorted(self)]


class _Namespace:
    def __init__(self, **attributes) -> None:
        self.__dict__.update(attributes)


class _Builder:
    """``get_target_uri``: our "docnames" are already the pages' relative URLs."""

    @staticmethod
    def get_target_uri(docname: str, typ: str | None = None) -> str:
        return docname


def write_inventory(path: Path, project: str, version: str, entries: list[Entry]) -> None:
    by_domain: dict[str, list[tuple[str, str, str, str, str, int]]] = {}
    for name, role, page, anchor, display in entries:
        domain, objtype = role.split(":")
        anchor = name if anchor is None else anchor
        priority = 1 if domain == "py" else (-1 if objtype == "label" else 1)
        # (fullname, dispname, type, docname, anchor, priority), as Domain.get_objects() yields them.
        by_domain.setdefault(domain, []).append((name, display or name, objtype, page, anchor, priority))
    domains = _Domains({name: _Domain(name, objects) for name, objects in by_domain.items()})
    env = _Namespace(config=_Namespace(project=project, version=version), domains=domains)
    InventoryFile.dump(path, env, _Builder())


def check_inventory(path: Path, base_url: str, entries: list[Entry]) -> None:
    """Read the file back as intersphinx does, and check every entry's URL."""
    with open(path, "rb") as stream:
        inventory = InventoryFile.load(stream, base_url, posixpath.join)
    for name, role, page, anchor, _ in entries:
        item = inventory[role][name]
        uri = item.uri if hasattr(item, "uri") else item[2]
        expected = f"{base_url}{page}#{name if anchor is None else anchor}"
        assert uri == expected, (name, uri, expected)


BASE_URLS = {
    "python": "https://docs.python.org/3/",
    "numpy": "https://numpy.org/doc/stable/",
    "sklearn": "https://scikit-learn.org/stable/",
    "torch": "https://docs.pytorch.org/docs/stable/",
}


def main() -> None:
    for name, (project, version, objects) in INVENTORIES.items():
        path = HERE / f"{name}.inv"
        entries = objects()
        write_inventory(path, project, version, entries)
        check_inventory(path, BASE_URLS[name], entries)
        print(f"wrote {path.relative_to(HERE.parents[1])}: {len(entries)} objects")


if __name__ == "__main__":
    main()
