"""fastMRI's data helpers, ``fastmri.data.transforms`` and ``fastmri.data.subsample``, without its
dataset classes.

``import fastmri.data`` runs the package's ``__init__``, which imports ``SliceDataset`` and with it
pandas, yaml and requests: about 0.3 s of the viewer's start-up on a 2-core machine
(benchmarks/startup.py), for classes vitrecon never uses. The two modules vitrecon uses need only
numpy and torch. So unless ``fastmri.data`` is imported already, it is put in place as the bare
package (its ``__path__``, not its ``__init__``): its submodules import as usual, and the first time
anything asks the package for a name it has not loaded (``fastmri.data.SliceDataset``,
``from fastmri.data import VolumeSampler``) the real ``__init__`` runs, so every other user of fastmri
still sees the package whole."""
from __future__ import annotations

import importlib
import importlib.util
import sys
import threading

import fastmri

PACKAGE = "fastmri.data"


def _bare_package():
    """``fastmri.data`` as imported, or the bare package that completes itself on first need."""
    module = sys.modules.get(PACKAGE)
    if module is not None:
        return module
    spec = importlib.util.find_spec(PACKAGE)
    module = importlib.util.module_from_spec(spec)  # __path__, __file__, __spec__: no __init__ run
    lock, done = threading.Lock(), []

    def complete(name: str):
        with lock:
            if not done:
                done.append(True)
                spec.loader.exec_module(module)  # the package's own __init__, into this module
        try:
            return module.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}") from None

    module.__getattr__ = complete
    sys.modules[PACKAGE] = module
    fastmri.data = module
    return module


_bare_package()
transforms = importlib.import_module(f"{PACKAGE}.transforms")
subsample = importlib.import_module(f"{PACKAGE}.subsample")

__all__ = ["subsample", "transforms"]
