"""A run's state on disk, to resume from: the file format and the run's fingerprint.

The file (OUTPUT.state, settings.state_path) is an uncompressed NumPy .npz archive, written
atomically: the format version, the fingerprint of the run it belongs to, the RunState's
values, and the optimiser's arrays under "optimiser/NAME". Nothing in it is pickled.
"""

from __future__ import annotations

import hashlib
import os
import warnings

import numpy as np
import tensorflow as tf

if __package__:  # installed: the modules are the package neural_style_tf2
    from . import hardware, images, network
    from . import settings as options
    from .settings import Settings
    from .stylize import RunState
else:  # a checkout: the modules side by side
    import hardware
    import images
    import network
    import settings as options
    from settings import Settings
    from stylize import RunState

VERSION = 2  # of the file format; a file of another version is not used, but for 1 (below)
OPTIMISER = "optimiser/"
# Options whose files count by their bytes (not their paths), and the network by its identity.
FILES = ("content", "styles", "initial")
NOT_HASHED = (*FILES, "network", "precision")
SCALARS = ("iteration", "size_index", "done", "count", "ended", "best_loss", "cuts_drawn")


def file_identity(path: str) -> str:
    """What tells a file's versions apart without reading it: its absolute path, size and
    modification time."""
    stat = os.stat(path)
    return f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}"


def fingerprint(settings: Settings, network_path: str | None, clip: list[str] | None = None) -> str:
    """SHA-256 of everything a run's result depends on, as hex.

    That is the bytes of the content, style and initial files (not their paths), the network
    file's identity (its absolute path, size and modification time: cheaper than reading
    hundreds of MB, and a file replaced in place gets a new mtime), for a video the identity
    of its clip or frame files (given as clip) instead of the content, every option that changes
    the picture (metadata result=True; for --precision, the precision the run uses, which
    auto chooses by the machine), and the TensorFlow version. Printing, progress files and
    the like do not count.
    """
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}:{len(data)}:".encode() + data)

    paths = [None if clip else settings.content, *(settings.styles or ()), settings.initial]
    for path in filter(None, paths):
        add("file", network.sha256_file(path).digest())
    for path in clip or ():
        add("clip", file_identity(path).encode())
    if network_path is not None:
        add("network", file_identity(network_path).encode())
    for name, field in options.FIELDS.items():
        if field.metadata["result"] and name not in NOT_HASHED:
            add(name, repr(getattr(settings, name)).encode())
    # --precision auto: the precision chosen on this machine, which is what the result depends on
    add("precision", hardware.resolve_precision(settings.precision)[0].encode())
    add("tensorflow", tf.__version__.encode())
    return digest.hexdigest()


def _arrays(run: RunState, fingerprint: str) -> dict[str, np.ndarray]:
    """The file's arrays for a state."""
    arrays = {
        "version": np.array(VERSION),
        "fingerprint": np.array(fingerprint),
        "noise_seed": np.array(str(run.noise_seed)),  # may exceed int64
        "losses": np.array(run.losses, np.float64),
        "start": run.start,
        **{name: np.array(getattr(run, name)) for name in SCALARS},
        "budget": np.array(run.budget or 0),  # 0: none known
        **{OPTIMISER + name: value for name, value in run.optimiser.items()},
    }
    if run.best_image is not None:
        arrays["best_image"] = run.best_image
    return arrays


def save(path: str, run: RunState, fingerprint: str, warn: bool = True) -> bool:
    """Write a state atomically (a reader sees the old file or the new one, never half of one).

    A write that fails (disk full, ...) leaves the previous state and gives one warning line,
    unless warn is False; the run goes on. Returns whether it was written.
    """
    try:
        with images.atomic_output(path) as temporary, open(temporary, "wb") as file:
            np.savez(file, **_arrays(run, fingerprint))
            file.flush()
            os.fsync(file.fileno())  # on disk before the rename: a power cut keeps one or the other
    except OSError as exc:
        if warn:
            warnings.warn(
                f"{path}: cannot save the run's state ({exc.strerror or exc}); the run goes on",
                stacklevel=2,
            )
        return False
    return True


def _read(path: str) -> tuple[int, str, RunState | None]:
    """The version, fingerprint and state of a file (None if of another version)."""
    with np.load(path, allow_pickle=False) as data:
        version = int(data["version"])
        if version not in (1, VERSION):
            return version, "", None
        arrays = {name: data[name] for name in data.files}  # reads (and CRC-checks) them all
    if version == 1:  # no count of tile edges drawn: exact for a run not in tiles
        arrays["cuts_drawn"] = np.array(0)
    scalars = {name: arrays[name].item() for name in SCALARS}
    run = RunState(
        **scalars,
        start=arrays["start"],
        best_image=arrays.get("best_image"),
        losses=tuple(float(x) for x in arrays["losses"]),
        optimiser={k[len(OPTIMISER) :]: v for k, v in arrays.items() if k.startswith(OPTIMISER)},
        noise_seed=int(str(arrays["noise_seed"])),
        budget=int(arrays.get("budget", 0)) or None,  # absent from files of earlier versions
    )
    return version, str(arrays["fingerprint"]), run


def owner(path: str) -> str | None:
    """The fingerprint of the run whose state the file holds; None if it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return str(data["fingerprint"])
    except MemoryError:
        raise
    except Exception:  # numpy and zipfile raise many kinds for damaged files
        return None


def load(path: str, fingerprint: str) -> RunState | None:
    """The state at path if it is sound and belongs to the run of this fingerprint.

    No file: None. A damaged file (truncated, not an archive, missing values) or one of
    another format version: one warning line, None. Another run's: one warning line, None.
    """
    if not os.path.exists(path):
        return None
    try:
        version, saved, run = _read(path)
    except MemoryError:  # a sound state too big for the memory left, kept for a retry
        raise
    except Exception as exc:  # numpy and zipfile raise many kinds for damaged files
        reason = " ".join(str(exc).split()) or type(exc).__name__
        warnings.warn(f"{path}: damaged run state ({reason}); starting afresh", stacklevel=2)
        return None
    if run is None:
        warnings.warn(
            f"{path}: run state of format {version}, not {VERSION}; starting afresh", stacklevel=2
        )
        return None
    if saved != fingerprint:
        warnings.warn(
            f"{path} belongs to another run (its inputs, network or options differ);"
            " starting afresh and replacing it",
            stacklevel=2,
        )
        return None
    return run
