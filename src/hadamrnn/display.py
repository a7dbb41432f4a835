"""How a metric is shown to people: one rule for training's progress lines, ``eval``, sweeps and
``compare`` (pure Python, cheap to import)."""

from __future__ import annotations

__all__ = ["format_metric"]


def format_metric(value: float | None) -> str:
    """4 decimals, or 3 significant digits in scientific notation below 0.001 (a solved copy task's
    cross-entropy, which 4 decimals would show as 0.0000); None: "—"."""
    if value is None:
        return "—"
    return f"{value:.4f}" if value == 0 or abs(value) >= 1e-3 else f"{value:.2e}"
