"""The optimisation generator: falling loss, checkpoints, the best-image rule, stops, NaN."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from conftest import losses_by_hand, run_stylize, smooth_image

import images
import settings
import stylize
from images import Size
from settings import CONTENT_LAYERS, STYLE_LAYERS

CONTENT = smooth_image(24, 32, 1)
STYLES = [smooth_image(40, 40, 2)]


def run(network, **options) -> list[stylize.Progress]:
    return list(run_stylize(network, CONTENT, STYLES, seed=0, **options))


def test_loss_falls_and_every_iteration_reports(network):
    steps = run(network, iterations=12)
    assert [s.iteration for s in steps] == list(range(1, 13))
    assert steps[-1].losses.total < 0.5 * steps[0].losses.total
    assert [s.final for s in steps] == [False] * 11 + [True]
    assert steps[-1].image.shape == (24, 32, 3) and steps[-1].image.dtype == np.uint8


def test_checkpoints_and_the_best_image_rule(network):
    iterations, every = 17, 4
    # rounding_passes=0: the final image rounded to the nearest levels, as checkpoints are.
    steps = run(network, iterations=iterations, checkpoint_iterations=every, rounding_passes=0)
    with_image = [s.iteration for s in steps if s.image is not None]
    assert with_image == [4, 8, 12, 16, 17]
    # The loss before step i+1 is the loss of the image after step i; one more iteration
    # gives the loss after the last step. Candidates: the start and each checkpoint.
    longer = run(network, iterations=iterations + 1)
    after = {i: longer[i].losses.total for i in with_image}
    candidates = {0: longer[0].losses.total, **after}
    best = min(candidates, key=candidates.get)
    assert best not in (0, iterations), "settings should make an earlier checkpoint the best"
    images = {s.iteration: s.image for s in steps if s.image is not None}
    np.testing.assert_array_equal(images[iterations], images[best])


def test_same_seed_same_image_other_seed_differs(network):
    a = run(network, iterations=3)[-1].image
    b = run(network, iterations=3)[-1].image
    c = list(run_stylize(network, CONTENT, STYLES, iterations=3, seed=1))[-1].image
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_initial_image_is_the_start(network):
    """The first losses are those of the initial image, worked out by hand; no noise in them."""
    initial = smooth_image(24, 32, 9)
    first = next(run_stylize(network, CONTENT, STYLES, initial=initial, iterations=1))
    expected = losses_by_hand(
        network, CONTENT, STYLES[0], initial, settings.CONTENT_LAYERS, settings.STYLE_LAYERS
    )
    losses = first.losses
    got = [losses.content, losses.style, losses.tv, losses.total]
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    # With an initial image the first loss is deterministic: two runs agree.
    again = next(run_stylize(network, CONTENT, STYLES, initial=initial, iterations=1))
    assert first.losses == again.losses


def test_stop_ends_with_the_best_image(network):
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) >= 3

    steps = run(network, iterations=50, stop=stop)
    assert len(calls) == 3  # asked once per iteration
    assert len(steps) == 3 and steps[-1].final
    # The image is the one a run of 3 iterations ends with: the best of those 3, rounded to
    # the nearest levels (not by the loss, which would delay the exit).
    np.testing.assert_array_equal(
        steps[-1].image, run(network, iterations=3, rounding_passes=0)[-1].image
    )


def test_non_finite_loss_names_the_iteration_and_keeps_the_best(network):
    initial = smooth_image(24, 32, 9)
    with pytest.raises(stylize.NonFiniteLoss, match="iteration 2") as info:
        # Huge steps, projected to the pixel range, make neighbours differ by up to 255: the
        # tv loss, finite at the start, overflows float32 after the first step.
        run(network, iterations=5, learning_rate=1e30, tv_weight=1e35, initial=initial)
    # The first step breaks down: the best image is the only good one, the start.
    assert info.value.best.shape == (24, 32, 3) and info.value.best.dtype == np.uint8
    np.testing.assert_allclose(info.value.best, initial, atol=0.5 + 1e-3)


def test_missing_network_layer(tmp_path):
    from fake_vgg import write_vgg_mat

    import vgg

    path = tmp_path / "net.mat"
    write_vgg_mat(str(path), "old", drop=("conv5_1",))
    with pytest.raises(ValueError, match="lacks layer 'conv5_1'"):
        run(vgg.load_mat(str(path)), iterations=1)


def test_no_style_is_a_value_error(network):
    with pytest.raises(ValueError, match="at least one style image"):
        next(stylize.stylize(network, smooth_image(24, 32, 1), []))


def test_cache_keeps_the_style_grams_once_and_they_are_used(network):
    cache: dict = {}

    def grams() -> list:
        return [value for key, value in cache.items() if key[0] == "grams"]

    first = run(network, iterations=1, cache=cache)[0].losses
    assert len(grams()) == 1
    again = run(network, iterations=1, cache=cache)[0].losses
    assert len(grams()) == 1 and again == first
    other = [smooth_image(40, 40, 5)]
    list(run_stylize(network, CONTENT, other, iterations=1, cache=cache))
    assert len(grams()) == 2
    # The cached grams are what the loss uses: zeroed grams change the style loss.
    for found in grams():
        for name in found:
            found[name] = found[name] * 0
    assert run(network, iterations=1, cache=cache)[0].losses.style != first.style


def test_the_cache_keeps_the_latest_styles_grams(network, monkeypatch):
    monkeypatch.setattr(stylize, "GRAMS_KEPT", 2)
    cache: dict = {}
    styles = [[smooth_image(16, 16, seed)] for seed in range(3)]
    for seed in (0, 1, 0, 2):  # 0 used again: 1 is then the oldest
        list(run_stylize(network, CONTENT, styles[seed], iterations=1, cache=cache))
    kept = [key[1] for key in cache if key[0] == "grams"]
    digest = [hashlib.sha1(s[0].astype(np.float32).tobytes()).hexdigest() for s in styles]
    assert kept == [digest[0], digest[2]]


@pytest.fixture
def traced(monkeypatch) -> list:
    """The image shapes Adam's step is traced with, as it is traced (its Python runs only
    then)."""
    shapes = []
    adam_step = stylize.Objective.adam_step

    def counted(self, state, *args):
        shapes.append(tuple(state.image.shape))
        return adam_step(self, state, *args)

    monkeypatch.setattr(stylize.Objective, "adam_step", counted)
    return shapes


def test_calls_sharing_a_cache_share_one_trace_of_the_step(network, traced):
    """A batch's jobs and a video's frames: the step is traced once for calls with the same
    layers and pooling, whatever their sizes, and anew for other layer weights."""
    cache: dict = {}
    alone = run(network, iterations=3)
    assert len(traced) == 1
    shared = run(network, iterations=3, cache=cache)
    assert [s.losses for s in shared] == [s.losses for s in alone]
    assert len(traced) == 2
    list(run_stylize(network, BIG_CONTENT, [BIG_STYLE], iterations=3, seed=0, cache=cache))
    assert len(traced) == 2  # another size
    list(run_stylize(network, CONTENT, STYLES, iterations=3, cache=cache, style_weight=1.0))
    assert len(traced) == 2  # a loss weight is an input of the step
    list(
        run_stylize(network, CONTENT, STYLES, iterations=3, cache=cache, style_layers=("relu1_1",))
    )
    assert len(traced) == 3


def test_bfloat16_network_follows_float32(network):
    # Same start: the first loss differs only by bfloat16 rounding; the loss falls as well.
    f32 = run(network, iterations=12)
    bf16 = run(network, iterations=12, precision="bfloat16")
    assert bf16[0].losses != f32[0].losses  # the network really ran in bfloat16
    assert bf16[0].losses.total == pytest.approx(f32[0].losses.total, rel=0.02)
    assert bf16[-1].losses.total < 0.5 * bf16[0].losses.total
    assert bf16[-1].losses.total == pytest.approx(f32[-1].losses.total, rel=0.1)


def test_unknown_precision(network):
    with pytest.raises(
        ValueError, match="precision must be one of auto, float32, bfloat16, got 'half'"
    ):
        run(network, iterations=1, precision="half")


def test_scale_sizes_halve_down_to_the_smallest_side():
    assert stylize.scale_sizes(Size(384, 512), 3) == [(96, 128), (192, 256), (384, 512)]
    assert stylize.scale_sizes(Size(384, 512), 1) == [(384, 512)]
    # Rounded halves; a size whose shorter side is under MIN_COARSE_SIDE is not used.
    assert stylize.scale_sizes(Size(75, 101), 2) == [(38, 50), (75, 101)]
    assert stylize.scale_sizes(Size(2 * stylize.MIN_COARSE_SIDE - 2, 500), 4) == [
        (2 * stylize.MIN_COARSE_SIDE - 2, 500)
    ]


def test_split_iterations_spends_the_whole_budget():
    for iterations in (1, 2, 3, 7, 100, 1000):
        for count in (1, 2, 3, 4):
            counts = stylize.split_iterations(iterations, count)
            assert len(counts) == count and sum(counts) == iterations
            assert all(n >= 0 for n in counts) and counts[-1] >= 1


BIG_CONTENT = smooth_image(64, 96, 1)
BIG_STYLE = smooth_image(80, 80, 2)


def test_coarse_to_fine_runs_each_size_with_its_own_targets(network):
    steps = list(run_stylize(network, BIG_CONTENT, [BIG_STYLE], iterations=9, seed=0, scales=2))
    coarse = stylize.split_iterations(9, 2)[0]
    assert coarse >= 1
    assert [s.iteration for s in steps] == list(range(1, 10))
    # Iteration 1 reports the starting image's losses at the output size (the first
    # block is the same whatever --scales is); the coarse size's own losses follow.
    assert [s.size for s in steps] == [(64, 96)] + [(32, 48)] * (coarse - 1) + [(64, 96)] * (
        9 - coarse
    )
    single = next(run_stylize(network, BIG_CONTENT, [BIG_STYLE], iterations=1, seed=0))
    assert steps[0].losses.total == pytest.approx(single.losses.total, rel=1e-5)
    assert steps[-1].final and steps[-1].image.shape == (64, 96, 3)
    # The first size is a plain run at half size: noise of that size, targets of that size.
    half = list(
        run_stylize(
            network,
            images.resize(BIG_CONTENT, 32, 48),
            [images.resize(BIG_STYLE, 40, 40)],
            iterations=2,
            seed=0,
            scales=1,
        )
    )
    assert steps[1].losses.total == pytest.approx(half[1].losses.total, rel=1e-5)


def test_coarse_checkpoints_are_upsampled_to_the_output_size(network):
    steps = list(
        run_stylize(
            network, BIG_CONTENT, [BIG_STYLE], iterations=8, seed=0, scales=2,
            checkpoint_iterations=1,
        )
    )  # fmt: skip
    assert {s.size for s in steps} == {(32, 48), (64, 96)}
    assert all(s.image.shape == (64, 96, 3) for s in steps)


def test_one_trace_of_the_step_serves_every_size(network, traced):
    """Adam's step is traced once for a run over two sizes."""
    steps = list(run_stylize(network, BIG_CONTENT, [BIG_STYLE], iterations=6, seed=0, scales=2))
    assert {s.size for s in steps} == {(32, 48), (64, 96)}
    assert traced == [(1, None, None, 3)]


def test_warmup_ramps_the_steps_of_the_sizes_after_the_first(network):
    """--warmup changes the steps at a size that starts from the coarser size's result, not
    those at the first size that runs, which starts from noise."""

    def steps(**options) -> list[stylize.Progress]:
        options = {"iterations": 8, "seed": 0, "scales": 2, **options}
        return list(run_stylize(network, BIG_CONTENT, [BIG_STYLE], **options))

    coarse = stylize.split_iterations(8, 2)[0]
    ramped, full = steps(warmup=10), steps(warmup=0)
    # Iteration coarse + 1 prints the losses before the fine size's first step.
    assert [s.losses for s in ramped[: coarse + 1]] == [s.losses for s in full[: coarse + 1]]
    fine = zip(ramped[coarse + 1 :], full[coarse + 1 :], strict=True)
    assert all(a.losses != b.losses for a, b in fine)
    assert [s.losses for s in steps(warmup=1)] == [s.losses for s in full]
    # One iteration over two sizes runs the fine size only, from noise: full steps, as at
    # --scales 1 (the step lowers the loss, so the image written is the one after it).
    alone = steps(iterations=1, warmup=10)[-1].image
    np.testing.assert_array_equal(alone, steps(iterations=1, warmup=0)[-1].image)
    np.testing.assert_array_equal(alone, steps(iterations=1, scales=1)[-1].image)


def test_round_by_loss_moves_steep_values_one_checkerboard_half_at_a_time():
    # A linear loss: each value's slope stays, and a steep one moves a level against it per pass.
    rng = np.random.default_rng(0)
    levels = rng.integers(2, 254, (1, 4, 5, 3)).astype(np.float64)
    slope = rng.standard_normal(levels.shape)
    curvature = np.full((4, 5, 1), 0.5)
    seen = []

    def loss(v: np.ndarray) -> float:
        return float(np.sum(slope * v))

    def loss_and_gradient(v: np.ndarray) -> tuple[float, np.ndarray]:
        seen.append(v)
        return loss(v), slope

    out = stylize.round_by_loss(levels, 2, curvature, loss, loss_and_gradient)
    steep = np.abs(slope) > 0.5
    assert steep.any() and not steep.all()
    np.testing.assert_array_equal(out, levels - 2 * np.sign(slope) * steep)
    assert len(seen) == 4  # two passes of two halves
    half = (np.add.outer(np.arange(4), np.arange(5)) % 2)[None, ..., None]
    moved = seen[1] != seen[0]
    assert moved.any() and not (moved & (half == 1)).any()
    assert stylize.round_by_loss(levels, 0, curvature, loss, loss_and_gradient) is levels

    # The version of lowest loss is kept: here the nearest levels, whatever the slope says.
    def rising(v: np.ndarray) -> tuple[float, np.ndarray]:
        return -loss(v), slope

    kept = stylize.round_by_loss(levels, 1, curvature, lambda v: rising(v)[0], rising)
    np.testing.assert_array_equal(kept, levels)


def test_the_final_image_is_rounded_by_its_loss(network):
    """--rounding-passes: the final image's loss is lower than with the nearest levels; the
    run and its checkpoints are the same."""
    options = {"iterations": 6, "checkpoint_iterations": 3}
    by_loss, nearest = run(network, **options), run(network, rounding_passes=0, **options)
    assert [s.losses for s in by_loss] == [s.losses for s in nearest]
    np.testing.assert_array_equal(by_loss[2].image, nearest[2].image)

    def total(image: np.ndarray) -> float:
        return losses_by_hand(
            network, CONTENT, STYLES[0], image.astype(np.float32), CONTENT_LAYERS, STYLE_LAYERS
        )[3]

    assert not np.array_equal(by_loss[-1].image, nearest[-1].image)
    assert total(by_loss[-1].image) < total(nearest[-1].image)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_the_written_image_has_the_loss_printed(network, optimizer):
    """Steps stay within RGB 0-255, so clipping and rounding the image to write it changes its
    loss by rounding only (to the nearest levels here). (Without the projection, these Adam
    steps leave the range and the written file's loss is 25% off.)"""
    options = {"optimizer": optimizer, "learning_rate": 30.0, "tv_weight": 0.1, "average_decay": 0}
    options["rounding_passes"] = 0
    written = run(network, iterations=20, **options)[-1].image
    after = run(network, iterations=21, **options)[-1].losses.total  # the image after 20 steps
    mine = losses_by_hand(
        network, CONTENT, STYLES[0], written.astype(np.float32), CONTENT_LAYERS, STYLE_LAYERS
    )
    total = mine[0] + mine[1] + mine[2] * 0.1 / 100  # by hand with tv weight 100
    assert total == pytest.approx(after, rel=0.005)
