"""Tests for images.py; every image is generated in tmp_path."""

import io
import itertools
import os
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile, PngImagePlugin

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


@pytest.mark.parametrize(
    ("name", "old", "new", "turned"),
    [  # a tag of the wrong type: the orientation is read, the EXIF cannot be written back
        ("tag.jpg", b"\x01\x0f\x00\x02", b"\x01\x06\x00\x02", True),
        ("header.webp", b"MM\x00*", b"M\xaa\x00*", False),  # no EXIF to read at all
    ],
)
def test_damaged_exif(tmp_path, name, old, new, turned):
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "camera"  # orientation, make
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 20))
    path = tmp_path / name
    path.write_bytes(
        Path(save(tmp_path, "x" + name, image, exif=exif)).read_bytes().replace(old, new)
    )
    size = Size(40, 20) if turned else Size(20, 40)
    assert images.image_size(str(path)) == size
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        array = images.read_image(str(path))
    check_rgb(array, *size)
    assert array[(5, 10) if turned else (10, 5)][0] > 200  # white: the top, or the left
    assert [str(w.message) for w in caught] == (
        [] if turned else [f"{path}: its EXIF data is damaged; taken as upright"]
    )


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


def test_an_image_pillow_refuses_is_named(tmp_path):
    # Pillow refuses a PNG whose compressed text holds more than 1 MB, with a ValueError.
    info = PngImagePlugin.PngInfo()
    info.add_text("notes", "x" * (2 << 20), zip=True)
    path = str(tmp_path / "notes.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path, pnginfo=info)
    for function in (images.image_size, images.read_image):
        with pytest.raises(ValueError, match=f"^{path}: cannot read it \\(.*TEXT_CHUNK"):
            function(path)


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


# ICC profiles, written by hand (ImageCms can only create sRGB, LAB and XYZ ones).

D50 = np.array([0.9642, 1.0, 0.8249])
BRADFORD = np.array(
    [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]]
)
D65_WHITE = (0.3127, 0.3290)
SRGB_PRIMARIES = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))
P3_PRIMARIES = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))


def rgb_to_xyz(primaries, white=D65_WHITE):
    """The linear RGB to XYZ matrix of an RGB space, from xy chromaticities."""
    xyz = np.array([[x / y, 1, (1 - x - y) / y] for x, y in (*primaries, white)]).T
    return xyz[:, :3] * np.linalg.solve(xyz[:, :3], xyz[:, 3])


def to_d50(matrix):
    """matrix (to XYZ under its own white) adapted to D50 with Bradford, as ICC wants."""
    cone_white = BRADFORD @ matrix.sum(axis=1)
    return np.linalg.inv(BRADFORD) @ np.diag(BRADFORD @ D50 / cone_white) @ BRADFORD @ matrix


def decode(values):
    """sRGB (and Display P3) 0-255 values to linear light."""
    v = np.asarray(values, np.float64) / 255
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def encode(linear):
    """Linear light to sRGB 0-255 values."""
    v = np.clip(linear, 0, 1)
    return 255 * np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


def s15(*values):
    """ICC s15Fixed16Number values."""
    return b"".join(struct.pack(">i", round(v * 65536)) for v in values)


def icc_profile(space, tags, device_class=b"mntr"):
    """An ICC v4 profile of colour space space (b"RGB ", b"GRAY", b"CMYK") with PCS XYZ."""
    text = "test profile".encode("utf-16-be")
    description = b"mluc" + bytes(4) + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(text), 28)
    tags = {b"desc": description + text, b"wtpt": b"XYZ " + bytes(4) + s15(*D50), **tags}
    start = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags.items():
        table += signature + struct.pack(">II", start + len(data), len(body))
        data += body + bytes(-len(body) % 4)
    size = start + len(data)
    header = struct.pack(">I4sI4s4s4s", size, b"none", 0x04200000, device_class, space, b"XYZ ")
    header += bytes(12) + b"acsp" + bytes(28) + s15(*D50) + bytes(48)
    return header + struct.pack(">I", len(tags)) + table + data


def p3_profile():
    """A Display P3 profile: P3 primaries, D65 white, the sRGB curve."""
    colorants = to_d50(rgb_to_xyz(P3_PRIMARIES))
    curve = b"para" + bytes(4) + struct.pack(">HH", 3, 0)
    curve += s15(2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)
    tags = {
        tag: b"XYZ " + bytes(4) + s15(*column)
        for tag, column in zip((b"rXYZ", b"gXYZ", b"bXYZ"), colorants.T, strict=True)
    }
    return icc_profile(b"RGB ", {**tags, b"rTRC": curve, b"gTRC": curve, b"bTRC": curve})


def linear_grey_profile():
    """A greyscale profile with a linear curve (gamma 1)."""
    return icc_profile(
        b"GRAY", {b"kTRC": b"curv" + bytes(4) + struct.pack(">IH", 1, 256) + bytes(2)}
    )


def cmyk_profile():
    """A CMYK input profile whose inks mix in linear light: a 2-point lut16 to XYZ."""
    corners = np.array(list(itertools.product((0, 1), repeat=4)), np.float64)  # C slowest
    linear = (1 - corners[:, :3]) * (1 - corners[:, 3:])
    xyz = linear @ to_d50(rgb_to_xyz(SRGB_PRIMARIES)).T
    ramp = struct.pack(">HH", 0, 65535)
    lut = b"mft2" + bytes(4) + struct.pack(">BBBB", 4, 3, 2, 0) + s15(1, 0, 0, 0, 1, 0, 0, 0, 1)
    lut += struct.pack(">HH", 2, 2) + ramp * 4
    lut += struct.pack(f">{xyz.size}H", *np.round(xyz.ravel() * 32768).astype(int)) + ramp * 3
    return icc_profile(b"CMYK", {b"A2B0": lut}, device_class=b"prtr")


def srgb_icc():
    """Pillow's own sRGB profile as bytes."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def blocks(colours, mode="RGB"):
    """An image of 8×8 blocks of flat colour side by side (so JPEG keeps them nearly exact)."""
    image = Image.new(mode, (8 * len(colours), 8))
    for index, colour in enumerate(colours):
        image.paste(colour, (8 * index, 0, 8 * index + 8, 8))
    return image


P3_COLOURS = [(200, 120, 80), (90, 150, 200), (128, 128, 128), (255, 255, 255), (120, 200, 130)]
LOSSLESS = {"quality": 100, "subsampling": 0, "lossless": True}


@pytest.mark.parametrize("name", ["p3.png", "p3.jpg", "p3.tif", "p3.webp"])
def test_display_p3_converted_to_srgb(tmp_path, name):
    path = save(tmp_path, name, blocks(P3_COLOURS), icc_profile=p3_profile(), **LOSSLESS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        array = images.read_image(path)
    check_rgb(array, 8, 40)
    p3_to_srgb = np.linalg.solve(rgb_to_xyz(SRGB_PRIMARIES), rgb_to_xyz(P3_PRIMARIES))
    linear = decode(P3_COLOURS) @ p3_to_srgb.T
    assert linear.min() > 0.05 and linear.max() < 1 + 1e-9  # inside sRGB, and P3 too
    expected = encode(linear)  # (200, 120, 80) in P3 is about (213, 115, 70) in sRGB
    np.testing.assert_allclose(array[4, 4::8], expected, atol=2)
    untagged = images.read_image(
        save(tmp_path, "untagged" + name[2:], blocks(P3_COLOURS), **LOSSLESS)
    )
    assert np.abs(untagged[4, 4::8] - expected).max() > 10  # the profile made the difference


def test_display_p3_with_alpha(tmp_path):
    image = blocks([(200, 120, 80, 255), (200, 120, 80, 0), (200, 120, 80, 128)], "RGBA")
    array = images.read_image(save(tmp_path, "p3a.png", image, icc_profile=p3_profile()))
    np.testing.assert_allclose(array[4, 4], [213, 115, 70.4], atol=1)
    np.testing.assert_allclose(array[4, 12], [255, 255, 255])
    np.testing.assert_allclose(array[4, 20], [234, 185, 162.5], atol=1.5)


def test_grey_profiles(tmp_path):
    grey = encode(128 / 255)  # linear 128 shown in sRGB: about 188
    icc = linear_grey_profile()
    array = images.read_image(
        save(tmp_path, "grey.png", Image.new("L", (2, 2), 128), icc_profile=icc)
    )
    np.testing.assert_allclose(array, grey, atol=1)
    la = blocks([(128, 255), (128, 0)], "LA")
    array = images.read_image(save(tmp_path, "la.png", la, icc_profile=icc))
    np.testing.assert_allclose(array[4, 4], [grey] * 3, atol=1)
    assert list(array[4, 12]) == [255, 255, 255]
    sixteen = Image.fromarray(np.full((2, 2), 128 * 257, np.uint16))
    array = images.read_image(save(tmp_path, "grey16.png", sixteen, icc_profile=icc))
    np.testing.assert_allclose(array, grey, atol=1)


def test_cmyk_jpeg_with_profile(tmp_path):
    image = blocks([(0, 0, 128, 0), (0, 255, 255, 0), (0, 0, 0, 0)], "CMYK")
    path = save(tmp_path, "cmyk.jpg", image, icc_profile=cmyk_profile(), quality=100)
    array = images.read_image(path)
    # The profile mixes inks in linear light: half yellow is light, not (255, 255, 127).
    np.testing.assert_allclose(
        array[4, 4::8], [[255, 255, encode(127 / 255)], [255, 0, 0], [255] * 3], atol=3
    )


def test_srgb_tagged_and_untagged_unchanged(tmp_path):
    pixels = np.random.default_rng(4).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name, options in (("srgb.png", {"icc_profile": srgb_icc()}), ("plain.png", {})):
            array = images.read_image(save(tmp_path, name, Image.fromarray(pixels), **options))
            np.testing.assert_array_equal(array, pixels)


@pytest.mark.parametrize(
    "icc, image",
    [
        (b"not an ICC profile", Image.new("RGB", (3, 2), (200, 120, 80))),
        (p3_profile()[:200], Image.new("RGB", (3, 2), (200, 120, 80))),
        (linear_grey_profile(), Image.new("RGB", (3, 2), (200, 120, 80))),
        (p3_profile(), Image.new("L", (3, 2), 77)),
    ],
    ids=["garbage", "truncated", "grey-on-rgb", "rgb-on-grey"],
)
def test_unusable_profile_warns_and_keeps_pixels(tmp_path, icc, image):
    path = save(tmp_path, "damaged.png", image, icc_profile=icc)
    with pytest.warns(UserWarning) as caught:
        array = images.read_image(path)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith(path) and "ICC profile" in message and "\n" not in message
    np.testing.assert_array_equal(array, np.asarray(image.convert("RGB"), np.float32))


@pytest.mark.parametrize("extension", [".png", ".tif", ".jpg", ".webp"])
def test_written_files_are_tagged_srgb(tmp_path, extension):
    image = np.random.default_rng(5).integers(0, 256, (8, 8, 3)).astype(np.float32)
    path = str(tmp_path / f"out{extension}")
    images.write_image(path, image)
    with Image.open(path) as written:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(written.info["icc_profile"]))
    assert profile.profile.xcolor_space == "RGB " and "sRGB" in profile.profile.profile_description
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        array = images.read_image(path)
    if extension in (".png", ".tif"):
        np.testing.assert_array_equal(array, image)
    else:
        np.testing.assert_allclose(array.mean(axis=(0, 1)), image.mean(axis=(0, 1)), atol=3)


def test_bmp_written_untagged(tmp_path):
    path = str(tmp_path / "out.bmp")
    images.write_image(path, np.zeros((2, 2, 3), np.float32))
    with Image.open(path) as written:
        assert "icc_profile" not in written.info


def test_imagecms_only_loaded_for_profiles(tmp_path):
    path = save(tmp_path, "plain.jpg", Image.new("RGB", (4, 4)))
    code = (
        "import sys, images\n"
        f"images.image_size({path!r}); images.read_image({path!r})\n"
        "assert 'PIL.ImageCms' not in sys.modules, 'ImageCms loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(images.__file__))


def test_written_profile_is_the_same_on_every_run(tmp_path):
    """No creation time in the embedded profile: a run repeated later writes the same bytes."""
    icc = images._srgb_icc()
    assert icc[24:36] == bytes(12) and icc[84:100] == bytes(16)
    path = tmp_path / "a.png"
    images.write_image(str(path), np.full((2, 2, 3), 7, np.float32))
    with Image.open(path) as image:
        assert image.info["icc_profile"] == icc
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        assert "sRGB" in ImageCms.getProfileDescription(profile)
