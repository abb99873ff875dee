"""The command line through main(argv): end-to-end runs, console lines, option errors."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
from conftest import ROOT, losses_by_hand, save, smooth_image
from conftest import tmp_cli_args as args
from PIL import Image

import images
import neural_style
import progress
import settings


def test_end_to_end_with_checkpoints(inputs, network_path, tmp_path, capsys):
    argv = args(
        inputs, network_path, tmp_path,
        "--iterations", "7", "--checkpoint-iterations", "3",
        "--checkpoint-output", str(tmp_path / "ck%s.jpg"), "--print-iterations", "3",
    )  # fmt: skip
    assert neural_style.main(argv) == 0
    assert Image.open(tmp_path / "out.jpg").size == (32, 24)
    assert sorted(p.name for p in tmp_path.glob("ck*")) == ["ck3.jpg", "ck6.jpg"]
    err = capsys.readouterr().err
    assert [int(n) for n in re.findall(r"Iteration (\d+)/7", err)] == list(range(1, 8))
    # Loss blocks before iterations 1, 4 and 7 (the last).
    assert err.count("  content loss: ") == 3
    block = re.search(r"Iteration 1/7\n(.*?)Iteration 2/7", err, re.S).group(1)
    assert [line.index(":") for line in block.splitlines()] == [14] * 4
    assert [line.split(":")[0].strip() for line in block.splitlines()] == [
        "content loss", "style loss", "tv loss", "total loss",
    ]  # fmt: skip
    values = [float(line.split(":")[1]) for line in block.splitlines()]
    assert values[3] == pytest.approx(sum(values[:3]), rel=1e-5)


@pytest.mark.parametrize(
    ("pattern", "names"),
    [("c%05d.png", "c00002.png"), ("c{:03}.png", "c002.png"), ("v{}/c%d.png", "v{}/c2.png")],
)
def test_checkpoint_placeholders(inputs, network_path, tmp_path, pattern, names):
    argv = args(
        inputs, network_path, tmp_path, "--iterations", "3",
        "--checkpoint-iterations", "2", "--checkpoint-output", str(tmp_path / pattern),
    )  # fmt: skip
    assert neural_style.main(argv) == 0
    assert (tmp_path / names).is_file()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (("--progress-plot", "out.jpg"), "--output and --progress-plot both name"),
        (("--contact-sheet", "p.png", "--progress-plot", "p.png"), "--progress-plot and --c"),
        (("--checkpoint-iterations", "2", "--checkpoint-output", "c%s.png", "--progress-log",
          "c4.png"), "names {}c4.png, the --progress-log file"),
        (("--checkpoint-iterations", "1", "--checkpoint-output", "style%s.jpg"),
         "names {}style1.jpg, the --styles file"),
        (("--progress-log", "out.jpg.state"), "--progress-log and the run's state file both"),
    ],
)  # fmt: skip
def test_two_of_a_runs_files_with_one_name(inputs, network_path, tmp_path, capsys, extra, words):
    extra = [str(tmp_path / e) if "." in e else e for e in extra]
    before = set(tmp_path.iterdir())
    assert neural_style.main(args(inputs, network_path, tmp_path, *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words.format(f"{tmp_path}/") in err
    assert err.count("\n") == 1 and set(tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    ("option", "source", "words"),
    [
        ("--output", "content", "--output: {} is the --content file"),
        ("--progress-plot", "style1", "--progress-plot: {} is the --styles file"),
        ("--contact-sheet", "content", "--contact-sheet: {} is the --content file"),
    ],
)
def test_an_output_that_is_an_input(inputs, network_path, tmp_path, capsys, option, source, words):
    path = inputs[source]
    data = path.read_bytes()
    extra = (option, str(path), "--overwrite")
    assert neural_style.main(args(inputs, network_path, tmp_path, *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words.format(path) in err and err.count("\n") == 1
    assert path.read_bytes() == data


def test_a_checkpoint_that_cannot_be_written(inputs, network_path, tmp_path, capsys):
    (tmp_path / "c2.png").mkdir()  # in the way of the first checkpoint
    extra = ["--iterations", "6", "--checkpoint-iterations", "2"]
    extra += ["--checkpoint-output", str(tmp_path / "c%s.png"), "--quiet"]
    assert neural_style.main(args(inputs, network_path, tmp_path, *extra)) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"warning: {tmp_path / 'c2.png'}: cannot write image")
    assert err.count("\n") == 1 and "the run goes on" in err
    assert (tmp_path / "c4.png").is_file() and (tmp_path / "out.jpg").is_file()


def test_an_output_linked_to_an_input(inputs, network_path, tmp_path, capsys):
    link = tmp_path / "link.png"
    link.symlink_to(inputs["content"])  # another name of the same file
    data = inputs["content"].read_bytes()
    argv = args(inputs, network_path, tmp_path, "--output", str(link), "--overwrite")
    assert neural_style.main(argv) == 2
    assert "is the --content file" in capsys.readouterr().err
    assert inputs["content"].read_bytes() == data


def printed_losses(err: str) -> list[float]:
    """Every loss value printed on stderr, in order."""
    return [float(v) for v in re.findall(r"loss: (\S+)", err)]


def test_width_style_scales_blend_and_initial(inputs, network, network_path, tmp_path, capsys):
    """The first losses are those of the initial image at the width, against styles scaled
    to S_i * width and blended 1:3, worked out by hand."""
    initial = save(tmp_path / "initial.png", smooth_image(30, 40, 4))  # resized to 12x16
    argv = args(
        inputs, network_path, tmp_path, "--iterations", "2", "--width", "16",
        "--styles", str(inputs["style1"]), str(inputs["style2"]),
        "--style-scales", "0.5", "2", "--style-blend-weights", "1", "3",
        "--initial", str(initial), "--output", str(tmp_path / "o.png"),
        "--print-iterations", "1",
    )  # fmt: skip
    assert neural_style.main(argv) == 0
    assert Image.open(tmp_path / "o.png").size == (16, 12)
    printed = printed_losses(capsys.readouterr().err)[:4]

    def read(path, height: int, width: int) -> np.ndarray:
        return images.resize(images.read_image(str(path)), height, width)

    # Content 24x32 at width 16: 12x16. Style 1, 40x40, at 0.5 * 16 = 8 wide: 8x8; style 2,
    # 20x30, at 2 * 16 = 32 wide: round(20 * 32 / 30) = 21 high.
    content, start = read(inputs["content"], 12, 16), read(initial, 12, 16)
    styles = [read(inputs["style1"], 8, 8), read(inputs["style2"], 21, 32)]
    layers = settings.CONTENT_LAYERS, settings.STYLE_LAYERS
    expected = losses_by_hand(network, content, styles, start, *layers, blend=[1, 3])
    np.testing.assert_allclose(printed, expected, rtol=1e-4)
    # Each option changes those losses: equal blend weights, unscaled styles.
    equal = losses_by_hand(network, content, styles, start, *layers)
    unscaled = [read(inputs["style1"], 16, 16), read(inputs["style2"], 11, 16)]
    plain = losses_by_hand(network, content, unscaled, start, *layers, blend=[1, 3])
    for other in (equal, plain):
        assert abs(other[1] / expected[1] - 1) > 1e-2


def test_a_run_without_stderr(inputs, network_path, tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stderr", None)  # 2>&- closes it: Python then has none
    argv = args(inputs, network_path, tmp_path, "--iterations", "2", "--quiet")
    assert neural_style.main(argv) == 0
    sys.stderr.close()  # main's /dev/null, before the test's stderr comes back
    assert (tmp_path / "out.jpg").is_file()


def test_bfloat16_run(inputs, network_path, tmp_path, capsys):
    """The network runs in bfloat16: the losses of the same start are near float32's, not
    equal; the total variation, computed on the float32 image, is the same."""
    losses = {}
    for precision in ("float32", "bfloat16"):
        argv = args(
            inputs, network_path, tmp_path, "--iterations", "1", "--print-iterations", "1",
            "--initial", str(inputs["initial"]), "--precision", precision,
            "--output", str(tmp_path / f"{precision}.png"),
        )  # fmt: skip
        assert neural_style.main(argv) == 0
        assert Image.open(tmp_path / f"{precision}.png").size == (32, 24)
        losses[precision] = printed_losses(capsys.readouterr().err)
    (content, style, tv, _), (content16, style16, tv16, _) = losses.values()
    assert tv16 == tv
    # bfloat16 keeps 8 significant bits (a relative rounding of 2**-9 per value), which
    # through the layers moves these losses by a few percent at most, and surely by more
    # than the 6 significant digits printed.
    for low, full in ((content16, content), (style16, style)):
        assert low == pytest.approx(full, rel=0.05)
        assert low != pytest.approx(full, rel=1e-4)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--checkpoint-output", "ck.jpg", "--checkpoint-iterations", "2"], "placeholder"),
        (["--checkpoint-output", "ck%d_%d.jpg", "--checkpoint-iterations", "2"], "placeholder"),
        (["--checkpoint-output", "v{x}/ck.jpg", "--checkpoint-iterations", "2"], "placeholder"),
        (["--checkpoint-output", "ck%c.jpg", "--checkpoint-iterations", "2"], "in digits"),
        (["--checkpoint-output", "ck%5s.jpg", "--checkpoint-iterations", "2"], "in digits"),
        (["--checkpoint-output", "ck%-3d.jpg", "--checkpoint-iterations", "2"], "in digits"),
        (["--checkpoint-output", "ck{:x}.jpg", "--checkpoint-iterations", "2"], "in digits"),
        (["--checkpoint-output", "ck%o.jpg", "--checkpoint-iterations", "2"], "in digits"),
        (["--checkpoint-output", "ck%s.jpg"], "go together"),
        (["--checkpoint-iterations", "2"], "go together"),
        (["--style-blend-weights", "1", "2"], "2 values for 1 styles"),
        (["--style-scales", "1", "2"], "--style-scales has 2 values for 1 styles"),
        (["--content", "nowhere.jpg"], "nowhere.jpg does not exist"),
        (["--network", "nowhere.mat"], "nowhere.mat does not exist"),
        (["--iterations", "0"], "--iterations"),
        (["--width", "-3"], "--width"),
        (["--style-weight", "nan"], "--style-weight"),
        (["--learning-rate", "0"], "--learning-rate"),
        (["--output", "out.xyz"], "out.xyz"),
        (["--frobnicate"], "unrecognized"),
        (["--precision", "half"], "--precision"),
        # the controls of the result
        (["--style-layers", "relu1_1", "fc7"], "valid layers: conv1_1 relu1_1"),
        (["--content-layers", "relu4_3", "relu4_3"], "names a layer twice"),
        (["--content-weight-blend", "1.5"], "--content-weight-blend"),
        (["--content-weight-blend", "0.5", "--content-layers", "relu4_2"], "not --content-layers"),
        (["--style-layer-weight-exp", "0"], "--style-layer-weight-exp"),
        (["--pooling", "min"], "--pooling"),
        (["--optimizer", "sgd"], "--optimizer"),
        (["--beta1", "1"], "--beta1"),
        (["--epsilon", "0"], "--epsilon"),
        (["--preserve-colors", "hue"], "--preserve-colors"),
        (["--init", "content", "--initial", "x.png"], "use one"),
        (["--initial-noiseblend", "2"], "--initial-noiseblend"),
        (["--seed", "-1"], "--seed"),
        (["--max-memory", "6"], "--max-memory: must be a size such as 6GB or 1500MB, got '6'"),
        (["--max-memory", "0GB"], "--max-memory"),
        (["--max-memory", "lots"], "--max-memory"),
        (["--tile-size", "40"], "--tile-size: must be a multiple of 16 from 32, got '40'"),
        (["--tile-size", "16"], "--tile-size"),
    ],
)
def test_option_errors(inputs, network_path, tmp_path, capsys, extra, message):
    argv = args(inputs, network_path, tmp_path, *extra)
    assert neural_style.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert "Traceback" not in err
    assert not (tmp_path / "out.jpg").exists()


def default_text(field) -> str:
    """The default of a Settings field as --help words it."""
    if field.type == "bool":
        return "off"
    if field.metadata["shown"] is not None:
        return field.metadata["shown"]
    return "none" if field.default is None else str(field.default)


def help_entries(text: str) -> dict[str, str]:
    """--help's option entries by flag, each one's text on one line."""
    entries, flag = {}, None
    for line in text.splitlines():
        match = re.match(r"  (-\S+)", line)
        if match:
            flag = match[1].rstrip(",")
            entries[flag] = ""
        if flag is not None:
            entries[flag] += " " + line
    return {k: " ".join(v.split()) for k, v in entries.items()}


def readme_options() -> dict[str, str]:
    """README's option table: the default column of each row, by flag."""
    rows = re.findall(
        r"^\| `(--[a-z0-9-]+)[^`]*` \|([^|]*)\|", (ROOT / "README.md").read_text(), re.M
    )
    return {flag: default.strip().strip("`") for flag, default in rows}


def test_help_shows_every_option_with_defaults(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping, which may break words at hyphens
    with pytest.raises(SystemExit) as info:
        neural_style.main(["--help"])
    assert info.value.code == 0
    entries = help_entries(capsys.readouterr().out)
    flags = [a.option_strings[0] for a in settings.build_parser()._actions if a.dest != "help"]
    assert flags == [settings.flag(name) for name in settings.FIELDS]
    assert sorted(entries) == sorted([*flags, "-h"])
    for name, field in settings.FIELDS.items():
        entry = entries[settings.flag(name)]
        # The default, possibly followed by what it means here (": ..."), ends the entry.
        assert re.search(rf"\(default: {re.escape(default_text(field))}(: .*)?\)$", entry), entry
        assert " ".join(field.metadata["help"].replace("%%", "%").split()) in entry, entry
    # Every option is in README's table, nothing else is; numbers and choices have the same
    # default there.
    documented = readme_options()
    assert sorted(documented) == sorted(flags)
    for name, field in settings.FIELDS.items():
        if field.metadata["shown"] is None and field.default is not None and field.type != "bool":
            assert documented[settings.flag(name)] == str(field.default), name


def test_first_losses_are_the_output_sizes_with_several_scales(network_path, tmp_path, capsys):
    """Coarse to fine still prints the starting image's losses at the output size first."""
    content = save(tmp_path / "c.png", smooth_image(64, 72, 5))
    style = save(tmp_path / "s.png", smooth_image(64, 64, 6))
    initial = save(tmp_path / "i.png", smooth_image(64, 72, 7))
    blocks = []
    for scales in ("1", "3"):
        argv = [
            "--content", str(content), "--styles", str(style), "--initial", str(initial),
            "--network", str(network_path), "--output", str(tmp_path / f"o{scales}.png"),
            "--iterations", "4", "--print-iterations", "1", "--scales", scales,
            "--precision", "float32",
        ]  # fmt: skip
        assert neural_style.main(argv) == 0
        blocks.append([float(v) for v in re.findall(r"loss: (\S+)", capsys.readouterr().err)])
    np.testing.assert_allclose(blocks[1][:4], blocks[0][:4], rtol=1e-5)
    assert blocks[1][4:8] != blocks[0][4:8]  # the second block is at the coarser size


def test_precision_auto_is_chosen_by_the_hardware_and_logged(
    inputs, network_path, tmp_path, monkeypatch
):
    import json

    import hardware

    assert hardware.choose_precision({"avx512f", "avx512_bf16"}, None)[0] == "bfloat16"
    assert hardware.choose_precision({"amx_bf16"}, None)[0] == "bfloat16"
    assert hardware.choose_precision({"avx2", "avx512f"}, None)[0] == "float32"
    assert hardware.choose_precision({"avx512_bf16"}, (7, 5))[0] == "float32"  # the GPU runs it
    assert hardware.choose_precision(set(), (8, 6))[0] == "bfloat16"
    chosen, why = hardware.auto_precision()
    log = tmp_path / "log.jsonl"
    argv = args(inputs, network_path, tmp_path, "--iterations", "1", "--progress-log", str(log))
    assert neural_style.main([*argv, "--precision", "auto"]) == 0
    record = json.loads(log.read_text().splitlines()[0])
    assert (record["precision"], record["precision_reason"]) == (chosen, why)
    assert neural_style.main([*argv, "--precision", "float32", "--overwrite"]) == 0
    record = json.loads(log.read_text().splitlines()[-1])
    assert record["precision"] == "float32" and "asked for" in record["precision_reason"]


def test_a_plot_sheet_or_log_that_cannot_be_written(
    inputs, network_path, tmp_path, capsys, monkeypatch
):
    """Each is one warning, and the run writes its checkpoints and output all the same."""
    names = ("plot.png", "sheet.png", "log.jsonl")
    real = progress.Reporter.step

    def step(self, step):  # the files' places taken once the run has begun
        for name in names:
            (tmp_path / name).mkdir(exist_ok=True)
        real(self, step)

    monkeypatch.setattr(progress.Reporter, "step", step)
    extra = ["--iterations", "4", "--checkpoint-iterations", "2", "--quiet"]
    extra += ["--checkpoint-output", str(tmp_path / "c%s.png")]
    options = ("--progress-plot", "--contact-sheet", "--progress-log")
    for option, name in zip(options, names, strict=True):
        extra += [option, str(tmp_path / name)]
    assert neural_style.main(args(inputs, network_path, tmp_path, *extra)) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 3 and err.count("the run goes on") == 3, err
    for name in names:
        assert f"warning: {tmp_path / name}: cannot write" in err
    assert (tmp_path / "c2.png").is_file() and (tmp_path / "out.jpg").is_file()
