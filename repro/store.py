"""Results on disk: atomic writes, the run lock, and the store of finished trials (checked when read).

A write goes to a temporary file beside its target (``<name>.<random>.tmp``), is flushed to the disk and
renamed over the target, so a reader sees the old file or the new one, never half of one. A write that
fails (a full disk, a permission) removes its temporary file and raises one line naming the file; one
that is killed outright (SIGKILL, a power cut) leaves it, and the next run that takes the lock removes it.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .config import TrialConfig
from .errors import ReproError

TMP_SUFFIX = ".tmp"
LOCK_NAME = "run.lock"
# what a stored trial must hold to stand in for training it (repro.engine.train's result)
TRIAL_FIELDS = {"config": dict, "seed": int, "key": str, "device": str, "layers": list, "status": str, "history": list,
                "batch_loss": list, "summary": dict}


def disk_error(path: Path, err: OSError, flag: str = "--results") -> ReproError:
    """One line for a failed write: the file, what the system said, what to do; nothing earlier was lost."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        todo = "free some space and run it again (--resume keeps a run's finished trials)"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        todo = f"make its folder writable, or choose another with {flag}"
    else:
        todo = f"check the disk, or choose another folder with {flag}"
    kept = f"; the earlier {path.name} is unchanged" if path.exists() else ""
    return ReproError(f"cannot write {path} ({err.strerror or err}): {todo}{kept}")


def atomic_write(path: Path, data: bytes) -> None:
    """``data`` into ``path`` atomically (see the module docstring); a failure is a ReproError."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=TMP_SUFFIX)
    except OSError as err:
        raise disk_error(path, err) from None
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)  # on the disk before the rename: after a crash, the old file or the whole new one
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as err:  # a signal too: never leave the temporary file behind
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise disk_error(path, err) from None
        raise


def write_json(path: Path, payload: dict) -> None:
    """Atomic: a reader sees the old file or the new one, never half of one."""
    atomic_write(Path(path), json.dumps(payload, indent=1, default=_json_default).encode())


def _json_default(value):
    import numpy as np
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def checksum(record: dict) -> str:
    """sha256 of a JSON record's canonical text (sorted keys, no spaces): equal after a write and a read,
    since floats are written in full."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()


def remove_stale_tmps(folder: Path, pattern: str, before: float) -> None:
    """Our temporary files matching ``pattern`` in ``folder`` last written before ``before`` (the time the
    lock was taken): left by a run that was killed mid-write. Under the lock no other run writes them."""
    for tmp in Path(folder).glob(pattern):
        try:
            if tmp.is_file() and tmp.stat().st_mtime < before:
                tmp.unlink()
        except OSError:
            pass  # gone already, or not ours to remove: a stale temporary file harms nothing


class RunLock:
    """One run at a time over its folders (its results and its TensorBoard logs): an exclusive flock on
    ``<folder>/run.lock`` in each, taken without waiting. The kernel releases a flock when its process ends,
    however it ends, so a killed run leaves nothing to take over, and the check and the take are one atomic
    step. The file stays; it holds the pid of its last holder, for the message of a refused run."""

    def __init__(self, label: str, folders: list[tuple[Path, str]]):
        self.label, self.folders = label, folders  # (folder, the CLI flag that chooses it)
        self.fds: list[int] = []
        self.since = 0.0

    def __enter__(self) -> "RunLock":
        self.since = time.time()
        try:
            for folder, flag in self.folders:
                self.fds.append(self._take(Path(folder) / LOCK_NAME, flag))
        except BaseException:
            self.__exit__()
            raise
        return self

    def _take(self, path: Path, flag: str) -> int:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise ReproError(f"cannot take the run lock {path} ({err.strerror}): make its folder writable, "
                             f"or choose another with {flag}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ReproError(f"another run of {self.label} is in progress (pid {holder}, holding {path}); wait "
                             f"for it to finish, or give this one other folders (--results, --logdir)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return fd

    def __exit__(self, *exc) -> None:
        while self.fds:
            os.close(self.fds.pop())  # closing the last descriptor releases the flock


def check_writable(folder: Path, flag: str, below: bool = True) -> None:
    """Before any training: can this run write in ``folder`` (and, with ``below``, every folder under it)?
    A probe file in ``folder`` asks the system itself (a read-only disk refuses even root); the folders
    below are asked by their permissions (os.access)."""
    folder = Path(folder)
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-check.", suffix=TMP_SUFFIX)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ReproError(f"cannot write to {folder} ({err.strerror}): make it writable, or choose another "
                         f"folder with {flag}") from None
    if below:
        for parent, names, _ in os.walk(folder):
            for name in names:
                if not os.access(Path(parent) / name, os.W_OK | os.X_OK):
                    raise ReproError(f"cannot write to {Path(parent) / name} (permission denied): make it "
                                     f"writable, or choose another folder with {flag}")


def _key_of(record: dict) -> str | None:
    """The key of the (config, seed, device) a trial record holds: its file's name, if it is the trial named."""
    try:
        return TrialConfig.from_dict(record["config"]).key(record["seed"], record["device"])
    except (TypeError, ValueError):
        return None


def warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class TrialStore:
    """Finished trials saved one file each, the moment they finish, under a key of (config, seed), each
    with a sha256 of its content (and of its weights file), checked when read back.

    Also the run's lock (RunLock) over the run's results and its TensorBoard logs: one run per
    (experiment, preset) or sweep at a time. A run's files follow one layout: ``<run>.json`` beside the
    folder ``<run>/``, which holds ``trials/`` (``folder`` here) and the lock. A spec here is a
    repro.executor.TrialSpec."""

    def __init__(self, folder: Path, label: str, resume: bool, logdir: Path | None = None):
        self.folder, self.label, self.resume = Path(folder), label, resume
        self.run_dir = self.folder.parent
        self.logdir = Path(logdir) if logdir is not None else None
        folders = [(self.run_dir, "--results")] + ([(self.logdir, "--logdir")] if self.logdir else [])
        self.lock = RunLock(label, folders)

    def __enter__(self):
        self.lock.__enter__()
        try:
            check_writable(self.run_dir.parent, "--results", below=False)  # where <run>.json goes
            check_writable(self.run_dir, "--results")
            if self.logdir is not None:
                check_writable(self.logdir, "--logdir")
            remove_stale_tmps(self.run_dir.parent, f"{self.run_dir.name}.json.*{TMP_SUFFIX}", self.lock.since)
            remove_stale_tmps(self.folder, f"*{TMP_SUFFIX}", self.lock.since)
            if not self.resume and self.folder.exists():
                shutil.rmtree(self.folder)  # a fresh run starts from nothing; --resume keeps these
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            self.lock.__exit__()
            raise ReproError(f"cannot prepare {self.folder} ({err.strerror}): make it writable, or choose "
                             f"another folder with --results") from None
        except BaseException:
            self.lock.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        self.lock.__exit__()

    def _path(self, spec, suffix: str) -> Path:
        return self.folder / f"{spec.config.key(spec.seed, spec.device)}{suffix}"

    def load(self, spec) -> dict | None:
        """The stored result of ``spec`` (with ``--resume``), or None: not stored, or damaged, which is
        said in one line on stderr (the trial is trained again)."""
        path = self._path(spec, ".json")
        if not self.resume or not path.exists():
            return None
        result, why = self._read(spec, path)
        if why is not None:
            warn(f"trial {path.stem} in {path} was damaged ({why}); training it again")
            return None
        result["tag"] = spec.tag
        return result

    def _read(self, spec, path: Path) -> tuple[dict | None, str | None]:
        """(the result, None), or (None, why it cannot be used)."""
        try:
            record = json.loads(path.read_bytes())
        except OSError as err:
            return None, f"unreadable: {err.strerror}"
        except ValueError as err:
            return None, f"not valid JSON: {getattr(err, 'msg', err)}, at byte {getattr(err, 'pos', '?')}"
        if not isinstance(record, dict) or "sha256" not in record:
            return None, "not a trial record with its checksum"
        if record.pop("sha256") != checksum(record):
            return None, "its content does not match its checksum: edited or corrupted"
        wrong = [k for k, kind in TRIAL_FIELDS.items() if not isinstance(record.get(k), kind)]
        if wrong:
            return None, f"no valid '{wrong[0]}'"
        if record["key"] != path.stem or _key_of(record) != path.stem:
            return None, "it holds another trial's config or seed"
        state_sha = record.pop("state_sha256", None)
        if spec.keep_state:
            state, why = self._read_state(path.with_suffix(".pt"), state_sha)
            if why is not None:
                return None, why
            record["state"] = state
        return record, None

    @staticmethod
    def _read_state(path: Path, expected: str | None):
        import torch
        if expected is None:
            return None, "it was saved without its weights"
        try:
            data = path.read_bytes()
        except OSError as err:
            return None, f"its weights file {path.name} is unreadable: {err.strerror}"
        if hashlib.sha256(data).hexdigest() != expected:
            return None, f"its weights file {path.name} does not match its checksum"
        try:
            return torch.load(io.BytesIO(data), weights_only=True), None
        except Exception as err:  # noqa: BLE001 - torch raises many kinds for a bad file
            return None, f"its weights file {path.name} cannot be read: {str(err).splitlines()[0]}"

    def save(self, result: dict) -> None:
        import torch
        key = result["key"]
        record = {k: v for k, v in result.items() if k != "state"}
        if "state" in result:  # the weights first: a trial record exists only once its weights are whole
            buffer = io.BytesIO()
            torch.save(result["state"], buffer)
            atomic_write(self.folder / f"{key}.pt", buffer.getvalue())
            record["state_sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
        record["sha256"] = checksum(record)
        write_json(self.folder / f"{key}.json", record)
