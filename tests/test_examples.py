"""Every script in examples/ runs with --quick and saves its figure (a CI smoke test).

The numbers a quick run prints mean nothing (tiny data, a few epochs); this
only checks that the scripts run against the current API, print no NaN and
write the PNG named after the script. Slow (a subprocess each); they need the
``examples`` extra (matplotlib), and fail rather than skip without it.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))


#: The example scripts, by name: a missing, renamed or unlisted example fails the test below.
EXPECTED_EXAMPLES = {
    "anomaly_detection",
    "choosing_k",
    "clustering",
    "digits",
    "pipeline_pca",
    "quickstart",
    "sample_one_state",
}


def test_examples_are_found():
    assert {script.stem for script in SCRIPTS} == EXPECTED_EXAMPLES


@pytest.mark.parametrize("script", SCRIPTS, ids=[script.stem for script in SCRIPTS])
def test_example_runs_quick_and_saves_its_png(script, tmp_path):
    env = {**os.environ, "NVF_EXAMPLES_OUT": str(tmp_path), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(script), "--quick"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout}\n{result.stderr}"
    assert not re.search(r"\bnan\b", result.stdout, flags=re.IGNORECASE), result.stdout
    figure = tmp_path / f"{script.stem}.png"
    assert figure.is_file() and figure.stat().st_size > 10_000, f"{figure.name} missing or empty"
