"""Iterations tile by tile against the whole image, on the tiny generated network."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import tensorflow as tf
from conftest import Terminal, run_stylize, smooth_image, tmp_cli_args

import memory
import neural_style
import progress
import settings as options
import stylize
import tiles
from images import Size
from settings import Settings

# The receptive field of relu5_1 in VGG-19 spans 156 pixels: a halo of 80 covers its half,
# so every core's features, and their gradients, are those of the whole image.
EXACT_HALO = 80


def problem(network, size: Size, pooling: str = "max", seed: int = 0):
    """An Objective, its network, targets at size and a noisy image, all float32."""
    content_layers, style_layers = options.layer_weights(Settings())
    objective = stylize.Objective(content_layers, style_layers, pooling)
    net = stylize.vgg.constants(network)
    rng = np.random.default_rng(seed)
    content = smooth_image(*size, seed + 1)
    style = smooth_image(size.height + 8, size.width - 8, seed + 2)

    def feats(image, layers):
        x = tf.constant(vgg_in(network, image))
        return stylize.vgg.extract(net, x, tuple(layers), pooling)

    style_feats = feats(style, style_layers)
    targets = stylize.Targets(
        content=feats(content, content_layers),
        styles=({n: stylize.gram(style_feats[n]) for n in style_layers},),
        blend=tf.constant([1.0]),
        content_weight=tf.constant(5.0),
        style_weight=tf.constant(100.0),
        tv_weight=tf.constant(100.0),
        temporal=None,
        pixel_min=tf.constant(-1e9),
        pixel_max=tf.constant(1e9),
    )
    image = tf.constant(rng.standard_normal((1, *size, 3)).astype(np.float32) * 30)
    return objective, net, targets, image


def vgg_in(network, image):
    return stylize.vgg.preprocess(image, network.mean_pixel)[None]


def tiled(objective, net, targets, size, tile, halo, seed=0):
    """A TiledObjective of windows at most tile + 2 halo pixels wide and high."""
    grid = tiles.plan(size, max_side=tile + 2 * halo, halo=halo)
    rng = functools.partial(np.random.default_rng, seed)  # the same edges at each evaluation
    return tiles.TiledObjective(objective, net, targets, grid, rng)


def assert_exact(terms, gradient, whole, whole_gradient):
    """The terms and gradient are the whole image's, to float rounding."""
    np.testing.assert_allclose([float(t) for t in terms], [float(t) for t in whole], rtol=2e-5)
    scale = np.abs(whole_gradient.numpy()).max()
    np.testing.assert_allclose(gradient.numpy(), whole_gradient.numpy(), atol=2e-5 * scale)


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_tiles_with_a_halo_covering_the_receptive_field_are_exact(network, pooling):
    # An odd size: the poolings pad the whole image at its bottom and right edges.
    objective, net, targets, image = problem(network, Size(250, 301), pooling)
    whole, whole_gradient = objective.terms_and_gradient(image, net, targets)
    split = tiled(objective, net, targets, Size(250, 301), 80, EXACT_HALO)
    assert split.grid.count == 6
    for seed in range(2):  # two draws of the cores' edges
        split.rng = functools.partial(np.random.default_rng, seed)
        assert_exact(*split.terms_and_gradient(image), whole, whole_gradient)
    assert [float(t) for t in split.terms(image)] == pytest.approx([float(t) for t in whole], 2e-5)


def test_a_small_halo_is_close_but_not_exact(network):
    objective, net, targets, image = problem(network, Size(96, 128))
    whole, whole_gradient = objective.terms_and_gradient(image, net, targets)
    terms, gradient = tiled(objective, net, targets, Size(96, 128), 32, 16).terms_and_gradient(
        image
    )
    total, whole_total = float(tf.add_n(terms)), float(tf.add_n(whole))
    assert total == pytest.approx(whole_total, rel=0.05)
    assert float(terms[2]) == pytest.approx(float(whole[2]), rel=1e-6)  # tv: whole image
    a, b = gradient.numpy().ravel(), whole_gradient.numpy().ravel()
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.95


def test_tiled_features_and_grams_match_the_whole_image(network):
    net = stylize.vgg.constants(network)
    x = vgg_in(network, smooth_image(250, 301, 5))
    layers = ("relu1_1", "relu3_1", "relu4_2", "relu5_1")
    whole = stylize.vgg.extract(net, tf.constant(x), layers)
    grid = tiles.plan(Size(250, 301), max_side=240, halo=EXACT_HALO)
    assert grid.count > 1
    split = tiles.features(net, x, layers, "max", grid)
    grams = tiles.grams(net, x, layers, "max", grid)
    for name in layers:
        np.testing.assert_allclose(split[name], whole[name].numpy(), rtol=1e-4, atol=1e-4)
        expected = stylize.gram(whole[name]).numpy()
        np.testing.assert_allclose(grams[name].numpy(), expected, rtol=1e-4, atol=1e-6)


def test_tiled_features_and_grams_are_traced_once(network):
    """Once for a window shape, layers and pooling: a tiled video's frames each take their
    content targets through them."""
    net = stylize.vgg.constants(network)
    x = vgg_in(network, smooth_image(160, 128, 6))  # a window shape of this test's own
    grid = tiles.plan(Size(160, 128), max_side=96, halo=16)
    assert grid.count > 1
    for function, compiled in ((tiles.features, tiles._compiled_cores),
                               (tiles.grams, tiles._compiled_sums)):  # fmt: skip
        before = compiled.experimental_get_tracing_count()
        first = function(net, x, ("relu1_1", "relu2_1"), "avg", grid)
        for _ in range(2):
            again = function(net, x, ("relu1_1", "relu2_1"), "avg", grid)
            assert all(np.array_equal(first[n], again[n]) for n in first)
        assert compiled.experimental_get_tracing_count() - before == 1


@pytest.mark.parametrize("size", [Size(70, 100), Size(250, 301), Size(768, 1024)])
def test_cores_cover_the_image_once_inside_their_windows(size):
    grid = tiles.plan(size, max_side=160, halo=32)
    assert grid.window.height <= 160 and grid.window.width <= 160
    for seed in (None, 1, 2):
        covered = np.zeros(size, int)
        cuts = grid.cuts(None if seed is None else np.random.default_rng(seed))
        assert len(cuts) == grid.count
        for (y, x), (top, left, bottom, right) in cuts:
            # Inside the image, aligned with the poolings, the core in it with its context.
            assert y % 16 == 0 and x % 16 == 0
            assert y + grid.window.height <= size.height and x + grid.window.width <= size.width
            assert y == 0 or top >= 32
            assert x == 0 or left >= 32
            assert y + grid.window.height == size.height or grid.window.height - bottom >= 32
            assert x + grid.window.width == size.width or grid.window.width - right >= 32
            covered[y + top : y + bottom, x + left : x + right] += 1
        assert (covered == 1).all()
    with pytest.raises(ValueError, match="multiple of 16"):
        tiles.plan(size, halo=40)


def test_the_cores_edges_move():
    grid = tiles.plan(Size(768, 1024), max_side=320)
    rng = np.random.default_rng(0)
    edges = [{(y + top, x + left) for (y, x), (top, left, *_) in grid.cuts(rng)} for _ in range(4)]
    assert len({frozenset(e) for e in edges}) == 4


def test_layer_strides():
    assert [tiles.layer_stride(n) for n in ("relu1_1", "relu2_1", "relu4_2", "relu5_1")] == [
        1,
        2,
        8,
        16,
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("6GB", 6 * 2**30), ("512MB", 512 * 2**20), ("1.5g", 1.5 * 2**30), ("64 KiB", 2**16)],
)
def test_memory_sizes(text, expected):
    assert memory.parse_size(text) == expected


@pytest.mark.parametrize("text", ["0GB", "0.0001KB", "6", "six GB", "9" * 300 + "GB"])
def test_memory_sizes_refused(text):
    with pytest.raises(ValueError, match="must be a size such as 6GB"):
        memory.parse_size(text)


def test_the_windows_of_least_work_that_fit_are_chosen():
    output, styles = Size(2160, 3840), [Size(2160, 3840)]
    areas = []
    for budget in (4 * 2**30, 6 * 2**30):
        area = memory.window_area(output, styles, budget, "float32", False, False)
        needed = memory.tiled_needed(output, styles, area, "float32", False, False)
        assert (
            needed
            <= budget
            < memory.tiled_needed(output, styles, area + 50, "float32", False, False)
        )
        grid = tiles.plan(output, max_area=area)
        assert grid.window.height * grid.window.width <= area
        areas.append(grid.work())
    # More memory, larger windows: less of their context is computed twice.
    assert areas[0] > areas[1] and areas[1] < 1.3
    # A size that fits whole is not tiled.
    half = Size(1080, 1920)
    assert tiles.for_budget(half, [half], 16 * 2**30, "bfloat16", False, False) is None
    assert tiles.for_budget(half, [half], 4 * 2**30, "bfloat16", False, False).count > 1
    assert memory.window_area(output, styles, 2**30, "float32", False, False) is None
    assert memory.window_area(output, styles, 6 * 2**30, "float32", True, False) is None


# --- whole runs -------------------------------------------------------------------------


def test_cli_run_with_tiles_prints_the_untiled_first_losses(inputs, network_path, tmp_path, capsys):
    blocks = {}
    for name, extra in (("whole", []), ("tiles", ["--tile-size", "32"])):
        argv = tmp_cli_args(
            inputs, network_path, tmp_path, "--iterations", "3", "--print-iterations", "1",
            "--seed", "3", "--overwrite", "--checkpoint-iterations", "2",
            "--checkpoint-output", str(tmp_path / f"{name}%s.png"), *extra,
        )  # fmt: skip
        assert neural_style.main(argv) == 0
        err = capsys.readouterr().err
        blocks[name] = [float(line.split(":")[1]) for line in err.splitlines() if "loss:" in line]
        assert (tmp_path / f"{name}2.png").is_file()
    # 32x24 fits in one tile's window: the same numbers, to float rounding.
    assert blocks["tiles"] == pytest.approx(blocks["whole"], rel=1e-4)


def test_coarse_to_fine_lbfgs_and_the_budget_with_tiles(network):
    content, style = smooth_image(128, 160, 1), smooth_image(70, 90, 2)
    reports = []
    steps = list(
        run_stylize(
            network, content, [style], seed=0, iterations=6, scales=2, optimizer="lbfgs",
            tile_size=32, checkpoint_iterations=2, on_tile=lambda *a: reports.append(a),
        )
    )  # fmt: skip
    assert steps[-1].final and steps[-1].image.shape == (128, 160, 3)
    assert steps[-1].losses.total < steps[3].losses.total
    # Two passes over the windows at each evaluation, but one over the last window.
    count = tiles.plan(Size(128, 160), max_side=96).count
    assert count > 1 and max(total for _, total in reports) == 2 * count - 1
    # A budget too small for the whole image tiles it (here: too small for any tile).
    reports.clear()
    steps = list(run_stylize(network, content, [style], seed=0, iterations=2, scales=1,
                             max_memory=2**20, on_tile=lambda *a: reports.append(a)))  # fmt: skip
    assert reports and steps[-1].final


def test_the_bar_counts_tiles():
    terminal = Terminal()
    reporter = progress.Reporter(terminal, "out.jpg")
    reporter.tile(3, 8, 5)
    assert "tile 3/8" in terminal.getvalue() and "0/5" in terminal.getvalue()
    reporter.step(stylize.Progress(1, 5, stylize.Losses(1.0, 2.0, 3.0)))
    reporter.close()
    # A resumed run's bar starts at the iterations done before.
    terminal = Terminal()
    reporter = progress.Reporter(terminal, "out.jpg")
    reporter.tile(1, 8, 300, 150)
    assert "150/300" in terminal.getvalue()
    reporter.close()


def seam_score(image: np.ndarray, lines: list[int], axis: int) -> float:
    """How much larger the mean |difference| between neighbouring pixels across the grid lines
    (between line - 1 and line) is than across the other lines, in standard errors of a mean
    of that many other lines."""
    steps = np.abs(np.diff(image.astype(np.float64), axis=axis)).mean(axis=2)
    per_line = steps.mean(axis=1 - axis)
    at = np.zeros(per_line.size, bool)
    at[[line - 1 for line in lines if line > 0]] = True
    others = per_line[~at]
    return (per_line[at].mean() - others.mean()) / (others.std() / np.sqrt(at.sum()))


def test_no_seams_at_the_last_grid(network):
    # 2048x1152 from a smooth start, Adam, 256-pixel tiles with the default halo (less than
    # the receptive field): the last iteration's tile boundaries are no sharper than other
    # lines of the picture (within two standard errors of their mean).
    size = Size(1152, 2048)
    objective, net, targets, _ = problem(network, size, seed=4)
    start = vgg_in(network, smooth_image(*size, 9))
    split = tiled(objective, net, targets, size, 256, memory.TILE_HALO, seed=5)
    adam = stylize.AdamSettings(*(tf.constant(v) for v in (10.0, 0.9, 0.999, 1e-8, 0.0, 0.0)))
    optimiser = stylize.Adam(objective, start, net, targets, adam, split)
    for _ in range(6):
        optimiser.step()
    picture = optimiser.last()[0]
    for axis in (0, 1):
        lines = sorted({corner[axis] + core[axis] for corner, core in split.last_cuts} - {0})
        assert lines and seam_score(picture, lines, axis) < 2, axis


def video_problem(network, size: Size, seed: int):
    """problem() with a video frame's temporal target: a random warped image and mask."""
    objective, net, targets, image = problem(network, size, seed=seed)
    rng = np.random.default_rng(seed + 1)
    warped = tf.constant(rng.standard_normal((1, *size, 3)).astype(np.float32) * 30)
    mask = tf.constant(rng.uniform(0, 1, (1, *size, 1)).astype(np.float32))
    targets = targets._replace(temporal=stylize.Temporal(warped, mask, tf.constant(2.0)))
    return objective, net, targets, image


def test_a_video_frames_temporal_term_is_kept_in_tiles(network):
    size = Size(48, 64)
    objective, net, targets, image = video_problem(network, size, seed=2)
    whole, whole_gradient = objective.terms_and_gradient(image, net, targets)
    split = tiled(objective, net, targets, size, 32, 16)
    terms, gradient = split.terms_and_gradient(image)
    assert len(whole) == len(terms) == 4
    np.testing.assert_allclose(terms[3], whole[3], rtol=1e-6)
    np.testing.assert_allclose(
        [float(t) for t in split.terms(image)][3], float(whole[3]), rtol=1e-6
    )
    # The temporal term's gradient reaches the image: with it the gradient differs.
    plain = tiled(objective, net, targets._replace(temporal=None), size, 32, 16)
    assert not np.allclose(gradient, plain.terms_and_gradient(image)[1])


@pytest.mark.parametrize("band", [7, 256])
def test_the_pixel_terms_band_by_band_are_the_whole_images(network, monkeypatch, band):
    # Bands of 7 rows split 45 rows as 7 x 6 + 3; 256 takes them at once.
    monkeypatch.setattr(tiles, "PIXEL_BAND", band)
    size = Size(45, 64)
    objective, net, targets, image = video_problem(network, size, seed=4)
    with tf.GradientTape() as tape:
        tape.watch(image)
        whole = objective.pixel_terms(image, targets)
        total = tf.add_n(whole)
    expected = tape.gradient(total, image).numpy()
    terms, gradient = tiled(objective, net, targets, size, 32, 16)._pixel_pass(image.numpy())
    np.testing.assert_allclose([float(t) for t in terms], [float(t) for t in whole], rtol=1e-5)
    np.testing.assert_allclose(gradient, expected, atol=1e-5 * np.abs(expected).max())


def test_coarser_sizes_windows_are_no_larger_than_the_output_sizes(network):
    # TensorFlow's CPU memory pool keeps the most that any pass held: a coarser size's larger
    # windows would stay held through the output size's iterations.
    content = np.zeros((1152, 2048, 3), np.float32)
    budget = memory.parse_size("2.5GB")
    run = stylize._Run(
        network,
        content,
        [content],
        Settings(max_memory=budget, scales=3, precision="bfloat16"),
        None,
    )
    finest = run.grid(run.output_size).window
    coarse = run.sizes[-2]
    alone = tiles.for_budget(coarse, run._style_sizes(coarse), budget, run.precision, False, False)
    area = finest.height * finest.width
    assert alone.window.height * alone.window.width > area  # what the budget alone allows
    for size in run.sizes:
        grid = run.grid(size)
        shape = size if grid is None else grid.window
        assert shape.height * shape.width <= area, size


def test_a_coarser_size_that_cannot_be_cut_so_small_keeps_its_own_tiles(network):
    # Under 1GB the 2620x2156 output takes 92x92 windows; its 655x539 size cannot be cut into
    # windows that small (each needs its core and 32-pixel halos), and must not run whole.
    content = np.zeros((2156, 2620, 3), np.float32)
    budget = memory.parse_size("1GB")
    settings = Settings(max_memory=budget, scales=3, precision="bfloat16")
    run = stylize._Run(network, content, [content], settings, None)
    finest = run.grid(run.output_size).window
    coarse = run.sizes[0]
    assert tiles.plan(coarse, max_area=finest.height * finest.width).count == 1
    alone = tiles.for_budget(coarse, run._style_sizes(coarse), budget, "bfloat16", False, False)
    grid = run.grid(coarse)
    assert alone.count > 1 and grid.count > 1
    assert grid.window.height * grid.window.width <= alone.window.height * alone.window.width


def test_the_tiles_budget_is_taken_once_and_kept_by_a_resumed_run(network, monkeypatch):
    # What is free is asked once, for every size; a resumed run plans with the budget of the
    # run it goes on from (the same tiles, the same bytes) unless less is free now.
    content = np.zeros((2156, 2620, 3), np.float32)
    settings = Settings(scales=3, precision="bfloat16")
    asked = []

    def free(gigabytes: float):
        return lambda on_gpu: asked.append(gigabytes) or round(gigabytes * 2**30)

    def planned(gigabytes: float, kept: int | None = None) -> tuple[list, int | None]:
        monkeypatch.setattr(memory, "available", free(gigabytes))
        run = stylize._Run(network, content, [content], settings, None)
        if kept is not None:
            start = np.zeros((1, 4, 4, 3), np.float32)
            run.resume_from(stylize.RunState(1, 0, 1, 5, False, start, None, 1.0, (1, 1, 1), {},
                                             7, 0, kept))  # fmt: skip
        return [run.grid(size) for size in run.sizes], run.budget

    first, budget = planned(4.0)
    assert asked == [4.0] and budget == 4 * 2**30 and first[-1].count > 1
    assert planned(16.0, budget) == (first, budget)  # more is free: the same tiles
    assert planned(16.0)[0] != first  # (which a fresh run would not cut)
    fewer, smaller = planned(3.0, budget)
    assert smaller == 3 * 2**30 and fewer[-1].count > first[-1].count
