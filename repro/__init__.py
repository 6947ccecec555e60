"""dl-repro: the classic training phenomena of deep learning, reproduced, measured and checked.

From Python: ``repro.run(name, preset=...)``, ``repro.load(path)``, ``repro.train(config, seed)``,
``repro.profile(activation=..., optimizer=...)`` (repro/api.py); every refusal raises ``repro.ReproError``.
"""
from .api import Profile, Results, load, profile, run, train
from .errors import ReproError

__all__ = ["run", "load", "train", "profile", "Results", "Profile", "ReproError"]
