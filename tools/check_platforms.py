"""Check that the requirements files resolve to wheels on every supported platform.

For each platform and Python version, runs

    pip download --only-binary=:all: --dest TMP -r FILE --platform ... --python-version ...
        --implementation cp

(requirements-gpu.txt on Linux x86-64 only) and prints a table: resolved, with the TensorFlow
wheel and the download size, or failed, with pip's reason. It needs the package index, so it is
a tool to run by hand after changing a requirements file, not a test. It installs and runs
nothing: it shows that pip finds wheels for every requirement, not that they work.

    python tools/check_platforms.py                      # Python 3.10 and 3.13, full downloads
    python tools/check_platforms.py --python 3.11 3.12
    python tools/check_platforms.py --resolve-only       # the wheels' metadata only, no gigabytes
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manylinux(arch: str, glibc_minor: int = 28) -> list[str]:
    """The manylinux tags a glibc 2.<glibc_minor> Linux accepts (pip does not expand them)."""
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc_minor, 16, -1)]
    return [*tags, f"manylinux2014_{arch}"]


@dataclass(frozen=True)
class Platform:
    name: str
    tags: tuple[str, ...]
    files: tuple[str, ...] = ("requirements.txt",)


# The oldest systems targeted: glibc 2.28 (Debian 10, RHEL 8, Ubuntu 20.04 has 2.31), macOS 12
# (TensorFlow's own minimum on arm64; pip adds the older macOS and universal2 tags), Windows 10+.
PLATFORMS = (
    Platform(
        "linux x86_64", tuple(manylinux("x86_64")), ("requirements.txt", "requirements-gpu.txt")
    ),
    Platform("linux aarch64", tuple(manylinux("aarch64"))),
    Platform("macos arm64", ("macosx_12_0_arm64",)),
    Platform("windows amd64", ("win_amd64",)),
)


def pip_command(requirements: Path, target: Platform, python: str, dest: Path) -> list[str]:
    """The pip download command for one platform and Python version."""
    tags = [arg for tag in target.tags for arg in ("--platform", tag)]
    return [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-cache-dir",
        "--only-binary=:all:", "--dest", str(dest), "-r", str(requirements),
        *tags, "--python-version", python, "--implementation", "cp",
    ]  # fmt: skip


def dry_run_command(requirements: Path, target: Platform, python: str, dest: Path) -> list[str]:
    """The same resolution without downloading the wheels: pip reads only their metadata."""
    command = pip_command(requirements, target, python, dest)
    start = command.index("download")
    command[start : start + 1] = ["install", "--dry-run", "--ignore-installed"]
    command[command.index("--dest")] = "--target"
    return [*command, "--report", str(dest / "report.json")]


def reason(stderr: str) -> str:
    """pip's own error lines, joined, without its warnings about unused index locations."""
    lines = [line.strip() for line in stderr.splitlines() if line.startswith("ERROR:")]
    return " ".join(lines).replace("ERROR: ", "") or stderr.strip().splitlines()[-1]


def check(requirements: Path, target: Platform, python: str, resolve_only: bool) -> str:
    """'resolved: ...' or 'failed: reason' for one requirements file, platform and Python."""
    with tempfile.TemporaryDirectory(prefix="check-platforms-") as tmp:
        dest = Path(tmp)
        make = dry_run_command if resolve_only else pip_command
        done = subprocess.run(
            make(requirements, target, python, dest), capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            return "failed: " + reason(done.stderr)
        if resolve_only:
            report = json.loads((dest / "report.json").read_text())
            names = [item["download_info"]["url"].rsplit("/", 1)[1] for item in report["install"]]
            size = ""
        else:
            wheels = sorted(dest.glob("*.whl"))
            names = [wheel.name for wheel in wheels]
            size = f", {sum(wheel.stat().st_size for wheel in wheels) / 2**20:.0f} MiB"
        tensorflow = " ".join(name for name in names if name.lower().startswith("tensorflow"))
        # pip takes a pre-release when no release fits (a Python newer than TensorFlow's)
        early = " (a pre-release only)" if re.search(r"-[\d.]+(a|b|rc|dev)\d", tensorflow) else ""
        return f"resolved{early}: {len(names)} wheels{size}; {tensorflow}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", nargs="+", default=["3.10", "3.13"], metavar="X.Y")
    parser.add_argument(
        "--resolve-only",
        action="store_true",
        help="resolve with pip install --dry-run (wheel metadata only) instead of downloading",
    )
    args = parser.parse_args(argv)
    print(
        f"# on {platform.machine()} {platform.system()}, Python {platform.python_version()}, "
        f"{'pip install --dry-run' if args.resolve_only else 'pip download'}"
    )
    print("| platform | Python | file | result |")
    print("| --- | --- | --- | --- |")
    failed = 0
    for target in PLATFORMS:
        for python in args.python:
            for name in target.files:
                result = check(ROOT / name, target, python, args.resolve_only)
                failed += result.startswith("failed")
                print(f"| {target.name} | {python} | {name} | {result} |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
