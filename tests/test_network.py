"""Finding, downloading (against a loopback HTTP server) and caching the generated VGG-19."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from fake_vgg import write_vgg_mat

import network
import vgg


class Handler(BaseHTTPRequestHandler):
    """Serves server.data at any path, honouring Range unless told not to, maybe cut short."""

    def do_GET(self) -> None:
        server = self.server
        data = server.data
        asked = self.headers.get("Range")
        server.ranges.append(asked)
        start = 0
        if asked and not server.ignore_range:
            start = int(asked.removeprefix("bytes=").rstrip("-"))
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cut:  # send half the file, then close the connection
            server.cut = False
            body = body[: len(data) // 2]
        for start in range(0, len(body), server.piece):
            self.wfile.write(body[start : start + server.piece])
            time.sleep(server.pause)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture(scope="module")
def mat_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A tiny generated VGG-19 .mat, as bytes."""
    path = tmp_path_factory.mktemp("served") / "vgg.mat"
    write_vgg_mat(str(path), "new")
    return path.read_bytes()


@pytest.fixture
def server(mat_bytes: bytes):
    """A loopback HTTP server serving mat_bytes, in a thread."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.data, httpd.ranges, httpd.cut, httpd.ignore_range = mat_bytes, [], False, False
    httpd.piece, httpd.pause = 1 << 30, 0.0  # the body in pieces of this size, this far apart
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/{network.FILENAME}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder and a cache folder, with no network-related variables set."""
    for name in list(os.environ):
        if name.startswith("NEURAL_STYLE_"):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("NEURAL_STYLE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_cache_dir_order() -> None:
    assert network.cache_dir({"NEURAL_STYLE_HOME": "/a", "XDG_CACHE_HOME": "/b"}) == Path("/a")
    assert network.cache_dir({"XDG_CACHE_HOME": "/b"}) == Path("/b/neural-style")
    assert network.cache_dir({}) == Path.home() / ".cache" / "neural-style"


def test_find_order(home: Path, tmp_path: Path) -> None:
    env = {"NEURAL_STYLE_HOME": str(home)}
    assert network.find_network(env) is None
    home.mkdir()
    (home / network.FILENAME).write_bytes(b"cache")
    assert network.find_network(env) == home / network.FILENAME
    Path(network.FILENAME).write_bytes(b"cwd")
    assert network.find_network(env) == Path.cwd() / network.FILENAME
    named = tmp_path / "named.mat"
    named.write_bytes(b"env")
    assert network.find_network({**env, "NEURAL_STYLE_NETWORK": str(named)}) == named
    with pytest.raises(ValueError, match="missing.mat"):
        network.find_network({**env, "NEURAL_STYLE_NETWORK": str(tmp_path / "missing.mat")})


def test_explicit_path_must_exist(home: Path, tmp_path: Path) -> None:
    given = tmp_path / "given.mat"
    given.write_bytes(b"x")
    assert network.resolve_network(str(given)) == given
    with pytest.raises(ValueError, match="nope.mat does not exist"):
        network.resolve_network(str(tmp_path / "nope.mat"))


def test_download_lands_and_is_used(home: Path, server, mat_bytes: bytes, monkeypatch) -> None:
    monkeypatch.setenv("NEURAL_STYLE_NETWORK_URL", server.url)
    monkeypatch.setenv("NEURAL_STYLE_NETWORK_SHA256", sha(mat_bytes))
    stream = io.StringIO()
    path = network.resolve_network(None, stream=stream)
    assert path == home / network.FILENAME
    assert sha(path.read_bytes()) == sha(mat_bytes)
    assert sorted(p.name for p in home.iterdir()) == [network.FILENAME]
    assert network.FILENAME in stream.getvalue()  # the progress bar
    assert set(network.load_network(path).weights) == set(vgg.CONV_LAYERS)
    assert network.resolve_network(None) == path  # found in the cache, not fetched again
    assert len(server.ranges) == 1


def test_quiet_download_prints_nothing(home: Path, server, mat_bytes: bytes) -> None:
    stream = io.StringIO()
    dest = home / network.FILENAME
    assert network.download_network(dest, server.url, sha(mat_bytes), stream, quiet=True) == dest
    assert stream.getvalue() == ""


def test_two_downloads_at_once_take_turns(home: Path, server, mat_bytes: bytes) -> None:
    """The shards of a batch share a cache folder: the second download waits for the first's
    file instead of appending to the same part file."""
    dest = home / network.FILENAME
    home.mkdir()
    dest.with_name(dest.name + ".part").write_bytes(mat_bytes[:1000])  # an earlier one's
    server.piece, server.pause = 4096, 0.02
    streams, found = [io.StringIO(), io.StringIO()], []

    def download(stream: io.StringIO) -> None:
        found.append(network.download_network(dest, server.url, sha(mat_bytes), stream))

    threads = [threading.Thread(target=download, args=(stream,)) for stream in streams]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [dest, dest] and dest.read_bytes() == mat_bytes
    assert server.ranges == ["bytes=1000-"]  # one download, resumed
    assert any("waiting for another" in stream.getvalue() for stream in streams)


def test_a_cache_folder_without_locks(home: Path, server, mat_bytes: bytes, monkeypatch) -> None:
    def flock(fd: int, operation: int) -> None:
        raise OSError(37, "No locks available")

    monkeypatch.setattr(network.fcntl, "flock", flock)
    dest = home / network.FILENAME
    assert network.download_network(dest, server.url, sha(mat_bytes), io.StringIO()) == dest
    assert dest.read_bytes() == mat_bytes


def test_a_cache_folder_that_cannot_be_written(home: Path, server, mat_bytes, tmp_path) -> None:
    (tmp_path / "file").write_text("not a folder")
    dest = tmp_path / "file" / "cache" / network.FILENAME
    with pytest.raises(ValueError, match=r"cannot write .*file/cache.*NEURAL_STYLE_HOME"):
        network.download_network(dest, server.url, sha(mat_bytes), io.StringIO())
    dest = home / network.FILENAME
    dest.with_name(dest.name + ".part").mkdir(parents=True)  # its part file cannot be opened
    with pytest.raises(ValueError, match=r"cannot write .*\.part \(Is a directory\)"):
        network.download_network(dest, server.url, sha(mat_bytes), io.StringIO())


def test_interrupted_download_resumes(home: Path, server, mat_bytes: bytes) -> None:
    server.cut = True
    dest = home / network.FILENAME
    with pytest.raises(ValueError, match="interrupted at .*closed early.*run again") as error:
        network.download_network(dest, server.url, sha(mat_bytes), io.StringIO())
    assert "\n" not in str(error.value)
    part = home / (network.FILENAME + ".part")
    half = len(mat_bytes) // 2
    assert part.stat().st_size == half and not dest.exists()
    network.download_network(dest, server.url, sha(mat_bytes), io.StringIO())
    assert server.ranges == [None, f"bytes={half}-"]
    assert sha(dest.read_bytes()) == sha(mat_bytes) and not part.exists()


def test_stalled_download_keeps_what_arrived(home, server, mat_bytes, monkeypatch) -> None:
    monkeypatch.setattr(network, "TIMEOUT", 0.3)
    server.piece, server.pause = len(mat_bytes) // 4, 1.5  # a quarter, then silence
    dest = home / network.FILENAME
    with pytest.raises(ValueError, match=f"interrupted at {server.piece} of {len(mat_bytes)}"):
        network.download_network(dest, server.url, sha(mat_bytes), io.StringIO())
    part = home / (network.FILENAME + ".part")
    assert part.read_bytes() == mat_bytes[: server.piece]
    server.pause = 0.0
    network.download_network(dest, server.url, sha(mat_bytes), io.StringIO())
    assert server.ranges[-1] == f"bytes={server.piece}-" and dest.read_bytes() == mat_bytes


@pytest.mark.parametrize("extra", [b"", b"x"])
def test_a_part_file_as_long_as_the_file(home: Path, server, mat_bytes: bytes, extra) -> None:
    # The server has nothing after its end (HTTP 416): a whole file is kept, a longer one
    # (not the file) is fetched again.
    home.mkdir()
    part = home / (network.FILENAME + ".part")
    part.write_bytes(mat_bytes + extra)
    dest = network.download_network(home / network.FILENAME, server.url, sha(mat_bytes))
    assert server.ranges == [f"bytes={len(mat_bytes + extra)}-", *([None] if extra else [])]
    assert dest.read_bytes() == mat_bytes and not part.exists()


def test_server_ignoring_range_starts_over(home: Path, server, mat_bytes: bytes) -> None:
    home.mkdir()
    part = home / (network.FILENAME + ".part")
    part.write_bytes(b"stale bytes")
    server.ignore_range = True
    dest = network.download_network(home / network.FILENAME, server.url, sha(mat_bytes))
    assert server.ranges == ["bytes=11-"]
    assert dest.read_bytes() == mat_bytes and not part.exists()


def test_wrong_hash_leaves_nothing(home: Path, server, mat_bytes: bytes) -> None:
    env = {
        "NEURAL_STYLE_HOME": str(home),
        "NEURAL_STYLE_NETWORK_URL": server.url,
        "NEURAL_STYLE_NETWORK_SHA256": "0" * 64,
    }
    with pytest.raises(ValueError, match=f"expected {'0' * 64}, got {sha(mat_bytes)}"):
        network.resolve_network(None, env=env, stream=io.StringIO())
    assert list(home.iterdir()) == []


def test_unreachable_url(home: Path) -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{network.FILENAME}"
    env = {"NEURAL_STYLE_HOME": str(home), "NEURAL_STYLE_NETWORK_URL": url}
    with pytest.raises(ValueError, match="could not reach") as error:
        network.resolve_network(None, env=env, stream=io.StringIO())
    message = str(error.value)
    assert url in message and "--network" in message and "\n" not in message


@pytest.mark.parametrize("switch", ["argument", "variable"])
def test_no_download(home: Path, monkeypatch: pytest.MonkeyPatch, switch: str) -> None:
    if switch == "variable":
        monkeypatch.setenv("NEURAL_STYLE_NO_DOWNLOAD", "1")
    with pytest.raises(ValueError, match="downloading is off") as error:
        network.resolve_network(None, download=switch != "argument")
    message = str(error.value)
    assert str(home) in message and network.URL in message and "--network" in message
    assert "\n" not in message


def cached(home: Path) -> list[Path]:
    return sorted(home.glob("*.npz"))


def no_loadmat(path: str) -> vgg.Network:
    raise AssertionError("vgg.load_mat was called")


def same(a: vgg.Network, b: vgg.Network) -> bool:
    if a.weights.keys() != b.weights.keys() or not np.array_equal(a.mean_pixel, b.mean_pixel):
        return False
    pairs = [
        (x, y) for name in a.weights for x, y in zip(a.weights[name], b.weights[name], strict=True)
    ]
    return all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in pairs)


def test_cache_written_then_read(home: Path, tmp_path: Path, monkeypatch) -> None:
    mat = tmp_path / "vgg.mat"
    write_vgg_mat(str(mat), "old")
    first = network.load_network(mat)
    assert same(first, vgg.load_mat(str(mat)))
    assert len(cached(home)) == 1 and not [p for p in home.iterdir() if ".tmp" in p.name]
    monkeypatch.setattr(vgg, "load_mat", no_loadmat)
    assert same(network.load_network(str(mat)), first)


def test_cache_invalidated_when_mat_changes(home: Path, tmp_path: Path) -> None:
    mat = tmp_path / "vgg.mat"
    write_vgg_mat(str(mat), "new", seed=0)
    first = network.load_network(mat)
    old_cache = cached(home)
    mtime = mat.stat().st_mtime_ns
    write_vgg_mat(str(mat), "new", seed=1)
    os.utime(mat, ns=(mtime + 10**9, mtime + 10**9))  # a later mtime, whatever the clock
    second = network.load_network(mat)
    assert not np.array_equal(first.weights["conv1_1"][0], second.weights["conv1_1"][0])
    assert same(second, vgg.load_mat(str(mat)))
    assert len(cached(home)) == 1 and cached(home) != old_cache  # the stale one is gone


def test_a_stale_cache_another_process_deleted(home: Path, tmp_path: Path, monkeypatch) -> None:
    # Two processes rebuilding the cache at once both find the stale file; one deletes it first.
    mat = tmp_path / "vgg.mat"
    write_vgg_mat(str(mat), "new")
    real = Path.glob

    def and_one_gone(self: Path, pattern: str):
        yield from real(self, pattern)
        yield self / pattern.replace("*", "gone")

    monkeypatch.setattr(Path, "glob", and_one_gone)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        network.load_network(mat)
    monkeypatch.undo()
    assert len(cached(home)) == 1


def test_a_killed_cache_writes_temporary_is_removed(home: Path, tmp_path: Path) -> None:
    mat = tmp_path / "vgg.mat"
    write_vgg_mat(str(mat), "new")
    network.load_network(mat)
    prefix = cached(home)[0].name.rsplit("-", 1)[0]
    old, recent = (home / f".{prefix}-{n}.tmp-0000000{n}.npz" for n in (1, 2))
    old.write_bytes(b"cut")
    recent.write_bytes(b"being written")
    os.utime(old, (0, 0))
    os.utime(mat, ns=(10**9, 10**9))  # the .mat changed: its cache is written again
    network.load_network(mat)
    assert not old.exists() and recent.exists()


@pytest.mark.parametrize("damage", ["garbage", "wrong arrays", "wrong dtype"])
def test_corrupt_cache_rebuilt(home: Path, tmp_path: Path, monkeypatch, damage: str) -> None:
    mat = tmp_path / "vgg.mat"
    write_vgg_mat(str(mat), "new")
    first = network.load_network(mat)
    (file,) = cached(home)
    if damage == "garbage":
        file.write_bytes(b"not a zip file at all" * 10)
    elif damage == "wrong arrays":
        np.savez(file, layers=np.array(["conv1_1"]), mean_pixel=first.mean_pixel)
    else:
        arrays = {"layers": np.array(["conv1_1"]), "mean_pixel": first.mean_pixel}
        kernel, bias = first.weights["conv1_1"]
        np.savez(file, **arrays, conv1_1_kernel=kernel.astype(np.float64), conv1_1_bias=bias)
    with pytest.warns(UserWarning, match="rebuilding"):
        assert same(network.load_network(mat), first)
    monkeypatch.setattr(vgg, "load_mat", no_loadmat)
    assert same(network.load_network(mat), first)  # the rebuilt cache is good


def test_unwritable_cache_warns(tmp_path: Path, network_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    env = {"NEURAL_STYLE_HOME": str(blocker / "cache")}
    with pytest.warns(UserWarning, match="could not write network cache"):
        loaded = network.load_network(network_path, env=env)
    assert same(loaded, vgg.load_mat(str(network_path)))


def test_no_cache(home: Path, network_path: Path, monkeypatch) -> None:
    """Without the cache the .mat itself is read, and no cache is written or read."""
    loaded = network.load_network(network_path, use_cache=False)
    assert not home.exists()
    assert same(loaded, vgg.load_mat(str(network_path)))
    network.load_network(network_path)  # a cache now exists
    assert len(cached(home)) == 1
    read, real = [], vgg.load_mat
    monkeypatch.setattr(vgg, "load_mat", lambda path: read.append(path) or real(path))
    assert same(network.load_network(network_path, use_cache=False), loaded)
    assert read == [str(network_path)]


def test_missing_mat(home: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read network file"):
        network.load_network(tmp_path / "absent.mat")


def test_cli_downloads_verifies_then_runs_from_cache(
    home: Path, server, mat_bytes: bytes, inputs, monkeypatch, capsys
) -> None:
    import neural_style

    monkeypatch.setenv("NEURAL_STYLE_NETWORK_URL", server.url)
    monkeypatch.setenv("NEURAL_STYLE_NETWORK_SHA256", sha(mat_bytes))
    argv = ["--content", str(inputs["content"]), "--styles", str(inputs["style1"])]
    argv += ["--iterations", "1"]
    assert neural_style.main([*argv, "--output", "a.png"]) == 0
    assert (home / network.FILENAME).read_bytes() == mat_bytes
    assert len(list(home.glob("*.npz"))) == 1 and len(server.ranges) == 1
    monkeypatch.setattr(vgg, "load_mat", no_loadmat)  # the second run reads the cache
    assert neural_style.main([*argv, "--output", "b.png"]) == 0
    assert len(server.ranges) == 1 and Path("b.png").is_file()


def test_cli_wrong_hash_leaves_nothing(home: Path, server, inputs, monkeypatch, capsys) -> None:
    import neural_style

    monkeypatch.setenv("NEURAL_STYLE_NETWORK_URL", server.url)
    monkeypatch.setenv("NEURAL_STYLE_NETWORK_SHA256", "0" * 64)
    argv = ["--content", str(inputs["content"]), "--styles", str(inputs["style1"])]
    assert neural_style.main([*argv, "--output", "a.png", "--iterations", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: SHA256 mismatch") and "0" * 64 in err[-1]
    assert list(home.iterdir()) == [] and not Path("a.png").exists()


def test_cli_download_network_prints_the_path(home: Path, server, mat_bytes, monkeypatch, capsys):
    import neural_style

    monkeypatch.setenv("NEURAL_STYLE_NETWORK_URL", server.url)
    monkeypatch.setenv("NEURAL_STYLE_NETWORK_SHA256", sha(mat_bytes))
    assert neural_style.main(["--download-network"]) == 0
    assert capsys.readouterr().out.strip() == str(home / network.FILENAME)


def test_cli_no_download_and_no_file(home: Path, inputs, capsys) -> None:
    import neural_style

    argv = ["--content", str(inputs["content"]), "--styles", str(inputs["style1"])]
    assert neural_style.main([*argv, "--output", "a.png", "--no-download"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no imagenet-vgg-verydeep-19.mat") and err.count("\n") == 1
    assert "--network PATH" in err and network.URL in err
