"""``hadamrnn compare`` on small real runs of several families and data sets, and on broken run dirs."""

import json

import pytest

from hadamrnn.cli import main
from hadamrnn.display import format_metric
from hadamrnn.train import fit, load_config

COPY = ["data.length=24", "data.train_samples=32", "data.val_samples=16", "data.test_samples=16",
        "data.batch_size=16", "model.hidden_size=8"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for name in ("hadamrnn", "ornn", "lstm"):
        fit(load_config(None, COPY + [f"model.name={name}"]), root / f"copy-{name}", progress=False)
    fit(load_config(None, COPY + ["data.length=30", "model.name=gru"]), root / "copy30-gru", progress=False)
    # through the CLI, which records the command in results.json
    sets = [arg for item in COPY + ["model.block_size=4"] for arg in ("--set", item)]
    assert main(["train", "copy-smoke", *sets, "--out", str(root / "copy-hadamrnn-block4")]) == 0
    (root / "unfinished").mkdir()
    (root / "broken").mkdir()
    (root / "broken" / "results.json").write_text("{not json")
    return root


def test_compare_prints_one_table_per_task_and_names_skipped_runs(runs, capsys):
    dirs = [str(runs / name) for name in ("copy-hadamrnn", "copy-ornn", "copy-lstm", "copy30-gru", "unfinished",
                                          "broken", "missing")]
    assert main(["compare", *dirs]) == 0
    out, err = capsys.readouterr()
    assert "### copy, T=24" in out and "### copy, T=30" in out
    t24 = out.split("### copy, T=30")[0]
    assert all(name in t24 for name in ("copy-hadamrnn", "copy-ornn", "copy-lstm")) and "copy30-gru" not in t24
    row = next(line for line in out.splitlines() if line.startswith("| copy-hadamrnn"))
    results = json.loads((runs / "copy-hadamrnn" / "results.json").read_text())
    assert f"{results['size_bits']['total'] / 1000:.2f}" in row and "8 sign bits (full Hadamard) / 4-bit + scale" in row
    header = next(line for line in out.splitlines() if line.startswith("| run"))
    per_epoch = [cell.strip() for cell in header.split("|")].index("s / epoch")
    assert row.split("|")[per_epoch].strip() == f"{results['seconds'] / results['epochs']:.1f}"
    assert "unfinished: skipped: unfinished (no results.json)" in err
    assert "broken: skipped: results.json: not valid JSON" in err
    assert "missing: not a directory" in err
    sizes = [float(line.split("|")[6]) for line in t24.splitlines() if line.startswith("| copy-")]
    assert sizes == sorted(sizes)  # smallest model first


def test_compare_writes_markdown_csv_and_a_png(runs, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", str(runs / "copy-hadamrnn"), str(runs / "copy-ornn"), str(runs / "copy30-gru"),
                 "-o", str(out)]) == 0
    assert (out / "compare.md").read_text().count("###") == 2
    lines = (out / "compare.csv").read_text().splitlines()
    assert lines[0].startswith("task,run,model") and len(lines) == 4
    png = (out / "compare.png").read_bytes()
    assert png[:4] == b"\x89PNG" and len(png) > 5000


def test_compare_with_no_finished_run_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / "empty")]) == 2
    assert "none of the directories given holds a readable finished run" in capsys.readouterr().err


def test_compare_names_the_block_size_and_the_command(runs, capsys):
    assert main(["compare", str(runs / "copy-hadamrnn-block4"), str(runs / "copy-hadamrnn"), str(runs / "copy-ornn")]) == 0
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[1:-1]]
            for line in capsys.readouterr().out.splitlines() if line.startswith("| copy-")}
    assert list(rows)[:2] == ["copy-hadamrnn", "copy-hadamrnn-block4"]  # equal sizes: the larger block first
    block = 3  # column index of "block"
    assert (rows["copy-hadamrnn"][block], rows["copy-hadamrnn-block4"][block], rows["copy-ornn"][block]) == (
        "full", "4", "—")
    assert "8 sign bits (block 4 Hadamard)" in rows["copy-hadamrnn-block4"][4]
    command = json.loads((runs / "copy-hadamrnn-block4" / "results.json").read_text())["command"]
    assert rows["copy-hadamrnn-block4"][-1] == f"`{command}`"


def test_deeply_nested_or_huge_results_and_an_unreadable_config_are_skipped_with_the_reason(runs, tmp_path, capsys):
    import shutil

    bad = {}
    for name, results, config in (("deep", "[" * 100_000 + "]" * 100_000, None),
                                  ("huge", '{"x": "' + "a" * (2 << 20) + '"}', None),
                                  ("badconfig", None, b"data: {name: \xff\xfe [unclosed\n")):
        bad[name] = tmp_path / name
        shutil.copytree(runs / "copy-hadamrnn", bad[name])
        if results is not None:
            (bad[name] / "results.json").write_text(results)
        if config is not None:
            (bad[name] / "config.yaml").write_bytes(config)
    assert main(["compare", *map(str, bad.values())]) == 2
    err = capsys.readouterr().err
    assert "deep: skipped: results.json: JSON nested more than 32 levels deep" in err
    assert f"huge: skipped: results.json: {(2 << 20) + 9} bytes of JSON, more than the 1048576" in err
    assert "badconfig: skipped: config.yaml: not valid YAML" in err
    assert "holds a readable finished run" in err and "Traceback" not in err


def test_the_plot_names_every_run_and_keeps_points_off_the_frame(runs):
    from hadamrnn.compare import figure, read_runs

    summaries, _ = read_runs([runs / "copy-hadamrnn", runs / "copy-hadamrnn-block4", runs / "copy-ornn"])
    ax = figure(summaries).axes[0]
    assert {text.get_text() for text in ax.texts} == {s.run for s in summaries}
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    for s in summaries:
        assert x0 < s.size_kbits < x1 and y0 < s.test_metric < y1
        assert (s.test_metric - y0) > 0.05 * (y1 - y0) and (y1 - s.test_metric) > 0.05 * (y1 - y0)


def test_the_plot_draws_the_no_learning_baseline_and_a_log_axis_for_cross_entropies_decades_apart(runs):
    from dataclasses import replace

    from hadamrnn.compare import figure, read_runs
    from hadamrnn.data import copy_baseline

    def dashed(ax):
        return [line for line in ax.get_lines() if line.get_linestyle() == "--"]

    summaries, _ = read_runs([runs / "copy-hadamrnn", runs / "copy-ornn"])
    base = copy_baseline(24)
    assert {s.baseline for s in summaries} == {base}
    near = [replace(summaries[0], test_metric=0.9 * base), replace(summaries[1], test_metric=1.05 * base)]
    ax = figure(near).axes[0]
    assert [list(line.get_ydata()) for line in dashed(ax)] == [[base, base]]
    assert "no learning (baseline)" in [text.get_text() for text in ax.get_legend().get_texts()]
    assert ax.get_yscale() == "linear"  # within a decade
    solved = [replace(near[0], test_metric=1e-5), near[1]]  # solved beside unsolved: decades apart
    ax = figure(solved).axes[0]
    assert ax.get_yscale() == "log" and len(dashed(ax)) == 1
    far = [replace(s, test_metric=50 * base) for s in near]  # far from the points, the line would squeeze them
    assert dashed(figure(far).axes[0]) == []


def test_runs_that_differ_only_in_their_seed_form_one_row_with_mean_sd_and_n(tmp_path, capsys):
    import csv
    import shutil
    import statistics

    import yaml

    seeds = {1: (0.5, 0.45), 2: (0.6, 0.55), 3: (0.9, 0.85)}  # seed: (test metric, best validation)
    for seed, (test, best) in seeds.items():
        fit(load_config(None, COPY + [f"optim.seed={seed}"]), tmp_path / f"s{seed}", progress=False)
        results = json.loads((tmp_path / f"s{seed}" / "results.json").read_text())
        results.update(test_metric=test, best_val_metric=best)
        (tmp_path / f"s{seed}" / "results.json").write_text(json.dumps(results))
    shutil.copytree(tmp_path / "s1", tmp_path / "other-lr")  # another setting: a row of its own
    config = yaml.safe_load((tmp_path / "other-lr" / "config.yaml").read_text())
    config["optim"]["lr"] = 0.5
    (tmp_path / "other-lr" / "config.yaml").write_text(yaml.safe_dump(config))
    dirs = [str(tmp_path / name) for name in ("s1", "s2", "s3", "other-lr")]
    assert main(["compare", *dirs, "-o", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    tests, bests = [0.5, 0.6, 0.9], [0.45, 0.55, 0.85]
    mean, sd = sum(tests) / 3, (sum((v - sum(tests) / 3) ** 2 for v in tests) / 2) ** 0.5  # the sample sd, by hand
    assert f"cross_entropy {mean:.4f} ± {sd:.4f} (n = 3)" in out and "| s1, s2, s3 |" in out
    assert f"{statistics.fmean(bests):.4f} ± {statistics.stdev(bests):.4f} (n = 3)" in out
    assert "| other-lr |" in out and out.count("(n = ") == 2  # the test and best-val cells of the one group
    rows = list(csv.DictReader((tmp_path / "cmp" / "compare.csv").read_text().splitlines()))
    group = next(r for r in rows if r["n"] == "3")
    assert group["runs"] == "s1;s2;s3" and float(group["test_mean"]) == pytest.approx(mean)
    assert float(group["test_sd"]) == pytest.approx(sd) and float(group["best_val_sd"]) == pytest.approx(
        statistics.stdev(bests))


def test_another_results_key_can_be_the_test_metric(runs, capsys):
    assert main(["compare", str(runs / "copy-hadamrnn"), "--metric", "test_accuracy"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| copy-hadamrnn"))
    accuracy = json.loads((runs / "copy-hadamrnn" / "results.json").read_text())["test_accuracy"]
    assert f"accuracy {accuracy:.4f}" in row
    assert main(["compare", str(runs / "copy-hadamrnn"), "--metric", "test_nothing"]) == 2
    assert "results.json has no number 'test_nothing'" in capsys.readouterr().err


def test_seed_runs_of_sweeps_are_told_apart_and_a_narrow_size_range_has_tick_labels(tmp_path, capsys):
    import shutil

    import yaml

    from hadamrnn.compare import figure, read_runs

    fit(load_config(None, COPY), tmp_path / "run", progress=False)
    for sweep in ("sweep-a", "sweep-b"):
        (tmp_path / sweep / "seeds").mkdir(parents=True)
        (tmp_path / sweep / "sweep.yaml").write_text("{}\n")
        for seed in (1, 2):
            shutil.copytree(tmp_path / "run", tmp_path / sweep / "seeds" / f"seed-{seed}")
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    config["optim"]["lr"] = 0.5  # sweep b's setting differs from sweep a's
    for seed in (1, 2):
        (tmp_path / "sweep-b" / "seeds" / f"seed-{seed}" / "config.yaml").write_text(yaml.safe_dump(config))
    summaries, _ = read_runs([tmp_path / "sweep-a", tmp_path / "sweep-b"])
    assert sorted(s.run for s in summaries) == ["sweep-a: seed-1, seed-2", "sweep-b: seed-1, seed-2"]
    ax = figure(summaries).axes[0]
    assert any(label.get_text() for label in ax.get_xticklabels())  # one size: the axis spans less than a decade


def test_a_metric_below_a_thousandth_keeps_its_digits():
    # a solved copy task's cross-entropy: 4 decimals would print 0.0000 for all of them
    assert [format_metric(v) for v in (5.2e-6, -3.1e-4, 0.0973, 0.8245, 1.0, 0.0, None)] == \
        ["5.20e-06", "-3.10e-04", "0.0973", "0.8245", "1.0000", "0.0000", "—"]
