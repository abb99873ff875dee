"""Batch runs: the batch file, per-job options, shards, resume, the summary; stopping cleanly."""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import re
import signal
import threading
from dataclasses import dataclass, field

# Options that hold for the whole batch and cannot be a column of the batch file.
BATCH_ONLY = (
    *("help", "batch", "shard", "overwrite", "quiet"),
    *("network", "no_download", "no_cache", "download_network"),
)
# Files a job writes that no other job of the batch may write too (a log may be shared).
JOB_FILES = ("output", "checkpoint_output", "progress_plot", "contact_sheet")
LIST_SEPARATOR = ";"  # between the values of a list option in a CSV cell
JSONL_EXTENSIONS = (".jsonl", ".ndjson")
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


def parse_shard(text: str) -> tuple[int, int]:
    """An argparse type: 'K/N' with 0 <= K < N, as (K, N)."""
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not int(match[1]) < int(match[2]):
        raise argparse.ArgumentTypeError(f"must be K/N with 0 <= K < N, got '{text}'")
    return int(match[1]), int(match[2])


def _job_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The options a batch file's column may set, by dest (style_weight, ...)."""
    actions = parser._actions  # argparse has no public list of its options
    return {a.dest: a for a in actions if a.option_strings and a.dest not in BATCH_ONLY}


def _check_columns(path: str, where: str, row: dict, allowed: dict) -> dict:
    """row with its keys as option dests; ValueError naming a column that is not an option."""
    named = {}
    for key, value in row.items():
        if key is None:
            raise ValueError(f"{path}: {where} has more cells than the header")
        name = str(key).strip().lstrip("-").replace("-", "_").lower()
        if name in BATCH_ONLY:
            raise ValueError(
                f"{path}: column '{key}' is set for the whole batch on the command line"
            )
        if name not in allowed:
            raise ValueError(
                f"{path}: unknown column '{key}'; columns are long option names, e.g. "
                "content, styles, output, width, iterations, style_weight"
            )
        named[name] = value
    return named


def read_rows(path: str, parser: argparse.ArgumentParser) -> list[dict]:
    """The jobs of a CSV (header row) or JSON Lines file, as {option dest: value} dicts."""
    allowed = _job_options(parser)
    rows = []
    try:
        # utf-8-sig: spreadsheets often start a CSV with a byte order mark.
        with open(path, newline="", encoding="utf-8-sig") as file:
            if path.lower().endswith(JSONL_EXTENSIONS):
                for number, line in enumerate(file, start=1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path}: line {number}: not JSON ({exc.msg})") from None
                    if not isinstance(row, dict):
                        raise ValueError(f"{path}: line {number}: not a JSON object")
                    rows.append(_check_columns(path, f"line {number}", row, allowed))
            else:
                reader = csv.DictReader(file)
                for row in reader:
                    rows.append(_check_columns(path, f"line {reader.line_num}", row, allowed))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: not a CSV or JSON Lines file ({exc})") from None
    if not rows:
        raise ValueError(f"{path}: no jobs")
    return rows


def job_namespace(
    parser: argparse.ArgumentParser, base: argparse.Namespace, row: dict
) -> argparse.Namespace:
    """The command line's options with row's values on top, parsed and checked by parser.

    Empty cells and JSON nulls keep the command line's value. A list option takes a JSON list
    or, in CSV, values separated by ';'. A flag takes true/false (false: its default); a JSON
    true or false does the same for an option whose value is optional.
    """
    actions = _job_options(parser)
    options = copy.deepcopy(base)
    tokens: list[str] = []
    for name, value in row.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        action = actions[name]
        flag = action.option_strings[-1]
        if action.nargs == 0 or isinstance(value, bool):
            text = str(value).strip().lower()
            if text not in TRUE + FALSE:
                parser.error(f"argument {flag}: must be true or false, got '{value}'")
            if text in TRUE:
                tokens.append(flag)
            else:
                setattr(options, name, action.default)
        elif action.nargs in ("+", "*"):
            values = value if isinstance(value, list) else str(value).split(LIST_SEPARATOR)
            tokens += [flag, *(str(v).strip() for v in values)]
        else:
            tokens.append(f"{flag}={value}")
    # Attributes already in the namespace are kept, so only the row's tokens override them.
    return parser.parse_args(tokens, namespace=options)


def check_distinct(jobs: list[argparse.Namespace | str]) -> None:
    """ValueError if two jobs would write the same file (output, checkpoints, plot, sheet)."""
    seen: dict[str, int] = {}
    for number, job in enumerate(jobs, start=1):
        if isinstance(job, str):
            continue
        for name in JOB_FILES:
            value = getattr(job, name, None)
            if value is None:
                continue
            path = os.path.abspath(value)
            if path in seen and seen[path] != number:
                raise ValueError(f"jobs {seen[path]} and {number} both write {value} ({name})")
            seen[path] = number


def in_shard(index: int, shard: tuple[int, int] | None) -> bool:
    """Whether the job at 0-based index belongs to shard (K, N): index % N == K."""
    return shard is None or index % shard[1] == shard[0]


def interrupted_path(output: str) -> str:
    """Where a batch job's unfinished best image goes: NAME.interrupted.EXT beside output."""
    name, extension = os.path.splitext(output)
    return f"{name}.interrupted{extension}"


@dataclass
class Summary:
    """What a batch did: counts of finished and skipped jobs, and each failure's reason."""

    done: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The closing summary: one line of counts, then one line per failure."""
        counts = f"batch: {self.done} done, {self.skipped} skipped, {len(self.failed)} failed"
        return [counts, *(f"  failed: {reason}" for reason in self.failed)]


class Interrupted(BaseException):
    """SIGINT or SIGTERM ended the run; status is the exit status (128 + the signal number)."""

    def __init__(self, signum: int, message: str):
        super().__init__(f"{message} ({signal.Signals(signum).name})")
        self.status = 128 + signum


class Interrupts:
    """Catch SIGINT and SIGTERM while in this context, restoring the old handlers on exit.

    Before the optimisation runs (loading) a signal ends the run at once, as nothing is being
    written then. Once it runs (`running`), a signal only sets a flag that stylize's stop()
    reads, so the loop ends between iterations and never cuts a file write short. A signal
    the process was told to ignore (a shell's `command &` ignores SIGINT) stays ignored.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.running = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is not threading.main_thread():  # Python forbids it
            return self
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is not signal.SIG_IGN:  # e.g. a shell's `command &`
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        self.signum = signum
        if not self.running:
            raise Interrupted(signum, "before the optimisation started; nothing written")

    def stop(self) -> bool:
        """Whether a signal asked the run to stop (stylize's stop callback)."""
        return self.signum is not None
