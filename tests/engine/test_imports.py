"""The engine stays pure PyTorch: its modules import the standard library, ``torch`` and each other, nothing else."""

import ast
import sys
from pathlib import Path

import pytest

import nvf_sklearn._engine as engine

ENGINE = Path(engine.__file__).parent
MODULES = sorted(ENGINE.glob("*.py"))
ALLOWED = set(sys.stdlib_module_names) | {"torch"}


def foreign_imports(source: str) -> list[str]:
    """Imports in ``source`` that leave the standard library, ``torch`` and the engine's own package."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] not in ALLOWED]
        elif isinstance(node, ast.ImportFrom):
            if node.level > 1:  # relative, but above the engine: into nvf_sklearn
                found.append("." * node.level + (node.module or ""))
            elif node.level == 0 and node.module.split(".")[0] not in ALLOWED:
                found.append(node.module)
    return found


def test_the_checker_flags_what_it_must():
    bad = "import numpy as np\nfrom sklearn.base import clone\nfrom .. import _nvf\nfrom ..utils import x\n"
    bad += "def f():\n    import scipy.stats\n    from joblib import Parallel\n"
    assert foreign_imports(bad) == ["numpy", "sklearn.base", "..", "..utils", "scipy.stats", "joblib"]
    good = "from __future__ import annotations\nimport math, os.path\nimport torch.nn.functional as F\n"
    good += "from torch import nn\nfrom .base import Transform\nfrom . import splines\n"
    assert foreign_imports(good) == []
    assert foreign_imports("import nvf_sklearn._engine.base") == ["nvf_sklearn._engine.base"]


def test_every_engine_module_is_checked():
    expected = {"__init__", "base", "flows", "image_flows", "latent", "sequence", "optim", "training"}
    assert {path.stem for path in MODULES} >= expected


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_engine_imports_only_stdlib_torch_and_itself(path):
    assert foreign_imports(path.read_text()) == []
