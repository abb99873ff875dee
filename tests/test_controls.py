"""The controls of the result: layers and weights, pooling, L-BFGS, Adam, colours, init, noise
blend, seed."""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, cli_args, losses_by_hand, run_stylize, smooth_image

import colors
import hardware
import images
import neural_style
import settings
import stylize
import vgg
from inputs import load_inputs

CONTENT = smooth_image(24, 32, 1)
STYLES = [smooth_image(40, 40, 2)]


def args(inputs, network_path, tmp_path, *extra: str) -> list[str]:
    return cli_args(inputs, network_path, tmp_path / "out.png", *extra)


# --- layer weights -------------------------------------------------------------------------


def test_default_layer_weights():
    assert settings.content_layer_weights() == settings.CONTENT_LAYERS == {"relu4_2": 1.0}
    assert settings.style_layer_weights() == settings.STYLE_LAYERS
    assert all(w == 1.0 for w in settings.STYLE_LAYERS.values())


def test_content_blend():
    assert settings.content_layer_weights(0.0) == {"relu5_2": 1.0}
    assert settings.content_layer_weights(0.25) == {"relu4_2": 0.25, "relu5_2": 0.75}
    assert settings.content_layer_weights(0.5, ["relu5_1", "conv3_1"]) == {
        "conv3_1": 0.5,
        "relu5_1": 0.5,
    }


def test_style_layer_weight_exponent():
    # E = 2: raw weights 1, 2, 4, 8, 16 (sum 31), scaled to average 1.
    weights = settings.style_layer_weights(2.0)
    assert list(weights) == list(settings.STYLE_LAYERS)
    np.testing.assert_allclose(list(weights.values()), [5 / 31 * 2**k for k in range(5)])
    # Explicit layers are taken in network order, whatever order they are given in.
    assert settings.style_layer_weights(0.5, ["pool3", "relu1_2"]) == pytest.approx(
        {"relu1_2": 2 / 1.5, "pool3": 1 / 1.5}
    )


def test_bad_layer_names():
    with pytest.raises(ValueError, match="unknown layer 'relu9_9'; valid layers: conv1_1 relu1_1"):
        settings.style_layer_weights(1.0, ["relu1_1", "relu9_9"])
    with pytest.raises(ValueError, match="names a layer twice"):
        settings.content_layer_weights(1.0, ["relu4_2", "relu4_2"])


@pytest.mark.parametrize(
    ("extra", "content_layers", "style_layers", "pooling"),
    [
        ([], {"relu4_2": 1.0}, settings.STYLE_LAYERS, "max"),  # the paper's losses
        (["--content-weight-blend", "0"], {"relu5_2": 1.0}, settings.STYLE_LAYERS, "max"),
        (
            ["--content-weight-blend", "0.25", "--style-layer-weight-exp", "2"],
            {"relu4_2": 0.25, "relu5_2": 0.75},
            {n: 5 / 31 * 2**k for k, n in enumerate(settings.STYLE_LAYERS)},
            "max",
        ),
        (
            ["--content-layers", "conv5_1", "relu3_1", "--style-layers", "pool3", "relu2_2"],
            {"relu3_1": 0.5, "conv5_1": 0.5},
            {"relu2_2": 1.0, "pool3": 1.0},
            "max",
        ),
        (["--pooling", "avg"], {"relu4_2": 1.0}, settings.STYLE_LAYERS, "avg"),
    ],
)
def test_layer_options_give_the_formulas(
    inputs, network, network_path, tmp_path, capsys, extra, content_layers, style_layers, pooling
):
    """The first printed block is the loss of --initial, recomputed by hand per the options."""
    argv = args(
        inputs, network_path, tmp_path, "--iterations", "1", "--print-iterations", "1",
        "--initial", str(inputs["initial"]), *extra,
    )  # fmt: skip
    assert neural_style.main(argv) == 0
    printed = [float(v) for v in re.findall(r"loss: (\S+)", capsys.readouterr().err)]
    content = images.read_image(str(inputs["content"]))
    style = images.resize(images.read_image(str(inputs["style1"])), 32, 32)
    initial = images.resize(images.read_image(str(inputs["initial"])), 24, 32)
    expected = losses_by_hand(
        network, content, style, initial, content_layers, style_layers, pooling
    )
    np.testing.assert_allclose(printed[:4], expected, rtol=1e-4)


def test_avg_pooling_averages():
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 3, 3, 2)).astype(np.float32)
    weights = {"conv1_1": (kernel, np.zeros(2)), "conv1_2": (np.eye(2)[None, None], np.zeros(2))}
    net = vgg.constants(vgg.Network(weights, np.zeros(3)))
    x = tf.constant(rng.standard_normal((1, 4, 6, 3)), tf.float32)
    for pooling in ("avg", "max"):
        out = vgg.extract(net, x, ("relu1_2", "pool1"), pooling)
        blocks = out["relu1_2"].numpy().reshape(1, 2, 2, 3, 2, 2)
        reduce = np.mean if pooling == "avg" else np.max
        np.testing.assert_allclose(out["pool1"], reduce(blocks, axis=(2, 4)), rtol=1e-6)
    assert not np.allclose(
        vgg.extract(net, x, ("pool1",), "avg")["pool1"], vgg.extract(net, x, ("pool1",))["pool1"]
    )


# --- L-BFGS --------------------------------------------------------------------------------


def run(network, **options) -> list[stylize.Progress]:
    return list(run_stylize(network, CONTENT, STYLES, **{"seed": 0, **options}))


def test_lbfgs_lowers_the_loss_with_checkpoints_and_the_best_image(network):
    adam = run(network, iterations=1)
    steps = run(network, iterations=13, optimizer="lbfgs", checkpoint_iterations=4)
    assert [s.iteration for s in steps] == list(range(1, 14))
    assert steps[0].losses == adam[0].losses  # the same start and objective
    totals = [s.losses.total for s in steps]
    assert totals[-1] < 0.2 * totals[0]
    assert all(b <= a for a, b in zip(totals, totals[1:], strict=False))  # accepted iterates
    assert [s.iteration for s in steps if s.image is not None] == [4, 8, 12, 13]
    assert [s.final for s in steps] == [False] * 12 + [True]
    # L-BFGS never goes up, so the best image at a checkpoint is the latest: the one a run of
    # that many iterations ends with (the history is one minimisation, so runs agree), rounded
    # to the nearest levels as a checkpoint is.
    shorter = run(network, iterations=4, optimizer="lbfgs", rounding_passes=0)
    np.testing.assert_array_equal(images_of(steps)[4], images_of(shorter)[4])


def images_of(steps: list[stylize.Progress]) -> dict[int, np.ndarray]:
    return {s.iteration: s.image for s in steps if s.image is not None}


def test_lbfgs_that_cannot_move_ends_with_the_start(network):
    # From the content itself with only a content loss, the loss is 0 and so is the gradient:
    # L-BFGS stops at once, and the run ends after one iteration that made no move.
    steps = list(
        run_stylize(
            network, CONTENT, STYLES, iterations=10, optimizer="lbfgs", initial=CONTENT,
            style_weight=0.0, tv_weight=0.0,
        )
    )  # fmt: skip
    assert len(steps) == 1 and steps[0].final and steps[0].losses.total == 0
    np.testing.assert_allclose(steps[0].image, CONTENT, atol=0.5 + 1e-3)


def test_lbfgs_stops_when_asked(network):
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) >= 3

    steps = run(network, iterations=50, optimizer="lbfgs", stop=stop)
    assert len(steps) == 3 and steps[-1].final and steps[-1].image is not None


def test_lbfgs_direction_is_the_bfgs_update_of_its_pairs():
    """Two pairs by the two-loop recursion against the dense BFGS inverse update, by hand."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 6))
    hessian = a @ a.T + 6 * np.eye(6)  # a convex quadratic: every pair has s.y > 0
    steps = [rng.standard_normal(6) for _ in range(2)]
    pairs = [(s, hessian @ s, 1 / s.dot(hessian @ s)) for s in steps]
    s, y, rho = pairs[-1]
    inverse = s.dot(y) / y.dot(y) * np.eye(6)  # H0 from the newest pair
    for s, y, rho in pairs:  # oldest first
        left = np.eye(6) - rho * np.outer(s, y)
        inverse = left @ inverse @ left.T + rho * np.outer(s, s)
    gradient = rng.standard_normal(6)
    np.testing.assert_allclose(stylize.lbfgs_direction(gradient, pairs), -inverse @ gradient)
    # Without pairs it is steepest descent; the update satisfies the secant equation H y = s.
    np.testing.assert_array_equal(stylize.lbfgs_direction(gradient, []), -gradient)
    np.testing.assert_allclose(-stylize.lbfgs_direction(y, pairs), s)


class Rosenbrock:
    """An objective with the Objective interface that L-BFGS uses: (f, 0, 0) and its gradient,
    f Rosenbrock's."""

    def compiled_terms_and_gradient(self, image, net, targets):
        with tf.GradientTape() as tape:
            tape.watch(image)
            x, y = image[0, 0, 0, 0], image[0, 0, 0, 1]
            f = 100 * (y - x**2) ** 2 + (1 - x) ** 2
        return (f, tf.constant(0.0), tf.constant(0.0)), tape.gradient(f, image)


def test_lbfgs_finds_rosenbrocks_minimum():
    """The classic test of a quasi-Newton method: the curved valley from (-1.2, 1) to (1, 1)."""
    start = np.array([-1.2, 1.0], np.float32).reshape(1, 1, 1, 2)
    unbounded = (np.full(2, -np.inf), np.full(2, np.inf))
    lbfgs = stylize.LBFGS(Rosenbrock(), start, {}, {}, unbounded)
    totals = []
    while True:
        losses, stalled = lbfgs.step()
        totals.append(losses.total)
        if losses.total < 1e-8 or stalled or len(totals) == 200:
            break
    assert len(totals) < 100 and totals[-1] < 1e-6, (len(totals), totals[-1])
    assert all(b <= a for a, b in zip(totals, totals[1:], strict=False))
    np.testing.assert_allclose(lbfgs.last().ravel(), [1, 1], atol=1e-3)


class Quadratic(stylize.Objective):
    """The terms (|x - centre|**2 / 2, 0, 0), whose gradient is x - centre, in place of the
    network's; the rest of the Objective (the gradient, Adam's step) is stylize's."""

    def __init__(self, centre: np.ndarray):
        super().__init__({}, {}, "max")
        self.centre = tf.constant(centre)

    def terms(self, image, net, targets):
        return tf.reduce_sum((image - self.centre) ** 2) / 2, tf.constant(0.0), tf.constant(0.0)


def test_adam_betas_and_epsilon_are_used():
    """Four steps of stylize.Adam against Adam worked out in numpy, in TF1's form, with the
    step growing over the first three."""
    rng = np.random.default_rng(0)
    start, centre = rng.standard_normal((2, 1, 3, 4, 3)).astype(np.float32)
    lr, beta1, beta2, epsilon, decay, warmup = 0.5, 0.6, 0.95, 0.1, 0.7, 3.0
    unbounded = stylize.Targets(*[None] * 7, tf.constant(-1e9), tf.constant(1e9))
    values = (lr, beta1, beta2, epsilon, decay, warmup)
    adam = stylize.Adam(
        Quadratic(centre), start, {}, unbounded,
        stylize.AdamSettings(*(tf.constant(v) for v in values)),
    )  # fmt: skip
    x, m, v, average = start.astype(np.float64), 0.0, 0.0, 0.0
    for t in (1, 2, 3, 4):
        losses, stalled = adam.step()
        assert not stalled
        assert losses.total == pytest.approx(np.sum((x - centre) ** 2) / 2, rel=1e-5)
        gradient = x - centre
        m = beta1 * m + (1 - beta1) * gradient
        v = beta2 * v + (1 - beta2) * gradient**2
        # The bias correction is folded into the step size; epsilon is added to sqrt(v) as it
        # is, not bias-corrected.
        ramp = min(1.0, t / warmup)  # 1/3, 2/3, then 1
        x -= ramp * lr * np.sqrt(1 - beta2**t) / (1 - beta1**t) * m / (np.sqrt(v) + epsilon)
        np.testing.assert_allclose(adam.last(), x, rtol=1e-5, atol=1e-6)
        # The candidates for the best image: the iterates' average, bias-corrected, and the last.
        average = decay * average + (1 - decay) * x
        corrected = average / (1 - decay**t)
        (mean_image, mean_loss), (last_image, last_loss) = adam.candidates()
        np.testing.assert_allclose(mean_image, corrected, rtol=1e-5, atol=1e-6)
        assert mean_loss == pytest.approx(np.sum((corrected - centre) ** 2) / 2, rel=1e-4)
        np.testing.assert_allclose(last_image, x, rtol=1e-5, atol=1e-6)
    assert last_loss == pytest.approx(np.sum((x - centre) ** 2) / 2, rel=1e-5)
    # The form with epsilon added to the bias-corrected sqrt(v) differs here by far more.
    m_hat, v_hat = m / (1 - beta1**4), v / (1 - beta2**4)
    other = x + lr * np.sqrt(1 - beta2**4) / (1 - beta1**4) * m / (np.sqrt(v) + epsilon)
    other -= lr * m_hat / (np.sqrt(v_hat) + epsilon)
    assert np.abs(other - x).max() > 1e-3


def test_adam_settings_reach_the_run(network):
    """--beta1, --beta2 and --epsilon each change a run (the step itself is checked above)."""
    default = run(network, iterations=3)[-1].losses
    assert run(network, iterations=3, beta1=0.5)[-1].losses != default
    assert run(network, iterations=3, beta2=0.9)[-1].losses != default
    assert run(network, iterations=3, epsilon=1e3)[-1].losses != default


# --- init, noise blend, seed ---------------------------------------------------------------


def test_noise_blend_definition(network):
    initial = smooth_image(24, 32, 9)
    blend = 0.3
    first = run(network, iterations=1, initial=initial, initial_noiseblend=blend)[0]
    noise = np.random.default_rng(0).standard_normal((24, 32, 3)) * stylize.NOISE_SCALE
    start = (1 - blend) * vgg.preprocess(initial, network.mean_pixel) + blend * noise
    dy, dx = start[1:] - start[:-1], start[:, 1:] - start[:, :-1]
    tv = 100.0 * (np.sum(dy**2) / dy.size + np.sum(dx**2) / dx.size)
    assert first.losses.tv == pytest.approx(tv, rel=1e-5)
    # R = 1 is the plain noise start (R = 0, the default, is checked with the formulas above).
    full = run(network, iterations=1, initial=initial, initial_noiseblend=1.0)[0]
    assert full.losses == run(network, iterations=1)[0].losses


def test_init_content_and_style(inputs, network_path, tmp_path):
    parser = settings.build_parser()
    options = settings.from_namespace(
        parser.parse_args(args(inputs, network_path, tmp_path, "--init", "content"))
    )
    content, styles, initial = load_inputs(options)
    np.testing.assert_array_equal(initial, content)
    options = settings.from_namespace(
        parser.parse_args(args(inputs, network_path, tmp_path, "--init", "style"))
    )
    content, styles, initial = load_inputs(options)
    np.testing.assert_array_equal(initial, images.resize(styles[0], 24, 32))
    options = settings.from_namespace(parser.parse_args(args(inputs, network_path, tmp_path)))
    assert load_inputs(options)[2] is None


def test_init_content_starts_with_no_content_loss(inputs, network_path, tmp_path, capsys):
    argv = args(
        inputs, network_path, tmp_path, "--iterations", "1", "--print-iterations", "1",
        "--init", "content",
    )  # fmt: skip
    assert neural_style.main(argv) == 0
    assert re.search(r"content loss: (\S+)", capsys.readouterr().err).group(1) == "0"


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_same_seed_same_bytes(inputs, network_path, tmp_path, optimizer):
    def output(seed: str, name: str) -> bytes:
        path = tmp_path / name
        argv = args(
            inputs, network_path, tmp_path, "--iterations", "4", "--seed", seed,
            "--optimizer", optimizer, "--output", str(path),
        )  # fmt: skip
        assert neural_style.main(argv) == 0
        return path.read_bytes()

    first = output("7", "a.png")
    assert output("7", "b.png") == first
    assert output("8", "c.png") != first


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_the_commands_process_writes_what_main_writes(inputs, network_path, tmp_path, precision):
    """The command tells oneDNN that the weights never change (filters kept reordered); main()
    called in this process does not. The same seed gives the same file either way."""
    extra = ("--iterations", "6", "--seed", "5", "--precision", precision)
    assert neural_style.main(cli_args(inputs, network_path, tmp_path / "main.png", *extra)) == 0
    argv = cli_args(inputs, network_path, tmp_path / "command.png", *extra)
    env = {k: v for k, v in os.environ.items() if k != hardware.FROZEN_WEIGHTS}
    command = [sys.executable, str(ROOT / "neural_style.py"), *argv]
    subprocess.run(command, env=env, check=True, timeout=120, capture_output=True)
    assert (tmp_path / "command.png").read_bytes() == (tmp_path / "main.png").read_bytes()


def test_the_command_sets_up_its_process(monkeypatch):
    """oneDNN told that the weights never change; at the end, the objects left to the system."""
    monkeypatch.delenv(hardware.FROZEN_WEIGHTS, raising=False)  # and removed again after
    monkeypatch.setattr(neural_style, "main", lambda: os.environ.get(hardware.FROZEN_WEIGHTS))
    gc.unfreeze()  # what the import froze: then only script() can have frozen anything
    try:
        assert neural_style.script() == "1"
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("before", ["gc.enable()", "gc.disable()"])
def test_importing_the_command_freezes_what_it_loaded(before):
    """The collector is off while TensorFlow is imported; what was loaded is then frozen, and
    the collector as it was."""
    code = f"import gc, sys; {before}; sys.path.insert(0, {str(ROOT)!r}); import neural_style;"
    code += " print(gc.isenabled(), gc.get_freeze_count() > 100000)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == [str(before == "gc.enable()"), "True"]


# --- colours -------------------------------------------------------------------------------


def test_luminance_keeps_the_contents_chroma():
    rng = np.random.default_rng(0)
    content = rng.uniform(60, 190, (16, 16, 3))
    result = rng.uniform(60, 190, (16, 16, 3)).astype(np.uint8)
    out = colors.preserve_luminance(result, content)
    assert out.dtype == np.uint8 and out.shape == (16, 16, 3)
    unclipped = np.all((out > 0) & (out < 255), axis=-1)
    assert unclipped.mean() > 0.9
    got, want = colors.rgb_to_ycbcr(out)[unclipped], colors.rgb_to_ycbcr(content)[unclipped]
    # Rounding RGB to integers moves Cb or Cr by at most 0.5 (each row's |coefficients| sum 1).
    assert np.abs(got[:, 1:] - want[:, 1:]).max() <= 0.5 + 1e-9
    y = colors.rgb_to_ycbcr(result)[unclipped][:, 0]
    assert np.abs(got[:, 0] - y).max() <= 0.5 + 1e-9


def test_ycbcr_is_jpegs():
    # JFIF: white is (255, 128, 128), pure red has Cr = 255.5 before clipping.
    np.testing.assert_allclose(colors.rgb_to_ycbcr(np.array([255, 255, 255])), [255, 128, 128])
    np.testing.assert_allclose(
        colors.rgb_to_ycbcr(np.array([255, 0, 0])), [76.245, 84.97232, 255.5]
    )


def test_histogram_matching_gives_the_contents_mean_and_covariance():
    rng = np.random.default_rng(1)
    content = 128 + rng.standard_normal((30, 20, 3)) @ np.array(
        [[20, 5, 0], [0, 15, 5], [0, 0, 10]]
    )
    style = 100 + rng.standard_normal((25, 25, 3)) @ np.array([[8, 0, 6], [3, 9, 0], [0, 2, 7]])
    matched = colors.match_colors(style, content).reshape(-1, 3).astype(np.float64)
    target = content.reshape(-1, 3)
    assert matched.min() > 0 and matched.max() < 255  # no clipping in this example
    np.testing.assert_allclose(matched.mean(axis=0), target.mean(axis=0), atol=1e-3)
    np.testing.assert_allclose(
        np.cov(matched, rowvar=False), np.cov(target, rowvar=False), rtol=1e-4, atol=1e-3
    )


def test_histogram_and_luminance_through_the_cli(inputs, network_path, tmp_path):
    parser = settings.build_parser()
    histogram = [*args(inputs, network_path, tmp_path), "--preserve-colors", "histogram"]
    options = settings.from_namespace(parser.parse_args(histogram))
    content, styles, _ = load_inputs(options)
    np.testing.assert_allclose(
        styles[0].reshape(-1, 3).mean(axis=0), content.reshape(-1, 3).mean(axis=0), atol=3
    )
    assert neural_style.main([*histogram, "--iterations", "1"]) == 0
    argv = [*args(inputs, network_path, tmp_path), "--iterations", "2", "--preserve-colors"]
    assert neural_style.main([*argv, "--output", str(tmp_path / "luminance.png")]) == 0
    out = images.read_image(str(tmp_path / "luminance.png"))
    assert out.shape == content.shape
    unclipped = np.all((out > 0) & (out < 255), axis=-1)
    chroma = np.abs(colors.rgb_to_ycbcr(out) - colors.rgb_to_ycbcr(content))[..., 1:]
    assert chroma[unclipped].max() <= 0.5 + 1e-4


# --- options -------------------------------------------------------------------------------


def test_help_shows_the_controls_choices_and_defaults(capsys):
    with pytest.raises(SystemExit):
        neural_style.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in (
        "--optimizer {adam,lbfgs}", "--pooling {max,avg}", "--init {noise,content,style}",
        "--preserve-colors [{luminance,histogram}]", "--seed N", "(default: adam)",
        "(default: 0.9)", "(default: 0.999)", "(default: 1e-08)", "(default: relu4_2)",
        "(default: relu1_1 relu2_1 relu3_1 relu4_1 relu5_1)", "(default: 0.0)",
    ):  # fmt: skip
        assert text in out, text


def test_remaining_options_end_to_end(inputs, network_path, tmp_path, capsys):
    argv = args(
        inputs, network_path, tmp_path, "--iterations", "3", "--print-iterations", "1",
        "--init", "style", "--initial-noiseblend", "0.5", "--beta1", "0.8", "--beta2", "0.99",
        "--epsilon", "1e-6", "--seed", "1",
    )  # fmt: skip
    assert neural_style.main(argv) == 0
    assert images.read_image(str(tmp_path / "out.png")).shape == (24, 32, 3)
    totals = [float(v) for v in re.findall(r"total loss: (\S+)", capsys.readouterr().err)]
    assert len(totals) == 3 and totals[-1] < totals[0]


def test_the_contact_sheet_shows_the_colours_written(inputs, network_path, tmp_path):
    """With --preserve-colors luminance, the sheet's tiles are the images as written."""
    from PIL import Image

    import progress

    output, sheet = tmp_path / "out.png", tmp_path / "sheet.png"
    argv = cli_args(inputs, network_path, output, "--iterations", "2", "--preserve-colors")
    assert neural_style.main([*argv, "--contact-sheet", str(sheet)]) == 0
    written = np.asarray(Image.open(output).convert("RGB"))
    tile = progress.thumbnail(written)
    shown = np.asarray(Image.open(sheet).convert("RGB"))[: tile.shape[0], : tile.shape[1]]
    np.testing.assert_array_equal(shown, tile)


def test_a_seeded_job_leaves_later_jobs_free(inputs, network_path, tmp_path, monkeypatch):
    """A batch job's --seed turns TensorFlow's deterministic ops on for that job only."""
    from tensorflow.python.framework import config

    import stylize

    real, seen = stylize.stylize, []

    def spy(*args, **kwargs):
        for step in real(*args, **kwargs):
            if step.iteration == 1:
                seen.append(config.is_op_determinism_enabled())
            yield step

    monkeypatch.setattr(stylize, "stylize", spy)
    rows = [f"{inputs['content']},{inputs['style1']},{tmp_path}/{k}.png,{seed}" for k, seed in
            ((1, "3"), (2, ""), (3, "4"))]  # fmt: skip
    manifest = tmp_path / "jobs.csv"
    manifest.write_text("\n".join(["content,styles,output,seed", *rows]) + "\n")
    argv = ["--batch", str(manifest), "--network", str(network_path), "--iterations", "1"]
    assert neural_style.main([*argv, "--quiet"]) == 0
    assert seen == [True, False, True]
    assert not config.is_op_determinism_enabled()
