"""Data sets for the paper's benchmarks."""

from .copy import CopyTask, copy_baseline

__all__ = ["CopyTask", "copy_baseline"]
