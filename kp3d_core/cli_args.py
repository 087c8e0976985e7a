"""Command-line argument checking shared by the ``kp3d`` subcommands.

A bad argument is a usage error, reported by ``kp3d_ros.cli`` as one line ``kp3d <command>: error: <message>``
with exit code 2:

- a single option out of range: an argparse ``type=`` from here (``type=positive_int``), so argparse names
  the option itself;
- options that conflict, or a value that can only be checked in ``main``: raise :class:`UsageError` naming
  the option(s).

Example::

    parser = CommandParser(prog="kp3d synth")
    parser.add_argument("--frames", type=positive_int, default=300)
    parser.parse_args(["--frames", "0"])   # stderr: kp3d synth: error: argument --frames: must be >= 1, got 0
"""
from __future__ import annotations

import argparse


class UsageError(ValueError):
    """Invalid command-line options (out of range, or conflicting); the message names the option(s)."""


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, ``<prog>: error: <message>`` (exit 2), like every
    other error of the ``kp3d`` command; ``--help`` shows the usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(text: str, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None


def positive_int(text: str) -> int:
    """An integer >= 1 (frames, steps, batch sizes)."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (frames to skip)."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (frame rates, radii in metres)."""
    value = _number(text, float)
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (loss weights, where 0 is off)."""
    value = _number(text, float)
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def fraction(text: str) -> float:
    """A number in (0, 1] (a fraction of frames)."""
    value = _number(text, float)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def probability(text: str) -> float:
    """A number in [0, 1]."""
    value = _number(text, float)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text}")
    return value


def angle_0_180(text: str) -> float:
    """An angle in degrees, from 0 to 180."""
    value = _number(text, float)
    if not 0.0 <= value <= 180.0:
        raise argparse.ArgumentTypeError(f"must be an angle from 0 to 180 degrees, got {text}")
    return value
