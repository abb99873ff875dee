"""Odd inputs that must work and bad ones that must fail cleanly, through the CLI.

A clean failure is one line `error: ...` on stderr naming what is wrong, exit status 2 (a bad
option or a path that does not exist or is the wrong kind, before any work) or 1 (a file that
exists but cannot be used, too little memory, a failed run), no traceback and no new file.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from conftest import ROOT, save, smooth_image
from fake_vgg import write_vgg_mat
from PIL import Image
from test_images import png_bytes

import hardware
import images
import inputs
import memory
import neural_style
import stylize
from images import Size


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Inputs in tmp_path/in; outputs are to go to tmp_path/out, which does not exist yet."""
    folder = tmp_path / "in"
    folder.mkdir()
    return {
        "content": save(folder / "content.png", smooth_image(24, 32, 1)),
        "style": save(folder / "style.jpg", smooth_image(20, 20, 2)),
        "style2": save(folder / "style2.png", smooth_image(10, 12, 3)),
        "out": tmp_path / "out" / "result.png",
    }


def argv(files, network_path, *extra: str) -> list[str]:
    """A valid 1-iteration command line, then extra (later options win)."""
    return [
        "--content", str(files["content"]), "--styles", str(files["style"]),
        "--output", str(files["out"]), "--network", str(network_path), "--iterations", "1",
        *extra,
    ]  # fmt: skip


def tree(folder: Path) -> list[str]:
    """Every file and folder under folder, hidden ones included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def fails_cleanly(args, tmp_path, capsys, status: int, *names: str) -> str:
    """Run main(args); assert exit status, one error line naming names, no new files."""
    before = tree(tmp_path)
    assert neural_style.main(args) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and err.endswith(errors[0] + "\n"), err
    for name in names:
        assert name in errors[0], (name, errors[0])
    assert tree(tmp_path) == before
    return errors[0]


# ---- must fail, exit 2: bad options and paths, found before any work ----------------------


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (["--width", "0"], ["--width", ">= 1"]),
        (["--width", "-5"], ["--width", ">= 1"]),
        (["--iterations", "0"], ["--iterations", ">= 1"]),
        (["--iterations", "-1"], ["--iterations", ">= 1"]),
        (["--content-weight", "-1"], ["--content-weight", ">= 0"]),
        (["--style-weight", "nan"], ["--style-weight", ">= 0"]),
        (["--tv-weight", "inf"], ["--tv-weight", ">= 0"]),
        (["--learning-rate", "0"], ["--learning-rate", "> 0"]),
        (["--learning-rate", "-2"], ["--learning-rate", "> 0"]),
        (["--style-scales", "0"], ["--style-scales", "> 0"]),
        (["--style-blend-weights", "-1"], ["--style-blend-weights", ">= 0"]),
        (["--output", "outfinal"], ["outfinal", "no extension", ".jpg", ".png"]),
        (["--output", "out/x.xyz"], ["out/x.xyz", ".xyz", ".jpg", ".png"]),
        (["--checkpoint-iterations", "1", "--checkpoint-output", "c%s.gif"], ["c1.gif", ".jpg"]),
        (["--frobnicate"], ["--frobnicate"]),
    ],
)
def test_bad_option(files, network_path, tmp_path, capsys, extra, names):
    fails_cleanly(argv(files, network_path, *extra), tmp_path, capsys, 2, *names)


@pytest.mark.parametrize(("weights", "styles"), [(["0", "0"], 2), (["1", "1", "1"], 2), (["0"], 1)])
def test_bad_blend_weights(files, network_path, tmp_path, capsys, weights, styles):
    paths = [str(files["style"]), str(files["style2"])][:styles]
    args = argv(files, network_path, "--styles", *paths, "--style-blend-weights", *weights)
    fails_cleanly(args, tmp_path, capsys, 2, "--style-blend-weights")


@pytest.mark.parametrize("option", ["--content", "--styles", "--initial", "--network"])
def test_missing_path_or_folder(files, network_path, tmp_path, capsys, option):
    missing = str(tmp_path / "in" / "nowhere.png")
    fails_cleanly(
        argv(files, network_path, option, missing), tmp_path, capsys, 2, option, missing,
        "does not exist",
    )  # fmt: skip
    folder = str(tmp_path / "in")
    fails_cleanly(
        argv(files, network_path, option, folder), tmp_path, capsys, 2, option, folder,
        "is not a file",
    )  # fmt: skip


def test_output_under_a_file_or_in_a_folder_not_writable(
    files, network_path, tmp_path, capsys, monkeypatch
):
    under_file = str(files["content"] / "x.jpg")
    fails_cleanly(
        argv(files, network_path, "--output", under_file), tmp_path, capsys, 2, under_file,
        "not a folder",
    )  # fmt: skip
    # Root may write anywhere, so the permission check is simulated.
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    fails_cleanly(argv(files, network_path), tmp_path, capsys, 2, str(files["out"]), "not writable")


# ---- must fail, exit 1: files that exist but cannot be used --------------------------------


def broken_images(folder: Path) -> dict[str, tuple[Path, str]]:
    """{kind: (file, what the message must say)}."""
    empty = folder / "empty.jpg"
    empty.write_bytes(b"")
    text = folder / "notes.jpg"
    text.write_text("not a picture\n")
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    cut = {}
    for name in ("cut.jpg", "cut.png"):
        Image.fromarray(noise).save(folder / name)
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
        cut[name] = folder / name
    bomb = folder / "bomb.png"
    bomb.write_bytes(png_bytes(50000, 50000, data=zlib.compress(b"\x00" * 16)))
    return {
        "empty": (empty, "empty"),
        "text": (text, "not an image"),
        "cut-jpg": (cut["cut.jpg"], "truncated"),
        "cut-png": (cut["cut.png"], "truncated"),
        "bomb": (bomb, "50000x50000"),
    }


@pytest.mark.parametrize("kind", ["empty", "text", "cut-jpg", "cut-png", "bomb"])
@pytest.mark.parametrize("option", ["--content", "--styles", "--initial"])
def test_unusable_image(files, network_path, tmp_path, capsys, monkeypatch, kind, option):
    path, what = broken_images(tmp_path / "in")[kind]
    loaded = []
    monkeypatch.setattr(neural_style.network, "load_network", lambda *a, **k: loaded.append(1))
    fails_cleanly(
        argv(files, network_path, option, str(path)), tmp_path, capsys, 1, str(path), what
    )
    assert not loaded  # found before the network is loaded


def test_output_too_small(files, network_path, tmp_path, capsys):
    fails_cleanly(argv(files, network_path, "--width", "1"), tmp_path, capsys, 1, "1x1", "2")


def test_too_big_for_the_memory(files, network_path, tmp_path, capsys, monkeypatch):
    error = fails_cleanly(
        argv(files, network_path, "--width", "100000"), tmp_path, capsys, 1, "100000x75000",
        "memory", "--width",
    )  # fmt: skip
    # A machine with 2 GB free: the suggested width is the largest the estimate lets through.
    monkeypatch.setattr(memory, "available", lambda on_gpu: 2 * 2**30)
    error = fails_cleanly(
        argv(files, network_path, "--width", "4000", "--styles", str(files["style"]),
             str(files["style2"]), "--style-scales", "1", "2"),
        tmp_path, capsys, 1, "4000x3000", "2.0 GB is available", "--width",
    )  # fmt: skip
    width = int(error.split("--width ")[1].split()[0])
    assert 100 < width < 4000

    def needed(w: int) -> int:  # the least of whole and in the smallest tiles
        output = images.fit_width(Size(24, 32), w)
        styles = inputs.style_sizes([Size(20, 20), Size(10, 12)], (1, 2), w)
        precision = hardware.resolve_precision("auto")[0]
        tiled = memory.tiled_needed(
            output, styles, memory.tile_window(memory.MIN_TILE), precision, False, False
        )
        return min(memory.needed(output, styles), tiled)

    assert needed(width) <= 2 * 2**30 < needed(width + 1)
    assert "even computed in tiles of 32x32 pixels" in error
    # The budget is --max-memory when given.
    fails_cleanly(
        argv(files, network_path, "--width", "4000", "--max-memory", "1.5GB"), tmp_path, capsys,
        1, "1.5 GB is allowed by --max-memory",
    )  # fmt: skip
    # Styles scaled up far: the message says so.
    fails_cleanly(
        argv(files, network_path, "--style-scales", "300"), tmp_path, capsys, 1,
        "32x24 output with styles resized to 9600x9600", "--width",
    )  # fmt: skip
    # The bound is on what is left: the process's own memory counts as available.
    monkeypatch.setattr(memory, "available", lambda on_gpu: 10 * 2**20)
    fails_cleanly(argv(files, network_path), tmp_path, capsys, 1, "32x24", "does not fit")
    # Small output, but a large file to read (header only: it is never decoded).
    monkeypatch.setattr(memory, "available", lambda on_gpu: 2 * 2**30)
    large = tmp_path / "in" / "large.png"
    large.write_bytes(png_bytes(8000, 6000, data=zlib.compress(b"\x00" * 16)))
    fails_cleanly(
        argv(files, network_path, "--styles", str(large), "--style-scales", "0.1"), tmp_path,
        capsys, 1, "8000x6000", "shrink that file",
    )  # fmt: skip
    assert neural_style.main(argv(files, network_path, "--no-memory-check")) == 0


def test_a_budget_that_fits_in_tiles_reads_small_inputs(files, network_path):
    # 1 GB is too little for the whole image (Python and TensorFlow alone count for 1.2 GB
    # there) but enough in tiles; reading the tiny inputs is not refused.
    output = images.fit_width(Size(24, 32), 32)
    assert memory.needed(output, [Size(20, 20)]) > 2**30 > memory.reading(Size(24, 32))
    assert neural_style.main(argv(files, network_path, "--max-memory", "1GB", "--quiet")) == 0


def test_a_tile_larger_than_the_image_counts_the_image(files, network_path):
    # One window holds the whole 32x24 output: the run is not tiled, nor estimated as 2048².
    argv_ = argv(files, network_path, "--tile-size", "2048", "--max-memory", "4GB", "--quiet")
    assert neural_style.main(argv_) == 0


def test_a_read_only_progress_log(files, network_path, tmp_path, capsys, monkeypatch):
    log = tmp_path / "log.jsonl"
    log.write_text("")
    access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: str(p) != str(log) and access(p, mode))
    fails_cleanly(
        argv(files, network_path, "--progress-log", str(log)), tmp_path, capsys, 2,
        "--progress-log", "not writable",
    )  # fmt: skip


@pytest.mark.parametrize(("output", "width"), [("out.webp", "16384"), ("out.png", "3000000000")])
def test_an_output_larger_than_its_format_holds(
    files, network_path, tmp_path, capsys, output, width
):
    files["out"] = tmp_path / "out" / output
    fails_cleanly(
        argv(files, network_path, "--width", width, "--no-memory-check"), tmp_path, capsys, 1,
        "--output", "a side that such a file holds",
    )  # fmt: skip


def test_available_memory_is_plausible():
    available = memory.available(on_gpu=False)
    assert available is None or 2**20 < available < 2**50


def bad_networks(folder: Path) -> dict[str, tuple[Path, str]]:
    """{kind: (file, what the message must say)}."""
    text = folder / "text.mat"
    text.write_text("hello")
    cut = folder / "cut.mat"
    write_vgg_mat(str(cut))
    cut.write_bytes(cut.read_bytes()[:5000])
    other = folder / "other.mat"
    scipy.io.savemat(str(other), {"x": np.eye(3)})
    lacking = folder / "lacking.mat"
    write_vgg_mat(str(lacking), drop=("conv4_2",))
    mismatched = folder / "mismatched.mat"
    write_vgg_mat(str(mismatched))
    data = scipy.io.loadmat(str(mismatched))
    assert data["layers"][0, 5][0, 0]["name"][0] == "conv2_1"
    data["layers"][0, 5][0, 0]["weights"][0, 0] = np.zeros((3, 3, 5, 6), np.float32)
    scipy.io.savemat(str(mismatched), {k: v for k, v in data.items() if not k.startswith("__")})
    even = folder / "even.mat"
    write_vgg_mat(str(even))
    data = scipy.io.loadmat(str(even))
    assert data["layers"][0, 2][0, 0]["name"][0] == "conv1_2"
    cell = data["layers"][0, 2][0, 0]["weights"]
    cell[0, 0] = np.zeros((2, 2, *cell[0, 0].shape[2:]), np.float32)
    scipy.io.savemat(str(even), {k: v for k, v in data.items() if not k.startswith("__")})
    return {
        "text": (text, "not a readable MATLAB .mat file"),
        "truncated": (cut, "not a readable MATLAB .mat file"),
        "not-matconvnet": (other, "no 'layers'"),
        "lacking-layer": (lacking, "lacks layer 'conv4_2'"),
        "mismatched": (mismatched, "layer 'conv2_1' takes 5 channels but conv1_2 gives 4"),
        "even-kernel": (even, "layer 'conv1_2' has an even-sized 2x2 kernel"),
    }


@pytest.mark.parametrize("cache", [[], ["--no-cache"]])
@pytest.mark.parametrize(
    "kind", ["text", "truncated", "not-matconvnet", "lacking-layer", "mismatched", "even-kernel"]
)
def test_unusable_network(files, tmp_path, capsys, monkeypatch, kind, cache):
    path, what = bad_networks(tmp_path / "in")[kind]
    steps = []
    monkeypatch.setattr(stylize.Objective, "adam_step", lambda *a: steps.append(1))
    fails_cleanly(argv(files, path, *cache), tmp_path, capsys, 1, path.name, what)
    assert not steps  # found before the optimisation


def test_loss_becomes_nan(files, network_path, tmp_path, capsys):
    # Huge steps (projected to the pixel range) make neighbours differ by up to 255: a tv
    # loss finite at the start (noise) overflows float32 after the first step.
    args = argv(
        files, network_path, "--learning-rate", "1e30", "--tv-weight", "1e37",
        "--iterations", "3", "--precision", "float32",
    )  # fmt: skip
    assert neural_style.main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert [line for line in err.splitlines() if line.startswith("error:")] == [last]
    assert "NaN or infinite at iteration 2" in last and str(files["out"]) in last
    with Image.open(files["out"]) as written:  # the best image so far, the starting one
        assert written.mode == "RGB" and written.size == (32, 24)
    assert os.listdir(files["out"].parent) == [files["out"].name]


def test_loss_nan_from_the_start(files, network_path, tmp_path, capsys):
    args = argv(files, network_path, "--content-weight", "1e38", "--style-weight", "1e38")
    fails_cleanly(args, tmp_path, capsys, 1, "iteration 1", "no image written")


@pytest.mark.parametrize(
    ("scales", "fails_at", "width", "done"),
    [("1", (1, 2), 32, 2), ("2", (2, 0), 128, 2)],  # (size, step): mid-size; a size's first
)
@pytest.mark.parametrize("python", [False, True])  # numpy's arrays, as a tiled run's
def test_out_of_memory_keeps_the_best_image(
    files, network_path, tmp_path, capsys, monkeypatch, scales, fails_at, width, done, python
):
    """TensorFlow or Python failing to allocate mid-run: one error line, exit 1, the best
    image kept."""
    import tensorflow as tf

    real_init, real_step, at = stylize.Adam.__init__, stylize.Adam.step, [0, 0]  # size, step

    def init(self, *args):
        at[:] = [at[0] + 1, 0]
        real_init(self, *args)

    def failing(self):
        if tuple(at) == fails_at and python:
            raise MemoryError("Unable to allocate 191. MiB")
        if tuple(at) == fails_at:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
        at[1] += 1
        return real_step(self)

    monkeypatch.setattr(stylize.Adam, "__init__", init)
    monkeypatch.setattr(stylize.Adam, "step", failing)
    args = argv(files, network_path, "--iterations", "4", "--scales", scales)
    assert neural_style.main([*args, "--width", str(width)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "OOM when" not in err
    last = err.splitlines()[-1]
    assert [line for line in err.splitlines() if line.startswith("error:")] == [last]
    assert f"out of memory after {done} iterations" in last and str(files["out"]) in last
    with Image.open(files["out"]) as written:
        assert written.size == (width, width * 3 // 4)
    assert os.listdir(files["out"].parent) == [files["out"].name]


def test_out_of_memory_even_for_the_best_image(files, network_path, capsys, monkeypatch):
    def failing(*args):
        raise MemoryError

    monkeypatch.setattr(stylize.Adam, "step", failing)
    monkeypatch.setattr(stylize._Run, "picture", failing)
    assert neural_style.main(argv(files, network_path, "--iterations", "2")) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: out of memory after 0 iterations") and err.count("\n") == 1
    assert "(no image written: no memory was left to make it)" in err
    assert not files["out"].exists()


def test_out_of_memory_before_the_first_iteration_is_one_line(
    files, network_path, capsys, monkeypatch
):
    import tensorflow as tf

    def failing(*args):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")

    monkeypatch.setattr(stylize.vgg, "constants", failing)
    assert neural_style.main(argv(files, network_path, "--iterations", "2")) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("error: out of memory before the first iteration") and err.count("\n") == 1
    )
    assert not files["out"].exists()


def test_subprocess_stderr_is_one_line(files, tmp_path):
    """The real process: TensorFlow's start-up says nothing; just the error line and status 1."""
    path, _ = bad_networks(tmp_path / "in")["lacking-layer"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "neural_style.py"), *argv(files, path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert str(path) in done.stderr and "conv4_2" in done.stderr
    assert not files["out"].parent.exists()


# ---- must work --------------------------------------------------------------------------------


def two_tone(folder: Path, mode: str) -> tuple[Path, list, list, float]:
    """A 16x12 file, left half one colour and right half another; their RGB; a tolerance."""
    path = folder / f"{mode.replace(';', '')}.png"
    left, right, tolerance = None, None, 1.0
    if mode in ("L", "LA", "RGBA", "I;16"):
        values = {
            "L": (50, 200, [50] * 3, [200] * 3),
            "LA": ((100, 0), (100, 255), [255] * 3, [100] * 3),
            "RGBA": ((0, 0, 200, 0), (0, 0, 200, 255), [255] * 3, [0, 0, 200]),
            "I;16": (0, 65535, [0] * 3, [255] * 3),
        }[mode]
        image = Image.new(mode, (16, 12), values[0])
        image.paste(values[1], (8, 0, 16, 12))
        image.save(path)
        left, right = values[2], values[3]
    elif mode == "P":
        image = Image.new("P", (16, 12), 0)
        image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
        image.paste(1, (8, 0, 16, 12))
        image.save(path, transparency=0)
        left, right = [255] * 3, [200, 100, 50]
    elif mode == "CMYK":
        path = folder / "cmyk.jpg"
        Image.new("CMYK", (16, 12), (0, 255, 255, 0)).save(path, quality=95)
        left, right, tolerance = [255, 0, 0], [255, 0, 0], 12
    elif mode == "RGB;16":
        rows = b"".join(
            b"\x00" + struct.pack(">3H", 65535, 0, 32896) * 8 + struct.pack(">3H", 0, 65535, 0) * 8
            for _ in range(12)
        )
        path.write_bytes(png_bytes(16, 12, bit_depth=16, colour_type=2, data=zlib.compress(rows)))
        left, right = [255, 0, 128], [0, 255, 0]
    return path, left, right, tolerance


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "RGB;16"])
def test_image_modes(files, network_path, mode):
    """The file as content, style and initial; a near-zero step leaves the initial as output."""
    path, left, right, tolerance = two_tone(files["content"].parent, mode)
    args = argv(
        files, network_path, "--content", str(path), "--styles", str(path), "--initial",
        str(path), "--learning-rate", "1e-6",
    )  # fmt: skip
    assert neural_style.main(args) == 0
    with Image.open(files["out"]) as written:
        assert written.mode == "RGB" and written.size == (16, 12)
        pixels = np.asarray(written, np.float32)
    np.testing.assert_allclose(pixels[6, 3], left, atol=tolerance)
    np.testing.assert_allclose(pixels[6, 12], right, atol=tolerance)


@pytest.mark.parametrize("orientation", [6, 8])
def test_phone_portrait(files, network_path, orientation):
    image = Image.new("RGB", (32, 24), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 8, 24))  # a white band on the stored left
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = files["content"].parent / "phone.jpg"
    image.save(path, exif=exif, quality=95)
    args = argv(
        files, network_path, "--content", str(path), "--initial", str(path),
        "--learning-rate", "1e-6",
    )  # fmt: skip
    assert neural_style.main(args) == 0
    with Image.open(files["out"]) as written:
        assert written.size == (24, 32)  # portrait, as displayed
        grey = np.asarray(written.convert("L"), np.float32)
    white, black = (2, 29) if orientation == 6 else (29, 2)  # 6: the band is on top
    assert grey[white, 12] > 200 and grey[black, 12] < 50


def test_styles_much_larger_and_smaller(files, network_path, monkeypatch):
    folder = files["content"].parent
    big = save(folder / "big.png", smooth_image(200, 300, 5))
    tiny = save(folder / "tiny.png", smooth_image(6, 8, 6))
    shapes = []
    real = stylize.stylize

    def spy(network, content, styles, *rest, **options):
        shapes.extend(style.shape for style in styles)
        return real(network, content, styles, *rest, **options)

    monkeypatch.setattr(stylize, "stylize", spy)
    args = argv(files, network_path, "--styles", str(big), str(tiny), "--style-scales", "1", "0.5")
    assert neural_style.main(args) == 0
    assert shapes == [(21, 32, 3), (12, 16, 3)]  # widths 1 and 0.5 x the output's 32


@pytest.mark.parametrize("size", [(16, 16), (2, 2)])
def test_tiny_content(files, network_path, size):
    content = save(files["content"].parent / "small.png", smooth_image(size[1], size[0], 7))
    assert neural_style.main(argv(files, network_path, "--content", str(content))) == 0
    with Image.open(files["out"]) as written:
        assert written.size == size and written.mode == "RGB"


def test_output_folder_is_created(files, network_path, tmp_path):
    out = tmp_path / "out" / "new" / "deeper" / "o.jpg"
    assert neural_style.main(argv(files, network_path, "--output", str(out))) == 0
    assert os.listdir(out.parent) == ["o.jpg"]
    with Image.open(out) as written:
        assert written.format == "JPEG" and written.size == (32, 24)


def test_a_name_too_long_for_the_files_beside_it(files, network_path, tmp_path, capsys):
    """The output's state's temporary is 20 bytes longer than its name; a batch job's
    unfinished image's temporary 26. Found before any work, not when the output is written."""
    if not hasattr(os, "pathconf"):
        pytest.skip("no pathconf (Windows): the names are 255 UTF-16 units at most")
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    fits, too_long = (tmp_path / ("a" * (limit - 20 - 4) + n + ".png") for n in ("", "b"))
    extra = ("--checkpoint-iterations", "1", "--state-interval", "1e-9")
    assert neural_style.main(argv(files, network_path, "--output", str(too_long))) == 2
    err = capsys.readouterr().err
    assert f"--output: {too_long}: the file name is too long ({limit - 19} long)" in err
    assert not (tmp_path / "out").exists() and not too_long.exists()
    assert neural_style.main(argv(files, network_path, "--output", str(fits), *extra[2:])) == 0
    assert fits.is_file()
    long_checkpoint = "c" * (limit - 14 - 5) + "%s.png"  # 1 digit fits, 2 do not
    checkpoints = ("--checkpoint-output", str(tmp_path / long_checkpoint), *extra[:2])
    assert neural_style.main(argv(files, network_path, *checkpoints, "--iterations", "10")) == 2
    assert "--checkpoint-output:" in capsys.readouterr().err
    manifest = tmp_path / "jobs.csv"
    row = f"{files['content']},{files['style']},{tmp_path / ('d' * (limit - 26 - 3) + '.png')}"
    manifest.write_text(f"content,styles,output\n{row}\n")
    assert neural_style.main(["--batch", str(manifest), "--network", str(network_path)]) == 1
    assert "the file name is too long" in capsys.readouterr().err


def test_without_pathconf_names_count_in_utf16_units(tmp_path, monkeypatch):
    """As on Windows (NTFS: 255 UTF-16 units a name), where a CJK character is one unit."""
    monkeypatch.delattr(os, "pathconf")
    images.check_output(str(tmp_path / ("風" * 237 + ".png")))  # 241 + 14 units
    with pytest.raises(ValueError, match=r"too long \(242 long\)"):
        images.check_output(str(tmp_path / ("風" * 238 + ".png")))
