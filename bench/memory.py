"""Peak memory of the CLI against image size, and the fit behind neural_style's estimate.

Runs `python neural_style.py` (2 iterations) in fresh processes with a full-width VGG-19 of
random weights (tests/fake_vgg.py), varying the content size and the style size separately,
and prints each run's peak resident memory (VmHWM) and a least-squares fit
`peak = base + per_content_pixel * content + per_style_pixel * style`.

    python bench/memory.py
    python bench/memory.py --sizes 128 256 384 --mat-load     # also the uncached .mat load
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (run_cli, prepare_image, fake_vgg)


def main() -> None:
    """Measure, print the table and the fit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 384, 512])
    parser.add_argument("--mat-load", action="store_true", help="also a real-size uncached .mat")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        mat = folder / "vgg.mat"
        bench.fake_vgg.write_vgg_mat(str(mat), "new", widths=bench.fake_vgg.FULL_WIDTHS)
        print(f"network: full-width VGG-19 with RANDOM weights ({mat.stat().st_size >> 20} MB)")
        env = {**bench.os.environ, "NEURAL_STYLE_HOME": str(folder / "cache")}
        small = bench.prepare_image(bench.CONTENT, 32, 32, folder)

        def peak(content: Path, scale: float, network: Path, *extra: str) -> float:
            run = bench.run_cli(
                ["--content", str(content), "--styles", str(bench.STYLE), "--style-scales",
                 str(scale), "--network", str(network), "--output", str(folder / "out.png"),
                 "--iterations", "2", *extra],
                env,
            )  # fmt: skip
            return run.peak_kb / 1024

        peak(small, 1.0, mat)  # fills the weights cache
        rows = []
        print(f"{'content':>10}{'style':>10}{'peak MB':>10}")
        for side in args.sizes:
            content = bench.prepare_image(bench.CONTENT, side, side, folder)
            for what, (image, scale, c, s) in {
                "content": (content, 32 / side, side * side, 32 * 32),
                "style": (small, side / 32, 32 * 32, side * side),
            }.items():
                mb = peak(image, scale, mat)
                rows.append((c, s, mb))
                print(f"{c:>10}{s:>10}{mb:>10.0f}  ({what} {side}x{side})", flush=True)
        a = np.array([[1, c, s] for c, s, _ in rows], float)
        y = np.array([mb for *_, mb in rows])
        (base, per_c, per_s), *_ = np.linalg.lstsq(a, y, rcond=None)
        worst = max(abs(a @ [base, per_c, per_s] - y))
        print(
            f"fit: peak MB = {base:.0f} + {per_c * 2**20:.0f} B x content px"
            f" + {per_s * 2**20:.0f} B x style px (worst misfit {worst:.0f} MB)"
        )
        if args.mat_load:
            real = folder / "vgg-fc.mat"
            bench.fake_vgg.write_vgg_mat(
                str(real), "new", widths=bench.fake_vgg.FULL_WIDTHS, fc=True
            )
            mb = peak(small, 1.0, real, "--no-cache")
            print(
                f"32x32, real-size .mat ({real.stat().st_size >> 20} MB), --no-cache: {mb:.0f} MB"
            )


if __name__ == "__main__":
    main()
