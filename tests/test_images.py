"""Tests for images.py; every image is generated in tmp_path."""

import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

import images
from images import Size


def save(tmp_path, name, image, **options):
    """Save a Pillow image under tmp_path and return its path as a string."""
    path = str(tmp_path / name)
    image.save(path, **options)
    return path


def check_rgb(array, height, width):
    """Assert array is a float32 H×W×3 image of the given size."""
    assert array.dtype == np.float32
    assert array.shape == (height, width, 3)


def test_supported_extensions_are_writable(tmp_path):
    assert images.SUPPORTED_EXTENSIONS
    for extension in images.SUPPORTED_EXTENSIONS:
        path = str(tmp_path / f"out{extension}")
        images.write_image(path, np.full((4, 5, 3), 128, np.float32))
        assert images.image_size(path) == Size(height=4, width=5)


def test_rgb_png_exact(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    array = images.read_image(save(tmp_path, "rgb.png", Image.fromarray(pixels)))
    check_rgb(array, 6, 7)
    np.testing.assert_array_equal(array, pixels)


def test_grey_and_one_bit(tmp_path):
    array = images.read_image(save(tmp_path, "grey.png", Image.new("L", (3, 2), 77)))
    check_rgb(array, 2, 3)
    assert np.all(array == 77)
    one_bit = Image.new("1", (4, 2), 0)
    one_bit.putpixel((1, 0), 1)
    array = images.read_image(save(tmp_path, "one.png", one_bit))
    check_rgb(array, 2, 4)
    assert list(array[0, 1]) == [255, 255, 255]
    assert list(array[0, 0]) == [0, 0, 0]


def test_alpha_composited_on_white(tmp_path):
    la = Image.new("LA", (2, 1), (100, 0))
    la.putpixel((1, 0), (100, 255))
    array = images.read_image(save(tmp_path, "la.png", la))
    check_rgb(array, 1, 2)
    assert list(array[0, 0]) == [255, 255, 255]
    assert list(array[0, 1]) == [100, 100, 100]
    rgba = Image.new("RGBA", (1, 1), (0, 0, 200, 128))
    array = images.read_image(save(tmp_path, "rgba.png", rgba))
    np.testing.assert_allclose(array[0, 0], [127, 127, 227.4], atol=0.6)


def test_palette_with_and_without_transparency(tmp_path):
    palette = Image.new("P", (2, 1), 0)
    palette.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    palette.putpixel((1, 0), 1)
    array = images.read_image(save(tmp_path, "p.png", palette))
    check_rgb(array, 1, 2)
    assert list(array[0, 0]) == [10, 20, 30]
    assert list(array[0, 1]) == [200, 100, 50]
    array = images.read_image(save(tmp_path, "pt.png", palette, transparency=0))
    assert list(array[0, 0]) == [255, 255, 255]
    assert list(array[0, 1]) == [200, 100, 50]
    array = images.read_image(save(tmp_path, "pt.gif", palette, transparency=0))
    assert list(array[0, 0]) == [255, 255, 255]


def test_sixteen_bit_grey(tmp_path):
    values = np.array([[0, 32896, 65535]], dtype=np.uint16)
    path = save(tmp_path, "grey16.png", Image.fromarray(values))
    with Image.open(path) as opened:
        assert opened.mode.startswith("I")
    array = images.read_image(path)
    check_rgb(array, 1, 3)
    np.testing.assert_allclose(array[0, :, 0], [0, 128, 255], atol=0.5)
    assert np.all(array[:, :, 0] == array[:, :, 2])


def test_mode_i_and_float(tmp_path):
    mode_i = Image.fromarray(np.array([[65535, 257]], dtype=np.int32))
    array = images.read_image(save(tmp_path, "i.tif", mode_i))
    np.testing.assert_allclose(array[0, :, 1], [255, 1], atol=1e-4)
    mode_f = Image.fromarray(np.array([[12.5, 300.0]], dtype=np.float32))
    array = images.read_image(save(tmp_path, "f.tif", mode_f))
    check_rgb(array, 1, 2)
    np.testing.assert_allclose(array[0, :, 2], [12.5, 255])


def test_forty_eight_bit_rgb_png(tmp_path):
    # Hand-made 16-bit-per-channel RGB PNG: Pillow reads it as 8-bit RGB.
    row = b"\x00" + struct.pack(">3H", 65535, 0, 32896)
    path = tmp_path / "rgb48.png"
    path.write_bytes(png_bytes(1, 1, bit_depth=16, colour_type=2, data=zlib.compress(row)))
    array = images.read_image(str(path))
    check_rgb(array, 1, 1)
    np.testing.assert_allclose(array[0, 0], [255, 0, 128], atol=1)


def test_cmyk_jpeg(tmp_path):
    path = save(tmp_path, "cmyk.jpg", Image.new("CMYK", (8, 8), (0, 255, 255, 0)), quality=95)
    array = images.read_image(path)
    check_rgb(array, 8, 8)
    np.testing.assert_allclose(array[4, 4], [255, 0, 0], atol=10)


@pytest.mark.parametrize("name", ["phone.jpg", "phone.png", "phone.webp", "phone.tif"])
def test_exif_orientation(tmp_path, name):
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 20))  # white left quarter
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = save(tmp_path, name, image, exif=exif, quality=95)
    assert images.image_size(path) == Size(height=40, width=20)
    array = images.read_image(path)
    check_rgb(array, 40, 20)
    assert array[5, 10, 0] > 200  # the white band is now at the top
    assert array[35, 10, 0] < 50


def test_sixteen_bit_grey_rotated(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 8
    path = save(tmp_path, "g.png", Image.fromarray(np.full((2, 3), 65535, np.uint16)), exif=exif)
    assert images.image_size(path) == Size(height=3, width=2)
    array = images.read_image(path)
    check_rgb(array, 3, 2)
    assert np.all(array == 255)


def test_image_size_plain(tmp_path):
    assert images.image_size(save(tmp_path, "a.png", Image.new("RGB", (9, 4)))) == Size(
        height=4, width=9
    )


def test_unreadable_inputs(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture\n")
    folder = tmp_path / "folder.png"
    folder.mkdir()
    for path in (str(empty), str(text), str(folder), str(tmp_path / "missing.png")):
        for function in (images.image_size, images.read_image):
            with pytest.raises(ValueError, match="^" + path) as caught:
                function(path)
            assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["cut.jpg", "cut.png"])
def test_truncated(tmp_path, name):
    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    path = save(tmp_path, name, Image.fromarray(noise))
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated") as caught:
        images.read_image(path)
    assert path in str(caught.value)


def png_bytes(width, height, bit_depth=8, colour_type=2, data=b""):
    """Build a PNG file from a hand-made IHDR, one IDAT holding data, and IEND."""

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def test_huge_header_rejected_without_decoding(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_bytes(50000, 50000, data=zlib.compress(b"\x00" * 16)))
    for function in (images.image_size, images.read_image):
        with pytest.raises(ValueError, match="50000x50000") as caught:
            function(str(path))
        message = str(caught.value)
        assert message.startswith(str(path)) and str(images.MAX_PIXELS) in message


def test_resize():
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 255, (10, 20, 3)).astype(np.float32)
    smaller = images.resize(image, 5, 8)
    assert smaller.dtype == np.float32 and smaller.shape == (5, 8, 3)
    constant = np.full((10, 20, 3), 123.25, np.float32)
    np.testing.assert_allclose(images.resize(constant, 17, 31), 123.25, atol=1e-3)
    same = images.resize(image, 10, 20)
    np.testing.assert_array_equal(same, image)
    assert same is not image


def test_png_round_trip(tmp_path):
    image = np.random.default_rng(3).integers(0, 256, (7, 9, 3)).astype(np.float32)
    path = str(tmp_path / "out.png")
    images.write_image(path, image + 0.3)  # rounds back to the integers
    np.testing.assert_array_equal(images.read_image(path), image)


def test_write_clips(tmp_path):
    path = str(tmp_path / "clip.png")
    images.write_image(path, np.array([[[-20, 300, 12.6]]], np.float32))
    assert list(images.read_image(path)[0, 0]) == [0, 255, 13]


def test_jpeg_quality(tmp_path):
    ramp = np.linspace(0, 255, 64, dtype=np.float32)
    image = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], 128.0), axis=2)
    path = str(tmp_path / "out.jpg")
    images.write_image(path, image)
    assert np.abs(images.read_image(path) - image).mean() < 2
    with Image.open(path) as written:
        assert written.format == "JPEG"
        assert written.quantization[0][0] <= 3  # quality 95 tables; quality 75 gives 8


def test_check_output_accepts(tmp_path):
    images.check_output(str(tmp_path / "out.jpg"))
    images.check_output(str(tmp_path / "new" / "deeper" / "out.PNG"))


def test_check_output_rejects(tmp_path):
    folder = tmp_path / "existing.png"
    folder.mkdir()
    plain_file = tmp_path / "file.txt"
    plain_file.write_text("x")
    for path in ("out", "out.xyz", str(folder), str(plain_file / "out.jpg")):
        with pytest.raises(ValueError) as caught:
            images.check_output(path)
        assert str(caught.value).startswith(path)
    with pytest.raises(ValueError, match=r"\.jpg .*\.webp"):
        images.check_output("out.xyz")
    with pytest.raises(ValueError, match="not a folder"):
        images.check_output(str(plain_file / "out.jpg"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to any folder")
def test_check_output_unwritable(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="not writable"):
            images.check_output(str(locked / "sub" / "out.jpg"))
    finally:
        locked.chmod(0o700)


def test_check_output_unwritable_simulated(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(ValueError, match=f"folder {tmp_path} is not writable"):
        images.check_output(str(tmp_path / "sub" / "out.jpg"))


def test_atomic_output_success_and_failure(tmp_path):
    path = tmp_path / "result.png"
    with images.atomic_output(str(path)) as temporary:
        assert os.path.dirname(temporary) == str(tmp_path)
        assert temporary.endswith(".png") and os.path.basename(temporary).startswith(".")
        Image.new("RGB", (2, 2)).save(temporary)
    assert os.listdir(tmp_path) == ["result.png"]

    failing = tmp_path / "failing.jpg"
    with pytest.raises(RuntimeError):
        with images.atomic_output(str(failing)) as temporary:
            Image.new("RGB", (2, 2)).save(temporary)
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == ["result.png"]


def test_failed_write_leaves_old_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.png"
    images.write_image(str(path), np.zeros((2, 2, 3), np.float32))

    def disk_full(image, target, **options):
        with open(target, "wb") as handle:
            handle.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(ValueError, match="No space left") as caught:
        images.write_image(str(path), np.full((2, 2, 3), 255, np.float32))
    assert str(caught.value).startswith(str(path))
    assert os.listdir(tmp_path) == ["keep.png"]
    monkeypatch.undo()
    assert images.read_image(str(path)).max() == 0


def test_write_creates_folders(tmp_path):
    path = tmp_path / "a" / "b" / "out.bmp"
    images.write_image(str(path), np.zeros((3, 4, 3), np.float32))
    assert images.image_size(str(path)) == Size(height=3, width=4)
