"""``hadamrnn compare``: finished runs side by side — a table and a size–accuracy plot per data set.

Reads run directories only (``results.json`` and ``config.yaml``), never model code, so runs of any
family compare alike. Unfinished or broken run directories are reported and skipped. Runs whose
resolved configurations differ only in ``optim.seed`` form one row: the mean of each metric, its
sample standard deviation and the number of runs (error bars in the plot). A sweep directory
(``hadamrnn sweep``) stands for its trials and seed runs.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path

from .atomic import atomic_write_bytes
from .display import format_metric
from .untrusted import parse_json, parse_yaml

__all__ = ["RunSummary", "read_runs", "aggregate", "markdown_table", "write_comparison", "figure", "COLUMNS"]

COLUMNS = ("run", "model", "hidden", "block", "W / U / V", "size (kbit)", "test metric", "last", "best val",
           "epochs", "train time (s)", "s / epoch", "command")
CSV_COLUMNS = ("runs", "n", "test_mean", "test_sd", "best_val_mean", "best_val_sd")


@dataclass(frozen=True)
class RunSummary:
    run: str
    task: str  # data set (with the copy task's length): runs are compared within one task only
    model: str
    hidden_size: int | None
    block_size: int | None  # of a Hadamard recurrence (== hidden_size when full); None for other families
    precision: str  # of W, U and V
    size_kbits: float | None
    metric_name: str
    test_metric: float  # of the best-validation checkpoint
    last_test_metric: float | None  # of the last checkpoint
    best_val_metric: float | None
    epochs: int | None
    seconds: float | None  # training and each epoch's validation, without the final test
    command: str | None  # the command line that trained it, where the run recorded it
    setting: str = ""  # the resolved configuration without optim.seed: runs of one setting form a row
    runs: tuple = ()  # the runs of a row of several seeds (their names); () for a single run
    test_sd: float | None = field(default=None)  # sample standard deviations over the seeds of a row
    best_val_sd: float | None = field(default=None)
    baseline: float | None = None  # the no-learning test metric (memoryless, most frequent class), where known

    @property
    def n(self) -> int:
        return max(len(self.runs), 1)

    @property
    def seconds_per_epoch(self) -> float | None:
        return self.seconds / self.epochs if self.seconds is not None and self.epochs else None

    @property
    def sparse_block(self) -> int | None:
        """The block size of a Block-HadamRNN (smaller than the hidden size); None otherwise."""
        return self.block_size if self.block_size is not None and self.block_size != self.hidden_size else None

    def cells(self) -> list[str]:
        def number(value, digits=4):
            return "—" if value is None else f"{value:.{digits}f}"

        def spread(mean, sd):
            return (format_metric(mean) if self.n == 1 or mean is None else
                    f"{format_metric(mean)} ± {format_metric(sd)} (n = {self.n})")

        block = "—" if self.block_size is None else "full" if self.sparse_block is None else str(self.sparse_block)
        return [self.run, self.model, "—" if self.hidden_size is None else str(self.hidden_size), block,
                self.precision, number(self.size_kbits, 2),
                f"{self.metric_name} {spread(self.test_metric, self.test_sd)}", format_metric(self.last_test_metric),
                spread(self.best_val_metric, self.best_val_sd), "—" if self.epochs is None else str(self.epochs),
                number(self.seconds, 0), number(self.seconds_per_epoch, 1), self.command or "—"]

    def statistics_cells(self) -> list:
        """The CSV's columns of a row of seeds: its runs, n, and the means and standard deviations."""
        return [";".join(self.runs) or self.run, self.n, self.test_metric, self.test_sd, self.best_val_metric,
                self.best_val_sd]


def _run_name(run_dir: Path) -> str:
    """The run's folder name; a sweep's trial or seed run is named ``SWEEP/NAME`` (seed runs of two
    sweeps are all ``seed-K``)."""
    sweep = run_dir.parent.parent
    if run_dir.parent.name in ("trials", "seeds") and (sweep / "sweep.yaml").is_file():
        return f"{sweep.name}/{run_dir.name}"
    return run_dir.name


def _group_label(names: tuple[str, ...]) -> str:
    """``a, b, c``, or ``first … last (K seeds)``; runs of one sweep as ``SWEEP: seed-1 … seed-5 (5 seeds)``."""
    prefixes = {name.rpartition("/")[0] for name in names}
    prefix = prefixes.pop() if len(prefixes) == 1 else ""
    short = [name.removeprefix(f"{prefix}/") for name in names] if prefix else list(names)
    listed = ", ".join(short) if len(short) <= 3 else f"{short[0]} … {short[-1]} ({len(short)} seeds)"
    return f"{prefix}: {listed}" if prefix else listed


def _summary(run_dir: Path, metric: str) -> RunSummary:
    results_path, config_path = run_dir / "results.json", run_dir / "config.yaml"
    if not results_path.is_file():
        raise ValueError("unfinished (no results.json)")
    results = parse_json(results_path.read_bytes(), "results.json", max_bytes=1 << 20)
    config = parse_yaml(config_path.read_bytes().decode("utf-8", "replace"), "config.yaml") if config_path.is_file() else {}
    if not isinstance(results, dict) or not isinstance(config, dict):
        raise ValueError("results.json or config.yaml is not a mapping")
    data, model = config.get("data") or {}, config.get("model") or {}
    task = str(data.get("name", "?")) + (f", T={data['length']}" if data.get("name") == "copy" and data.get("length")
                                         else "")
    precision = results.get("precision") or {}
    family = str(results.get("model") or model.get("name", "hadamrnn"))
    hidden = model.get("hidden_size")
    sizes = results.get("size_bits") or {}
    return RunSummary(
        run=_run_name(run_dir), task=task, model=family, hidden_size=hidden,
        block_size=(model.get("block_size") or hidden) if family == "hadamrnn" else None,
        precision=(" / ".join(str(precision.get(name, "—")) for name in ("W", "U", "V"))
                   if {"W", "U", "V"} & set(precision) else " / ".join(sorted(set(map(str, precision.values())))) or "—"),
        size_kbits=sizes["total"] / 1000 if "total" in sizes else None,
        metric_name=str(results["metric_name"]) if metric == "test_metric" else metric.removeprefix("test_"),
        test_metric=_number(results, metric), last_test_metric=results.get("last_test_metric"),
        best_val_metric=results.get("best_val_metric"), epochs=results.get("epochs"), seconds=results.get("seconds"),
        command=results.get("command"),
        baseline=results.get("baseline_metric") if metric == "test_metric" else None,
        setting=json.dumps({**config, "optim": {k: v for k, v in (config.get("optim") or {}).items() if k != "seed"}},
                           sort_keys=True, default=str))


def _number(results: dict, key: str) -> float:
    value = results.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"results.json has no number {key!r}")
    return float(value)


def _expand(run_dirs: list[Path]) -> list[Path]:
    """Run directories, a sweep directory standing for its trials and seed runs."""
    expanded = []
    for run_dir in map(Path, run_dirs):
        if (run_dir / "sweep.yaml").is_file():
            expanded += sorted(p for folder in ("trials", "seeds") for p in (run_dir / folder).glob("*") if p.is_dir())
        else:
            expanded.append(run_dir)
    return expanded


def _mean_sd(values: list) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def aggregate(summaries: list[RunSummary]) -> list[RunSummary]:
    """One row per task and setting: runs that differ only in ``optim.seed`` become their mean, with
    the sample standard deviation and the number of runs; a single run stays as it is."""
    groups: dict[tuple[str, str], list[RunSummary]] = {}
    for summary in summaries:
        groups.setdefault((summary.task, summary.setting), []).append(summary)
    rows = []
    for members in groups.values():
        if len(members) == 1:
            rows.append(members[0])
            continue
        names = tuple(m.run for m in members)
        test, test_sd = _mean_sd([m.test_metric for m in members])
        best, best_sd = _mean_sd([m.best_val_metric for m in members])
        rows.append(replace(members[0], run=_group_label(names), runs=names, test_metric=test, test_sd=test_sd,
                            best_val_metric=best, best_val_sd=best_sd,
                            last_test_metric=_mean_sd([m.last_test_metric for m in members])[0],
                            seconds=_mean_sd([m.seconds for m in members])[0]))
    return rows


def read_runs(run_dirs: list[Path], metric: str = "test_metric") -> tuple[list[RunSummary], list[str]]:
    """The rows of the finished runs (seeds of one setting aggregated: :func:`aggregate`), and one
    line for each directory that was skipped (and why). ``metric``: the ``results.json`` key shown
    as the test metric (e.g. ``test_macro_f1``); a run without it is skipped."""
    summaries, skipped = [], []
    for run_dir in _expand(run_dirs):
        if not run_dir.is_dir():
            skipped.append(f"{run_dir}: not a directory")
            continue
        try:
            summaries.append(_summary(run_dir, metric))
        except (OSError, ValueError, KeyError, TypeError) as error:
            reason = str(error) if type(error) is ValueError else f"unreadable ({type(error).__name__}: {error})"
            skipped.append(f"{run_dir}: skipped: {reason}")
    return aggregate(summaries), skipped


def _by_task(summaries: list[RunSummary]) -> dict[str, list[RunSummary]]:
    groups: dict[str, list[RunSummary]] = {}
    for summary in summaries:
        groups.setdefault(summary.task, []).append(summary)
    return groups


def _markdown_cells(run: RunSummary) -> list[str]:
    *cells, command = run.cells()
    return cells + [command if run.command is None else "`" + command.replace("|", "\\|") + "`"]


def markdown_table(summaries: list[RunSummary]) -> str:
    """One markdown table per data set, smallest model first (of equal sizes, the larger block first)."""
    parts = []
    for task, runs in _by_task(summaries).items():
        rows = sorted(runs, key=lambda r: (r.size_kbits is None, r.size_kbits or 0, -(r.block_size or 0)))
        lines = [f"### {task}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(_markdown_cells(run)) + " |" for run in rows]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def figure(summaries: list[RunSummary]):
    """The size–metric figure: a panel per data set, a marker and colour per family (and block size),
    every point labelled with its run's name, margins around the points and the legend below them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def family(run: RunSummary) -> str:  # block sizes of one family are told apart by marker and colour
        return run.model if run.sparse_block is None else f"{run.model}, block {run.sparse_block}"

    groups = _by_task([s for s in summaries if s.size_kbits is not None])
    families = sorted({family(s) for s in summaries})
    markers = {label: "o^sDvP*Xh<>"[k % 11] for k, label in enumerate(families)}
    colors = {label: plt.get_cmap("tab10")(k % 10) for k, label in enumerate(families)}  # same in every panel
    fig, axes = plt.subplots(1, max(len(groups), 1), figsize=(6 * max(len(groups), 1), 5), squeeze=False)
    for ax, (task, runs) in zip(axes[0], groups.items()):
        for label in families:
            mine = [r for r in runs if family(r) == label]
            if mine:
                ax.scatter([r.size_kbits for r in mine], [r.test_metric for r in mine], marker=markers[label],
                           color=colors[label], s=60, label=label)
        for run in runs:  # two runs of one family differ by name; a row of seeds has its spread
            if run.n > 1:
                ax.errorbar(run.size_kbits, run.test_metric, yerr=run.test_sd, color=colors[family(run)], capsize=4,
                            linewidth=1.2)
            ax.annotate(run.run, (run.size_kbits, run.test_metric), textcoords="offset points", xytext=(5, 4),
                        fontsize=7, alpha=0.8)
        ax.set_xscale("log")
        metrics = [run.test_metric for run in runs]
        if runs[0].metric_name == "cross_entropy" and min(metrics) > 0 and max(metrics) > 100 * min(metrics):
            ax.set_yscale("log")  # a solved copy task (1e-5 nats) beside unsolved ones (0.1)
        ax.margins(x=0.2, y=0.15)  # no point, nor its label, on the frame
        baselines = {run.baseline for run in runs if run.baseline is not None}
        low, high = ax.get_ylim()
        if len(baselines) == 1 and low < (baseline := baselines.pop()) < high:  # far below: it would squeeze the points
            ax.axhline(baseline, color="grey", linestyle="--", linewidth=1, label="no learning (baseline)")
        low, high = ax.get_xlim()
        if high < 10 * low:  # within a decade the log axis has no power of ten: label every integer multiple
            ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs="all"))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set(xlabel="model size (kbit, log scale)", ylabel=f"test {runs[0].metric_name}", title=task)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3, frameon=False)
    fig.tight_layout()
    return fig


def _plot(summaries: list[RunSummary]) -> bytes:
    import matplotlib.pyplot as plt

    fig = figure(summaries)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def write_comparison(summaries: list[RunSummary], out_dir: Path) -> list[Path]:
    """``compare.md``, ``compare.csv`` and ``compare.png`` (one panel per data set) in ``out_dir``."""
    out_dir = Path(out_dir)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["task", *COLUMNS, *CSV_COLUMNS])
    for summary in summaries:
        writer.writerow([summary.task, *summary.cells(), *summary.statistics_cells()])
    files = {"compare.md": markdown_table(summaries).encode(), "compare.csv": text.getvalue().encode(),
             "compare.png": _plot(summaries)}
    for name, data in files.items():
        atomic_write_bytes(out_dir / name, data)
    return [out_dir / name for name in files]
