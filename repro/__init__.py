"""dl-repro: the classic training phenomena of deep learning, reproduced, measured and checked.

From Python: ``repro.run(name, preset=...)``, ``repro.load(path)``, ``repro.train(config, seed)``
(repro/api.py); every refusal raises ``repro.ReproError``.
"""
from .api import Results, load, run, train
from .errors import ReproError

__all__ = ["run", "load", "train", "Results", "ReproError"]
