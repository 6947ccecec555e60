"""Results on disk: atomic JSON files, and the store of finished trials that is also a run's lock."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .config import ConfigError, TrialConfig

REQUIRED_KEYS = ("experiment", "preset", "variants", "trials", "claims")  # what makes a file an experiment's results


def write_json(path: Path, payload: dict) -> None:
    """Atomic: a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=1, default=_json_default)
    os.replace(tmp, path)


def _json_default(value):
    import numpy as np
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class TrialStore:
    """Finished trials saved one file each, the moment they finish, under a key of (config, seed, device).

    Also the run's lock: one run per (experiment, preset) or sweep at a time; a second one is refused.
    A spec here is a repro.executor.TrialSpec."""

    def __init__(self, folder: Path, label: str, resume: bool):
        self.folder, self.label, self.resume = Path(folder), label, resume
        self.lock = self.folder.parent / "run.lock"

    def __enter__(self):
        try:
            fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = self.lock.read_text().strip() or "?"
            if _process_alive(holder):
                raise ConfigError(f"another run of {self.label} is in progress (pid {holder}); wait for it to "
                                  f"finish, or run another preset") from None
            self.lock.unlink(missing_ok=True)  # left by a run that was killed: stale
            fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        if not self.resume and self.folder.exists():
            shutil.rmtree(self.folder)  # a fresh run starts from nothing; --resume keeps these
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc):
        self.lock.unlink(missing_ok=True)

    def _path(self, spec, suffix: str) -> Path:
        return self.folder / f"{TrialConfig.from_dict(spec.config).key(spec.seed, spec.device)}{suffix}"

    def load(self, spec) -> dict | None:
        import torch
        path = self._path(spec, ".json")
        if not self.resume or not path.exists():
            return None
        try:
            result = json.loads(path.read_text())
            if spec.keep_state:
                result["state"] = torch.load(self._path(spec, ".pt"), weights_only=True)
        except (OSError, ValueError, RuntimeError):
            return None  # unreadable: train it again
        result["tag"] = spec.tag
        return result

    def save(self, result: dict) -> None:
        import torch
        key = result["key"]
        if "state" in result:
            tmp = self.folder / f"{key}.pt.tmp"
            torch.save(result["state"], tmp)
            os.replace(tmp, self.folder / f"{key}.pt")
        write_json(self.folder / f"{key}.json", {k: v for k, v in result.items() if k != "state"})


def _process_alive(pid_text: str) -> bool:
    try:
        os.kill(int(pid_text), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
