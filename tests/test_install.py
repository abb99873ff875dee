"""The installed distribution: the wheel's contents, and the command installed next to PyPI's
`progress` and `ansicolors` (whose top-level `progress` and `colors` would hide modules of ours
that were installed at the top level).

Nothing here downloads TensorFlow: the project is installed with --no-deps into a folder of its
own, and run by the interpreter of the tests, which has TensorFlow, with PYTHONPATH set to that
folder. (A venv with --system-site-packages would see the base Python's packages, not those of
the venv the tests run in, so it would have no TensorFlow when the tests run in a venv.)
PYTHONPATH comes before site-packages, so the folder's `progress` and `colors` win there as they
would in a user's environment.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, cli_args
from PIL import Image

PACKAGE = "neural_style_tf2"
COMMAND = "neural-style-tf2"
# What the build reads, and folders it must leave out; not the rest of a checkout (which may hold
# a 510 MB network file or images).
BUILD_FILES = ("pyproject.toml", "MANIFEST.in", "README.md", "requirements.txt")
OTHER_FOLDERS = ("tests", "bench", "tools")


def pip(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """python -m pip with args, output captured."""
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def pip_failure(done: subprocess.CompletedProcess) -> str:
    """Why pip failed: the index was unreachable (its warning says so), else its errors."""
    lines = done.stderr.splitlines()
    unreachable = [line for line in lines if "connection" in line.lower()]
    if unreachable:
        return "the package index is unreachable: " + unreachable[-1][:300]
    errors = [line for line in lines if line.startswith("ERROR")]
    return " ".join(errors) or (lines or ["no output"])[-1]


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built offline from a copy of the checkout (pip builds in place)."""
    if importlib.util.find_spec("setuptools") is None:  # TensorFlow depends on it
        pytest.skip("setuptools is not installed: the wheel cannot be built without the network")
    source = tmp_path_factory.mktemp("source") / "project"
    source.mkdir()
    caches = shutil.ignore_patterns("__pycache__")
    for folder in OTHER_FOLDERS:
        shutil.copytree(ROOT / folder, source / folder, ignore=caches)
    for path in [*ROOT.glob("*.py"), *(ROOT / name for name in BUILD_FILES)]:
        shutil.copy2(path, source)
    out = tmp_path_factory.mktemp("wheel")
    done = pip(
        "wheel", "--no-deps", "--no-index", "--no-build-isolation", "--check-build-dependencies",
        "--wheel-dir", str(out), str(source),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_holds_the_root_modules_as_one_package_and_the_command(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = configparser.ConfigParser()
        entry_points.read_string(archive.read(f"{info}/entry_points.txt").decode())
        metadata = archive.read(f"{info}/METADATA").decode()
    modules = sorted(n for n in names if not n.startswith(f"{info}/"))
    assert modules == sorted(f"{PACKAGE}/{p.name}" for p in ROOT.glob("*.py"))
    assert info.startswith(f"{PACKAGE}-")
    assert dict(entry_points["console_scripts"]) == {COMMAND: f"{PACKAGE}.neural_style:script"}
    assert "Name: neural-style-tf2\n" in metadata
    # tensorflow-cpu next to tensorflow (for a GPU) would overwrite each other's files
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert any(line.startswith("Requires-Dist: tensorflow<") for line in requires)
    assert not any("tensorflow-cpu" in line for line in requires)


@pytest.fixture(scope="session")
def pypi_wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """PyPI's `progress` and `ansicolors` wheels, downloaded once; skips without PyPI."""
    folder = tmp_path_factory.mktemp("pypi")
    try:
        done = pip(
            "download", "--no-deps", "--only-binary=:all:", "--timeout", "15", "--retries", "1",
            "--dest", str(folder), "progress", "ansicolors",
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.skip("cannot download progress and ansicolors from PyPI: no answer in 120 s")
    if done.returncode != 0:
        pytest.skip(f"cannot download progress and ansicolors from PyPI: {pip_failure(done)}")
    return sorted(folder.glob("*.whl"))


@pytest.fixture(scope="session")
def installed(wheel, pypi_wheels, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the project installed (not editable) next to progress and ansicolors."""
    target = tmp_path_factory.mktemp("site")
    done = pip("install", "--no-deps", "--no-index", "--target", str(target), wheel, *pypi_wheels)
    assert done.returncode == 0, done.stderr
    return target


def environment(target: Path) -> dict[str, str]:
    """This environment with the installed folder as the only PYTHONPATH entry."""
    return {**os.environ, "PYTHONPATH": str(target)}


def test_installed_command_runs_next_to_pypi_progress_and_colors(
    installed, inputs, network_path, tmp_path
):
    command = installed / "bin" / COMMAND
    output = tmp_path / "out.png"
    argv = cli_args(inputs, network_path, output, "--iterations", "2", "--seed", "1", "--quiet")
    done = subprocess.run(
        [str(command), *argv],
        cwd=tmp_path,  # not the checkout, whose modules must not be the ones found
        env=environment(installed),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with Image.open(output) as image:
        assert image.format == "PNG"
        assert image.size == Image.open(inputs["content"]).size
        image.load()

    usage = subprocess.run(
        [str(command), "--help"],
        cwd=tmp_path,
        env=environment(installed),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert usage.stdout.startswith(f"usage: {COMMAND} ")


def test_installed_names_do_not_collide(installed, tmp_path):
    code = (
        "import colors, progress, progress.bar, neural_style_tf2.progress as ours\n"
        "print(progress.__file__, colors.__file__, ours.__file__, colors.red('x'), sep='\\n')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=environment(installed),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    theirs_progress, theirs_colors, ours, red = done.stdout.splitlines()
    assert Path(theirs_progress) == installed / "progress" / "__init__.py"
    assert Path(theirs_colors) == installed / "colors" / "__init__.py"
    assert Path(ours) == installed / PACKAGE / "progress.py"
    assert red == "\x1b[31mx\x1b[0m"  # ansicolors' colors.red
    assert not (installed / "progress.py").exists() and not (installed / "colors.py").exists()


def test_usage_names_the_command_typed(monkeypatch):
    """argparse's prog is the basename of sys.argv[0]: neural_style.py in a checkout."""
    import settings

    for typed, name in ((str(ROOT / "neural_style.py"), "neural_style.py"), (COMMAND, COMMAND)):
        monkeypatch.setattr(sys, "argv", [typed, "--help"])
        assert settings.build_parser().format_usage().startswith(f"usage: {name} ")
