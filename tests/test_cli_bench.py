import json

from hadamrnn.cli import main


def test_bench_json_reports_the_documented_keys(capsys):
    assert main(["bench", "--config", "pmnist", "--repeats", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result) == {"config", "engine", "engine_step_s", "loop_step_s", "speedup", "engine_peak_mb", "loop_peak_mb"}
    assert result["config"] == "pmnist" and result["engine"] == "auto"
    assert result["engine_step_s"] > 0 and result["loop_step_s"] > 0
    assert abs(result["speedup"] - result["loop_step_s"] / result["engine_step_s"]) < 1e-9
    assert result["engine_peak_mb"] > 0 and result["loop_peak_mb"] > 0


def test_the_ornn_row_times_the_dense_kernel_against_its_loop_and_an_lstm(monkeypatch):
    from hadamrnn import bench

    small = bench.BenchConfig("ornn", dict(input_size=1, hidden_size=16, output_size=10), 8, 20, "ce", family="ornn")
    monkeypatch.setitem(bench.BENCH_CONFIGS, "ornn", small)
    said = []
    result = bench.benchmark("ornn", repeats=1, memory=False, lstm=True, say=said.append)
    assert set(result) == {"config", "engine", "engine_step_s", "loop_step_s", "speedup", "lstm_step_s"}
    assert said[0].startswith("ornn: building") and any("LSTM" in line for line in said)
    assert "lstm_step_s" not in bench.benchmark("ornn", repeats=1, memory=False)  # behind its own flag
    assert result["lstm_step_s"] > 0 and result["speedup"] == result["loop_step_s"] / result["engine_step_s"]
