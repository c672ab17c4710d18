"""The recipe dataclasses live in :mod:`seqdiff.config` (below both the model and training); this
module keeps the import path ``seqdiff.training.config`` that recipes, scripts and notebooks use."""

from ..config import *  # noqa: F401,F403
from ..config import __all__  # noqa: F401
