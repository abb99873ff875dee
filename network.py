"""Find, download (resumable, SHA256-checked) and cache the VGG-19 weights."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO

import numpy as np
from tqdm import tqdm

try:
    import fcntl
except ImportError:  # Windows: downloads into one cache folder are not serialised there
    fcntl = None

if __package__:  # installed: the modules are the package neural_style_tf2
    from . import images, vgg
else:  # a checkout: the modules side by side
    import images
    import vgg

FILENAME = "imagenet-vgg-verydeep-19.mat"
URL = "https://www.vlfeat.org/matconvnet/models/imagenet-vgg-verydeep-19.mat"
SHA256 = "abdb57167f82a2a1fbab1e1c16ad9373411883f262a1a37ee5db2e6fb0044695"
TIMEOUT = 30  # seconds without a byte before a connection counts as lost
CHUNK = 1 << 20
LEFT_TEMPORARY_AGE = 600  # seconds: a cache temporary this old is a killed write's


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """$NEURAL_STYLE_HOME, else $XDG_CACHE_HOME/neural-style, else ~/.cache/neural-style."""
    if env.get("NEURAL_STYLE_HOME"):
        return Path(env["NEURAL_STYLE_HOME"]).expanduser()
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]).expanduser() / "neural-style"
    return Path("~/.cache/neural-style").expanduser()


def find_network(env: Mapping[str, str] = os.environ) -> Path | None:
    """The weights from $NEURAL_STYLE_NETWORK, ./FILENAME or the cache folder; None if absent."""
    named = env.get("NEURAL_STYLE_NETWORK")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ValueError(f"NEURAL_STYLE_NETWORK names {named}, which does not exist")
        return path
    for path in (Path.cwd() / FILENAME, cache_dir(env) / FILENAME):
        if path.is_file():
            return path
    return None


def _by_hand(url: str) -> str:
    """How to fetch the weights without this module."""
    return f"download it from {url} and pass --network PATH"


def sha256_file(path: Path | str) -> hashlib._Hash:
    """A SHA-256 hash object fed a file's bytes (read in chunks: the weights are 500 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest


def _request(url: str, done: int) -> http.client.HTTPResponse | None:
    """The response to a GET of url from byte done on; None if the part file is complete."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={done}-"} if done else {})
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and done:  # the part file is already as long as the file, or longer
            return None
        raise ValueError(f"could not download {url} (HTTP {exc.code}); {_by_hand(url)}") from None
    except OSError as exc:  # URLError, refused, timed out
        reason = getattr(exc, "reason", exc)
        raise ValueError(f"could not reach {url} ({reason}); {_by_hand(url)}") from None


def _unwritable(path: Path, exc: OSError, url: str) -> ValueError:
    """The error for a cache file that cannot be written (running again would not help)."""
    return ValueError(
        f"cannot write {path} ({exc.strerror or exc}); set NEURAL_STYLE_HOME to a folder you"
        f" can write, or {_by_hand(url)}"
    )


def _receive(
    response, part: Path, done: int, digest, bar: tqdm, url: str
) -> tuple[int, str | None]:
    """Append the response's body to part, hashing it; (bytes now in part, why it stopped)."""
    receiving = False
    try:
        with open(part, "ab" if done else "wb") as out:
            while True:
                receiving = True
                # read1: what has arrived, up to CHUNK. read() waits for all CHUNK bytes and
                # drops those it got when the connection stalls before them.
                chunk = response.read1(CHUNK)
                receiving = False
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                bar.update(len(chunk))
    except (http.client.HTTPException, OSError) as exc:  # reset, timed out, incomplete
        if not receiving:  # the disk's error, not the connection's
            raise _unwritable(part, exc, url) from None
        return done, str(exc) or type(exc).__name__
    return done, None


@contextlib.contextmanager
def _only_download(dest: Path, stream: TextIO, quiet: bool) -> Iterator[None]:
    """Wait until no other process downloads into dest (the runs of a batch's shards share one
    cache folder; two would append to one part file)."""
    if fcntl is None:
        yield
        return
    folder = os.open(dest.parent, os.O_RDONLY)  # the lock is the folder's: no file to leave
    try:
        try:
            fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not quiet:
                print(f"waiting for another process's download of {dest}", file=stream)
            fcntl.flock(folder, fcntl.LOCK_EX)
        except OSError:  # a file system without locks (some network and FUSE mounts)
            pass
        yield
    finally:
        os.close(folder)  # which releases the lock


def download_network(
    dest: Path, url: str, sha256: str, stream: TextIO | None = None, quiet: bool = False
) -> Path:
    """Download url to dest via dest.part (resuming it), check its SHA256, then move it in
    place; one process at a time (a second one waits, then finds dest there). The progress bar
    goes to stream (default: stderr) unless quiet."""
    dest, stream = Path(dest), stream or sys.stderr
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with _only_download(dest, stream, quiet):
            if dest.is_file():  # the download that this one waited for
                return dest
            return _download(dest, url, sha256, stream, quiet)
    except OSError as exc:
        raise _unwritable(dest.parent, exc, url) from None


def _download(dest: Path, url: str, sha256: str, stream: TextIO, quiet: bool) -> Path:
    """download_network's work, in its lock."""
    part = dest.with_name(dest.name + ".part")
    done = part.stat().st_size if part.is_file() else 0
    response = _request(url, done)
    if response is None:  # the part file is as long as the file (a download cut at its end)
        if sha256_file(part).hexdigest() == sha256.lower():
            os.replace(part, dest)
            return dest
        part.unlink()
        return _download(dest, url, sha256, stream, quiet)
    with response:
        if response.status == 206:  # resuming: the hash covers the bytes already there
            digest = sha256_file(part)
        else:  # no Range request, or the server ignored it: start over
            digest, done = hashlib.sha256(), 0
        length = response.headers.get("Content-Length")
        total = done + int(length) if length else None
        with tqdm(
            total=total, initial=done, unit="B", unit_scale=True, desc=dest.name, file=stream,
            disable=quiet,
        ) as bar:  # fmt: skip
            done, reason = _receive(response, part, done, digest, bar, url)
    if reason is None and total is not None and done < total:
        reason = "connection closed early"
    if reason is not None:
        raise ValueError(
            f"download of {url} was interrupted at {done} of {total or '?'} bytes ({reason}); "
            f"run again to resume it from {part}"
        )
    got = digest.hexdigest()
    if got != sha256.lower():
        part.unlink()
        raise ValueError(f"SHA256 mismatch for {url}: expected {sha256}, got {got}; deleted it")
    os.replace(part, dest)
    return dest


def resolve_network(
    path: str | None,
    download: bool = True,
    env: Mapping[str, str] = os.environ,
    stream: TextIO | None = None,
    quiet: bool = False,
) -> Path:
    """The weights: path if given, else find_network(), else a download into cache_dir()
    (with a progress bar on stream, default stderr, unless quiet)."""
    if path is not None:
        given = Path(path).expanduser()
        if not given.is_file():
            raise ValueError(f"network file {path} does not exist")
        return given
    found = find_network(env)
    if found is not None:
        return found
    url = env.get("NEURAL_STYLE_NETWORK_URL") or URL
    folder = cache_dir(env)
    if not download or env.get("NEURAL_STYLE_NO_DOWNLOAD") == "1":
        raise ValueError(
            f"no {FILENAME} in $NEURAL_STYLE_NETWORK, {Path.cwd()} or {folder}, "
            f"and downloading is off; {_by_hand(url)}"
        )
    sha256 = env.get("NEURAL_STYLE_NETWORK_SHA256") or SHA256
    return download_network(folder / FILENAME, url, sha256, stream, quiet)


def _key(text: str) -> str:
    """A short hash of text, for cache file names."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_cache(file: Path, source: str) -> vgg.Network:
    """The network of the .mat source stored in a cache file; ValueError unless it is sound."""
    with np.load(file, allow_pickle=False) as data:
        layers = [str(name) for name in data["layers"]]
        expected = {"layers", "mean_pixel"}
        expected |= {f"{name}_{part}" for name in layers for part in ("kernel", "bias")}
        if set(data.files) != expected or not set(layers) <= set(vgg.CONV_LAYERS):
            raise ValueError("unexpected arrays")
        weights = {name: (data[f"{name}_kernel"], data[f"{name}_bias"]) for name in layers}
        mean_pixel = data["mean_pixel"]
    arrays = [mean_pixel, *(array for pair in weights.values() for array in pair)]
    if any(array.dtype != np.float32 for array in arrays) or mean_pixel.shape != (3,):
        raise ValueError("unexpected array types")
    if any(k.ndim != 4 or b.shape != (k.shape[3],) for k, b in weights.values()):
        raise ValueError("unexpected array shapes")
    return vgg.Network(weights=weights, mean_pixel=mean_pixel, source=source)


def _write_cache(network: vgg.Network, file: Path, prefix: str) -> None:
    """Write the cache file atomically, delete older ones for the same .mat; warn on failure."""
    arrays = {"layers": np.array(list(network.weights), dtype=str)}
    arrays["mean_pixel"] = np.asarray(network.mean_pixel, np.float32)
    for name, (kernel, bias) in network.weights.items():
        arrays[f"{name}_kernel"] = np.asarray(kernel, np.float32)
        arrays[f"{name}_bias"] = np.asarray(bias, np.float32)
    try:
        with images.atomic_output(str(file)) as temporary, open(temporary, "wb") as out:
            np.savez(out, **arrays)
        for stale in file.parent.glob(f"{prefix}-*.npz"):
            if stale != file:
                stale.unlink(missing_ok=True)  # another process may have deleted it
        # The temporary of a write killed midway (hidden, so the glob above skips it); a
        # recent one may be another process's write still going on.
        ours = re.compile(re.escape(prefix) + r"-.*\.npz")
        for left in images.stale_temporaries(
            [str(file.parent)], lambda path: bool(ours.fullmatch(os.path.basename(path)))
        ):
            with contextlib.suppress(FileNotFoundError):
                if time.time() - os.stat(left).st_mtime > LEFT_TEMPORARY_AGE:
                    os.remove(left)
    except OSError as exc:
        warnings.warn(
            f"could not write network cache {file} ({exc}); going on without it", stacklevel=3
        )


def load_network(
    path: Path | str, use_cache: bool = True, env: Mapping[str, str] = os.environ
) -> vgg.Network:
    """Load a .mat, through a fast .npz cache in cache_dir() keyed by its path, size and mtime."""
    if not use_cache:
        return vgg.load_mat(str(path))
    path = Path(path).resolve()
    try:
        stat = path.stat()
    except OSError as exc:
        raise ValueError(f"cannot read network file {path} ({exc.strerror})") from None
    prefix = f"vgg19-{_key(str(path))}"
    file = cache_dir(env) / f"{prefix}-{_key(f'{stat.st_size}:{stat.st_mtime_ns}')}.npz"
    if file.is_file():
        try:
            return _read_cache(file, str(path))
        except MemoryError:  # a sound cache too big for the memory left: the .mat is bigger
            raise
        except Exception as exc:  # numpy and zipfile raise many kinds for damaged files
            warnings.warn(f"network cache {file} is unusable ({exc}); rebuilding it", stacklevel=2)
    network = vgg.load_mat(str(path))
    _write_cache(network, file, prefix)
    return network
