"""engine.fastmri_parts: the engine imports fastMRI's transforms and masks without the dataset
classes' pandas/yaml/requests (start-up time), and fastmri.data is still whole for anyone who asks."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.strip()


def test_importing_the_engine_leaves_out_the_dataset_classes_dependencies():
    out = _run("import sys, engine, engine.metrics\n"
               "print(sorted(m for m in ('pandas', 'yaml', 'requests', 'fastmri.data.mri_data') if m in sys.modules))")
    assert out == "[]"


def test_fastmri_data_completes_itself_on_first_need():
    out = _run(
        "import sys, engine\n"
        "from fastmri.data import subsample, transforms\n"  # what the engine loaded: no completion
        "assert 'fastmri.data.mri_data' not in sys.modules\n"
        "from engine.fastmri_parts import subsample as s, transforms as t\n"
        "assert s is subsample and t is transforms\n"
        "from fastmri.data import SliceDataset, VolumeSampler\n"  # the package's own __init__ runs now
        "import fastmri.data as d\n"
        "from fastmri.data.mri_data import SliceDataset as S\n"
        "assert SliceDataset is S and d.CombinedSliceDataset and d.transforms is transforms\n"
        "try:\n    d.no_such_name\nexcept AttributeError as e:\n    print(e)\n")
    assert out == "module 'fastmri.data' has no attribute 'no_such_name'"


def test_a_fastmri_data_imported_before_is_used_as_it_is():
    out = _run("import fastmri.data as d0, engine\n"
               "from engine.fastmri_parts import transforms\n"
               "import fastmri.data as d\n"
               "print(d is d0, transforms is d0.transforms, '__getattr__' in vars(d))")
    assert out == "True True False"
