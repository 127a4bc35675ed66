"""Order of the scripts in the examples gallery (``within_subsection_order``).

The quickstart first, then the tabular examples from the most to the least
common task, the image example last; a script not listed here follows, by name.
"""

from pathlib import Path

ORDER = [
    "quickstart.py",
    "clustering.py",
    "anomaly_detection.py",
    "choosing_k.py",
    "pipeline_pca.py",
    "sample_one_state.py",
    "digits.py",
]


class ExampleOrder:
    """Sort key: position in ``ORDER``, then file name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = Path(filename).name
        return (ORDER.index(name) if name in ORDER else len(ORDER), name)

    def __repr__(self):
        return f"<{self.__class__.__name__}>"
