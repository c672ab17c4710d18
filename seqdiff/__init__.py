"""seqdiff: discrete diffusion over sequences (text, DNA, proteins, SMILES).

The core lives in :mod:`seqdiff.diffusion`; a complete model in :class:`seqdiff.SeqDiffModel`.
"""

import os as _os

# OpenMP threads that spin while waiting make small CPU workloads (sampling steps, tiny batches)
# tens of times slower whenever another process holds a core; waiting passively costs nothing
# measurable on an idle machine. Only effective if set before torch loads its OpenMP runtime,
# i.e. when seqdiff is imported before torch; an explicit user setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

__all__ = ["__version__", "SeqDiffModel", "load_model"]


def __getattr__(name):  # lazy: `import seqdiff` stays light (no torch) until a model is needed
    if name in ("SeqDiffModel", "load_model"):
        from . import model
        return getattr(model, name)
    raise AttributeError(name)
