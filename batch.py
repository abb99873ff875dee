"""Batch runs: the batch file, per-job settings, shards, skipping finished jobs, the summary."""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import io
import itertools
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

if __package__:  # installed: the modules are the package neural_style_tf2
    from . import inputs, job, media
    from . import settings as options
    from .interrupts import Interrupted, Interrupts
    from .settings import Settings, UsageError
else:  # a checkout: the modules side by side
    import inputs
    import job
    import media
    import settings as options
    from interrupts import Interrupted, Interrupts
    from settings import Settings, UsageError

LIST_SEPARATOR = ";"  # between the values of a list option in a CSV cell
JSONL_EXTENSIONS = (".jsonl", ".ndjson")
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")
DIGITS = "0123456789"


def _job_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The options a batch file's column may set, by name (style_weight, ...)."""
    actions = parser._actions  # argparse has no public list of its options
    return {a.dest: a for a in actions if a.dest in options.JOB_OPTIONS}


def _check_columns(path: str, where: str, row: dict, allowed: dict) -> dict:
    """row with its keys as option dests; ValueError naming a column that is not an option."""
    named = {}
    for key, value in row.items():
        if key is None:
            raise ValueError(f"{path}: {where} has more cells than the header")
        name = str(key).strip().lstrip("-").replace("-", "_").lower()
        if name in options.FIELDS and name not in allowed:
            raise ValueError(
                f"{path}: column '{key}' is set for the whole batch on the command line"
            )
        if name not in allowed:
            raise ValueError(
                f"{path}: unknown column '{key}'; the first line names the columns, by long"
                " option names: content, styles, output, width, iterations, style_weight, ..."
            )
        named[name] = value
    return named


def read_rows(path: str, parser: argparse.ArgumentParser) -> list[dict]:
    """The jobs of a CSV (header row) or JSON Lines file ("-": standard input), as {option
    dest: value} dicts; rows with no value are no jobs (a spreadsheet's blank lines)."""
    allowed = _job_options(parser)
    try:
        # Read whole (a pipe, <(...), can be read once), as UTF-8 whatever the locale's
        # encoding; utf-8-sig: spreadsheets often start a CSV with a byte order mark.
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as file:
                data = file.read()
        rows = _rows(path, data.decode("utf-8-sig"), allowed)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: not a UTF-8 CSV or JSON Lines file ({exc})") from None
    rows = [row for row in rows if any(_given(value) for value in row.values())]
    if not rows:
        raise ValueError(f"{path}: no jobs")
    return rows


def _given(value: object) -> bool:
    """Whether a cell or JSON value sets its option (empty cells and nulls do not)."""
    return value is not None and not (isinstance(value, str) and not value.strip())


def _rows(path: str, text: str, allowed: dict) -> list[dict]:
    """The rows of a batch file's text: JSON Lines by the file's extension or a first line
    that is a JSON object, else CSV."""
    start = text.lstrip()[:1]
    if start == "[":
        raise ValueError(f"{path}: a JSON array; give one JSON object per line (JSON Lines)")
    if path.lower().endswith(JSONL_EXTENSIONS) or start == "{":
        rows = []
        # split("\n"), not splitlines(): U+2028 and the like may stand in a JSON string
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}: line {number}: not a JSON object")
            rows.append(_check_columns(path, f"line {number}", row, allowed))
        return rows
    # skipinitialspace: a quoted cell after ", " is unquoted as after ",".
    reader = csv.DictReader(io.StringIO(text, newline=""), skipinitialspace=True)
    _check_columns(path, "the header", dict.fromkeys(reader.fieldnames or ()), allowed)
    return [_check_columns(path, f"line {reader.line_num}", row, allowed) for row in reader]


def job_settings(parser: argparse.ArgumentParser, base: Settings, row: dict) -> Settings:
    """The command line's settings with row's values on top, parsed and checked by parser.

    Empty cells and JSON nulls keep the command line's value. A list option takes a JSON list
    or, in CSV, values separated by ';'. A flag takes true/false (false: its default); so does
    an option whose value is optional (true: the bare flag), as well as its values. A JSON
    boolean is refused for any other option. Values are stripped of spaces.
    """
    actions = _job_options(parser)
    namespace = argparse.Namespace(**dataclasses.asdict(base))
    tokens: list[str] = []
    for name, value in row.items():
        if not _given(value):
            continue
        action = actions[name]
        flag = action.option_strings[-1]
        if isinstance(value, bool) and action.nargs not in (0, "?"):
            parser.error(f"argument {flag}: expected a value, got {str(value).lower()}")
        text = str(value).strip()
        # An optional value's true or false (for --preserve-colors: luminance, or off).
        switch = action.nargs == "?" and text.lower() in TRUE + FALSE
        if action.nargs == 0 or isinstance(value, bool) or switch:
            if text.lower() not in TRUE + FALSE:
                parser.error(f"argument {flag}: must be true or false, got '{value}'")
            if text.lower() in TRUE:
                tokens.append(flag)
            else:
                setattr(namespace, name, action.default)
        elif action.nargs in ("+", "*"):
            values = value if isinstance(value, list) else str(value).split(LIST_SEPARATOR)
            tokens += [flag, *(_not_an_option(str(v).strip()) for v in values)]
        else:
            tokens.append(f"{flag}={text}")  # a CSV's spaces after commas are not the value's
    # Attributes already in the namespace are kept, so only the row's tokens override them.
    return options.from_namespace(parser.parse_args(tokens, namespace=namespace))


def _not_an_option(value: str) -> str:
    """A list's value as argparse takes it: a file named -x.jpg as ./-x.jpg (argparse would
    take -x.jpg for an option and end the list), a number as it is."""
    try:
        float(value)
    except ValueError:
        return os.path.join(".", value) if value.startswith("-") else value
    return value


def _pattern_key(pattern: str) -> tuple[str, str, str]:
    """Where a checkpoint pattern's files go: their folder (resolved), and the text of their
    names before and after the number less the digits beside it. Two patterns that may name
    one file (a%s.png, a1%s.png: a110.png) have one key."""
    prefix, suffix = media.number_parts(pattern)
    folder = media.file_key(os.path.dirname(pattern) or ".")
    return folder, prefix.rstrip(DIGITS), suffix.lstrip(DIGITS)


def _name_keys(path: str) -> list[tuple[str, str, str]]:
    """The keys (_pattern_key) of the patterns that may name path: one per run of digits."""
    folder, name = os.path.split(path)
    folder, name = media.file_key(folder or "."), os.path.normcase(name)
    return [(folder, name[: m.start()], name[m.end() :]) for m in re.finditer("[0-9]+", name)]


def check_distinct(jobs: list[Settings | str]) -> None:
    """ValueError if two jobs would write one file (output, unfinished image, plot, sheet or a
    checkpoint), or one would write another's input: found as a run finds its own, files by
    their resolved path, checkpoints by their names."""
    ready = [(number, item) for number, item in enumerate(jobs, 1) if isinstance(item, Settings)]
    written = _written(ready)
    patterned: dict[tuple[str, str, str], list[tuple[int, Settings]]] = {}
    for number, item in ready:
        with contextlib.suppress(ValueError):  # a bad pattern is its own job's error
            if item.checkpoint_output and (item.checkpoint_iterations or 0) > 0:
                key = _pattern_key(item.checkpoint_output)
                patterned.setdefault(key, []).append((number, item))
    for number, path in written.values():
        for key in _name_keys(path):
            for other, item in patterned.get(key, []):
                if other != number and options.is_checkpoint(item, path):
                    raise ValueError(f"jobs {number} and {other} both write {path}")
    for group in patterned.values():  # more than one only if their names may meet
        for pair in itertools.combinations(group, 2):
            _check_checkpoints(*pair)


def _written(ready: list[tuple[int, Settings]]) -> dict[str, tuple[int, str]]:
    """{file key: (job number, path as given)} of the jobs' files but their checkpoints;
    ValueError if two jobs write one, or one writes another's input."""
    read = {
        media.file_key(path): number
        for number, item in ready
        for path in (item.content, *(item.styles or ()), item.initial)
        if path is not None
    }
    written: dict[str, tuple[int, str]] = {}
    for number, item in ready:
        unfinished = options.interrupted_path(item.output) if item.output else None
        for path in (item.output, unfinished, item.progress_plot, item.contact_sheet):
            if path is None:
                continue
            key = media.file_key(path)
            if read.get(key, number) != number:  # (a job's own inputs: its own check)
                raise ValueError(f"job {number} writes {path}, which job {read[key]} reads")
            first, _ = written.setdefault(key, (number, path))
            if first != number:
                raise ValueError(f"jobs {first} and {number} both write {path}")
    return written


def _check_checkpoints(one: tuple[int, Settings], other: tuple[int, Settings]) -> None:
    """ValueError if two jobs' checkpoint patterns name one file."""
    (first, settings), (second, others) = one, other
    every = settings.checkpoint_iterations
    for iteration in range(every, settings.iterations + 1, every):
        path = media.numbered(settings.checkpoint_output, iteration)
        if options.is_checkpoint(others, path):
            raise ValueError(f"jobs {first} and {second} both write {path}")


def in_shard(index: int, shard: tuple[int, int] | None) -> bool:
    """Whether the job at 0-based index belongs to shard (K, N): index % N == K."""
    return shard is None or index % shard[1] == shard[0]


@dataclass
class Summary:
    """What a batch did: counts of finished and skipped jobs, and each failure's reason."""

    jobs: int  # of this shard
    done: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The closing summary: one line of counts (and of the jobs not run or not finished,
        if a signal or the network ended the batch), then one line per failure."""
        counts = f"batch: {self.done} done, {self.skipped} skipped, {len(self.failed)} failed"
        left = self.jobs - self.done - self.skipped - len(self.failed)
        counts += f", {left} not run" if left else ""
        return [counts, *(f"  failed: {reason}" for reason in self.failed)]


def read_jobs(parser: argparse.ArgumentParser, settings: Settings) -> tuple[list, list]:
    """The batch file's rows and, per row, its job's settings or why it cannot run."""
    batch = settings.batch
    if batch != "-" and (not os.path.exists(batch) or os.path.isdir(batch)):
        raise UsageError(f"--batch: {batch} does not exist or is not a file")
    if settings.network is not None:  # the whole batch's: once, not as each job's failure
        options.check_input("--network", settings.network)
    try:
        rows = read_rows(settings.batch, parser)
    except (ValueError, OSError) as exc:
        raise UsageError(f"--batch: {exc}") from None
    jobs: list[Settings | str] = []
    for row in rows:
        try:
            jobs.append(job_settings(parser, settings, row))
        except UsageError as exc:
            jobs.append(str(exc))  # this job fails with that reason; the others go on
    try:
        check_distinct(jobs)
    except ValueError as exc:
        raise UsageError(f"--batch: {exc}") from None
    return rows, jobs


def _ready(item: Settings | str, overwrite: bool, on_gpu: bool) -> bool:
    """Whether a job is to run (False: its output exists); raises why it cannot run."""
    if isinstance(item, str):
        raise UsageError(item)
    # An output beside a state is an interrupted run's best image: the job resumes it.
    done = item.output and os.path.isfile(item.output)
    if done and not overwrite and not os.path.exists(options.state_path(item.output)):
        return False  # (a folder there is the job's error, from validate)
    options.validate(item)
    inputs.check_inputs(item, on_gpu)
    job.check_state(item)  # before the network loads, for the first job to run
    return True


def run_batch(
    parser: argparse.ArgumentParser,
    settings: Settings,
    interrupts: Interrupts,
    load_network: Callable[[], object],
    on_gpu: bool = False,
) -> int:
    """Run the batch file's jobs (of this shard), skipping finished ones; 1 if any failed."""
    rows, jobs = read_jobs(parser, settings)
    shard = sum(in_shard(index, settings.shard) for index in range(len(jobs)))
    summary, weights, cache = Summary(shard), None, {}

    def say(text: str) -> None:
        if not settings.quiet:
            print(text, file=sys.stderr)

    def fail(name: str, exc: Exception) -> None:
        summary.failed.append(f"{name}: {options.one_line(exc)}")
        print(f"error: {summary.failed[-1]}", file=sys.stderr)

    try:
        for index, item in enumerate(jobs):
            if not in_shard(index, settings.shard):
                continue
            label = f"job {index + 1}/{len(jobs)}"
            output = rows[index].get("output") if isinstance(item, str) else item.output
            name = f"{label} ({output})" if output else label
            try:
                ready = _ready(item, settings.overwrite, on_gpu)
            except (UsageError, ValueError, OSError) as exc:
                fail(name, exc)
                continue
            if not ready:
                say(f"{label}: {item.output} exists, skipped")
                summary.skipped += 1
                continue
            if weights is None:  # loaded when a job first needs it; failing ends the batch
                weights = load_network()
            say(f"{label}: {item.output}")
            try:
                _run_job(item, weights, interrupts, label, cache)
                summary.done += 1
            except (ValueError, OSError) as exc:
                fail(name, exc)
            if interrupts.stop():  # the signal came as the job finished
                raise Interrupted(interrupts.signum, f"after {label}")
    finally:
        for line in summary.lines():
            say(line)
    return 1 if summary.failed else 0


def _run_job(
    item: Settings, weights: object, interrupts: Interrupts, label: str, cache: dict
) -> None:
    """One job of the batch; its unfinished image of an earlier run goes once it is done."""
    unfinished = options.interrupted_path(item.output)
    job.run(item, weights, interrupts, unfinished, label, cache)
    if os.path.exists(unfinished):  # an earlier run's, now superseded
        os.remove(unfinished)
