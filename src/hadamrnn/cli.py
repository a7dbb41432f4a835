"""The ``hadamrnn`` command: argument parsing only; every command calls into the package."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from .display import format_metric


def _train(args: argparse.Namespace) -> int:
    from .train import checkpoint_path, fit, load_config

    epochs = None
    if args.resume and args.model:
        raise ValueError("--model chooses the family of a new run; a resumed run keeps its own")
    if args.resume:
        for item in args.set:
            key, _, value = item.partition("=")
            if key.strip() != "optim.epochs" or not value.strip().isdigit():
                raise ValueError(f"--set {item!r}: a resumed run keeps the config saved in its run dir; on --resume, "
                                 f"--set takes only optim.epochs=N (to extend the run, or end it sooner)")
            epochs = int(value)
    config = None if args.resume else load_config(args.config, args.set, family=args.model)
    if args.tensorboard:
        from .train.tensorboard import require_tensorboard

        require_tensorboard()  # before anything is written
    out = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
    resume = f"hadamrnn train --resume --out {out}"
    try:
        result = fit(config, out, data_dir=args.data_dir, resume=args.resume, download=args.download, epochs=epochs,
                     command=shlex.join(["hadamrnn", *args.argv]), tensorboard=args.tensorboard)
    except KeyboardInterrupt:
        if checkpoint_path(out).is_file():
            print(f"\ninterrupted; the last checkpoint in {out} is intact (steps since it are lost): {resume}",
                  file=sys.stderr)
        else:
            print("\ninterrupted before the first checkpoint: nothing was saved", file=sys.stderr)
        return 130
    if not result.completed:
        print(f"\n{result.stopped} after {result.epoch} epoch(s) and {result.batch}/{result.batches} steps of the "
              f"next; checkpoint written. Continue with: {resume}", file=sys.stderr)
        return 130
    if os.environ.get("RANK", "0") == "0":  # under torchrun, the first process speaks for all
        print(_verdict(result.results, out))
    return 0


def _verdict(r: dict, out: Path) -> str:
    """The last line of a run: its test metric and how it compares with the no-learning baseline."""
    line = (f"test {r['metric_name']} (best-validation checkpoint): {format_metric(r['test_metric'])}; "
            f"last checkpoint: {format_metric(r['last_test_metric'])}; {r['seconds']:.0f} s; "
            f"results in {out / 'results.json'}")
    base = r.get("baseline_metric")
    if base is None:
        return line
    lower = r["metric_name"] == "cross_entropy"
    beats = r["test_metric"] < base if lower else r["test_metric"] > base + 0.01
    baseline = f"the baseline {format_metric(base)} ({r['baseline']})"
    verdict = (f"{'below' if lower else 'above'} {baseline}" if beats else
               f"NOT {'below' if lower else 'above'} {baseline}: the model has not "
               f"learned the task yet; train longer (optim.epochs, optim.max_steps_per_epoch) or see docs/results.md")
    return f"{line}\n{verdict}"


def _eval(args: argparse.Namespace) -> int:
    from .train import evaluate, load_splits, load_trained

    model, config, info = load_trained(args.checkpoint)
    splits = load_splits(config, args.data_dir)
    result = evaluate(model, dict(splits.items())[args.split], info, config.data.batch_size)
    per_class = {}
    if info.classes is not None:  # named classes: each one's figures
        for name, (hits, support, predicted) in zip(info.classes, zip(*result["class_counts"])):
            per_class[name] = {"support": support, "recall": hits / support if support else None,
                               "f1": 2 * hits / (support + predicted) if support + predicted else None}
    summary = {"split": args.split, "metric_name": info.metric, "metric": result["metric"], "loss": result["loss"],
               "accuracy": result["accuracy"], "macro_f1": result["macro_f1"],
               "samples": len(dict(splits.items())[args.split]), **({"classes": per_class} if per_class else {})}
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{args.split} {info.metric}: {format_metric(result['metric'])} (loss {format_metric(result['loss'])}, "
          f"accuracy {result['accuracy']:.4f}, macro-F1 {result['macro_f1']:.4f})")
    show = lambda value: "-" if value is None else f"{value:.4f}"  # noqa: E731
    for name, figures in per_class.items():
        print(f"  {name}: recall {show(figures['recall'])}, F1 {show(figures['f1'])}, {figures['support']} samples")
    return 0


def _size(args: argparse.Namespace) -> int:
    from .size import model_size_bits, size_summary
    from .train import build_model, load_config, load_trained

    source = Path(args.source)
    trained = args.source.startswith("pretrained:") or source.suffix in (".pt", ".safetensors") or source.is_dir()
    if not trained:  # a config file or a shipped config's name
        from .train import load_task_info

        config = load_config(source, args.set)
        model = build_model(config, load_task_info(config, args.data_dir))
    else:
        model = load_trained(source)[0]
    print(json.dumps(model_size_bits(model)) if args.json else size_summary(model))
    return 0


def _data(args: argparse.Namespace) -> int:
    from .data import ArrayDataset, data_options, load_data, summarize
    from .train.config import apply_overrides

    values = apply_overrides({"data": {"name": args.name, **({"path": args.path} if args.path else {})}}, args.set)
    if set(values) != {"data"}:
        raise ValueError("hadamrnn data takes --set data.KEY=VALUE only")
    splits = load_data(data_options(values["data"]), args.data_dir, args.download)
    if args.dump:
        from .data import dump

        if not args.output:
            raise ValueError("--dump SPLIT needs -o FILE (the inputs; the labels go to FILE.labels)")
        output = Path(args.output)
        if output.suffix.lower() in (".ts", ".csv"):  # a time-series file, read by data: {name: timeseries}
            from .data.timeseries import write_series

            dataset = dict(splits.items())[args.dump]
            if splits.info.vocab_size is not None or splits.info.loss != "ce" or not isinstance(dataset, ArrayDataset):
                raise ValueError(f"--dump to {output.suffix}: time-series files hold feature series with one class "
                                 f"each; {args.name} is not such a data set")
            names = splits.info.classes or [str(k) for k in range(splits.info.num_classes)]
            count = write_series(output, list(dataset.x.numpy()), [names[v] for v in dataset.y.tolist()], args.name)
            print(f"wrote {count} {args.dump} series to {output} (raw values, labels as "
                  f"{'class names' if splits.info.classes else 'class numbers'})")
            return 0
        labels = output.with_name(output.name + ".labels")
        count = dump(dict(splits.items())[args.dump], splits.info, output, labels)
        tokenized = (splits.info.transform or {}).get("tokenizer") is not None
        print(f"wrote {count} {args.dump} sequences to {output} ("
              + ("token ids, as the generated C and 'hadamrnn predict MODEL FILE --token-ids' read them"
                 if tokenized else "raw inputs, as 'hadamrnn predict' reads them")
              + f") and their labels (class numbers) to {labels}")
        return 0
    summary = summarize(splits)
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{summary['name']}: {summary['num_classes']} classes, loss {summary['loss']}, metric {summary['metric']}"
          + (f", vocabulary {summary['vocab_size']}" if "vocab_size" in summary else ""))
    for split, s in summary["splits"].items():
        counts = ", ".join(f"{k}: {v}" for k, v in s["class_counts"].items())
        print(f"  {split:5} {s['samples']:>7} samples, sample shape {tuple(s['sample_shape'])}, "
              f"T = {s['sequence_length']}; classes {{{counts}}}")
    return 0


def _require_hadamrnn(config, source: str, what: str) -> None:
    """A ``ValueError`` pointing elsewhere unless ``config`` is a HadamRNN's (the ``.hrnn`` file holds only those)."""
    if config.model.name != "hadamrnn":
        raise ValueError(f"{what} takes HadamRNN models here (the .hrnn file: binary W as sign bits); {source} "
                         f"holds a {config.model.name!r} model: use predict --runtime torch, or ONNX (export "
                         f"--target onnx, predict --runtime onnx)"
                         f"{'; or integer C (export --target c)' if config.model.name == 'fastgrnn' else ''}")


def _is_trained(source: str) -> bool:
    """A run directory, a checkpoint file or ``pretrained:NAME`` (not an exported model)."""
    path = Path(source)
    return (source.startswith("pretrained:") or path.suffix in (".safetensors", ".pt")
            or (path / "checkpoints").is_dir())


def _export(args: argparse.Namespace) -> int:
    from .deploy.export import export_model
    from .size import model_size_bits
    from .train import load_trained

    if args.target == "onnx":  # every family
        from .deploy.onnx import export_onnx

        model, config, info = load_trained(args.source)
        path = export_onnx(model, info, args.output)
        print(f"wrote {path}: {path.stat().st_size} bytes, an ONNX graph of the {config.model.name} model with its "
              f"input transform (input 'inputs', output 'logits'); run it with: hadamrnn predict {path} FILE "
              f"--runtime onnx")
        return 0
    if args.target == "c":
        return _export_c(args)
    model, config, info = load_trained(args.source)
    _require_hadamrnn(config, args.source, "export")
    size = export_model(model, args.output, info.transform, info.classes)
    print(f"wrote {args.output}: {size} bytes ({model_size_bits(model)['total']} bits of weights + header)")
    return 0


def _calibration(config, data_dir: str | None, samples: int):
    """The first ``samples`` training sequences, as model inputs (a NumPy array), and their count."""
    import torch

    from .train import load_splits

    train = load_splits(config, data_dir).train
    count = min(len(train), samples)
    return train.batch(torch.arange(count))[0].numpy(), count


def _export_c(args: argparse.Namespace) -> int:
    """Integer C: a HadamRNN (its .hrnn beside it), or a FastGRNN trained with hard activations."""
    from .deploy import runtime
    from .deploy.codegen import write_c
    from .deploy.export import export_model
    from .deploy.integer import quantize_model
    from .deploy.integer_fastgrnn import quantize_fastgrnn
    from .preprocess import InputTransform
    from .train import load_trained

    model, config, info = load_trained(args.source)
    out = Path(args.output)
    if config.model.name == "fastgrnn":
        x, count = _calibration(config, args.data_dir, args.calibration_samples)
        transform = InputTransform.from_dict(info.transform) if info.transform is not None else None
        integer = quantize_fastgrnn(model, x, args.bits, transform, info.classes)
        bits = integer.bits
        origin = (f"calibrated on {count} training sequences; σ and tanh piecewise-linear, pre-activations at "
                  f"2^-{integer.gate_bits}")
    elif config.model.name == "hadamrnn":
        trained = model.fixed_point  # a model trained with fixed-point states brings its bits and scales
        bits = args.bits if args.bits is not None else trained.bits if trained is not None else 16
        if trained is not None and bits != trained.bits:
            raise ValueError(f"{args.source} was trained with {trained.bits}-bit states (model.state_bits): export "
                             f"it with --bits {trained.bits}, or leave --bits out")
        out.mkdir(parents=True, exist_ok=True)
        export_model(model, out / "model.hrnn", info.transform, info.classes)
        if trained is not None:
            integer = quantize_model(runtime.load(out / "model.hrnn"), None, bits=bits,
                                     scales=(int(trained.fx), int(trained.fh)))
            origin = "the scales it was trained with"
        else:
            x, count = _calibration(config, args.data_dir, args.calibration_samples)
            integer = quantize_model(runtime.load(out / "model.hrnn"), x, bits=bits)
            origin = f"calibrated on {count} training sequences"
    else:
        raise ValueError(f"--target c takes HadamRNN and FastGRNN models; {args.source} holds a "
                         f"{config.model.name!r} model (--target onnx exports every family)")
    files = write_c(integer, out)
    float_file = " and model.hrnn" if config.model.name == "hadamrnn" else ""
    print(f"wrote {', '.join(f.name for f in files)}{float_file} to {out} ({bits}-bit states, {origin}); "
          f"build with: make -C {out}; on a Cortex-M4 under QEMU: make -s -C {out} qemu INPUT=FILE")
    if integer.transform is not None and integer.transform.tokenizer is not None:
        print(f"note: the C program reads token ids, one sequence per line (it has no tokenizer); "
              f"'hadamrnn predict {out} FILE --runtime numpy-int' reads raw text and computes the same integers",
              file=sys.stderr)
    wide = [bound.what for bound in integer.bounds() if bound.ctype == "int64_t"]
    if wide:
        fits = integer.int32_state_bits()
        print(f"note: 64-bit integers for {'; '.join(wide)} (two instructions per addition on a 32-bit core)"
              + (f"; with --bits {fits} or fewer every intermediate fits int32_t" if fits else ""), file=sys.stderr)
    return 0


def _predict(args: argparse.Namespace) -> int:
    import tempfile

    from .deploy.predict import open_predictor, trained_predictor

    predictor = None
    with tempfile.TemporaryDirectory() as folder:
        source = args.model
        if _is_trained(source):  # a trained run: its best checkpoint, exported here as the float model
            if args.runtime == "numpy-int":
                raise ValueError(f"--runtime numpy-int runs the integer model of a C export: make one with "
                                 f"'hadamrnn export {source} --target c -o DIR', then 'hadamrnn predict DIR "
                                 f"{args.input} --runtime numpy-int' (or use --runtime numpy or torch here)")
            if args.runtime == "onnx":  # any family
                from .deploy.onnx import export_onnx
                from .train import load_trained

                model, _, info = load_trained(source)
                source = export_onnx(model, info, Path(folder) / "model.onnx")
            else:
                from .deploy.export import export_model
                from .train import load_trained

                model, config, info = load_trained(source)
                if config.model.name != "hadamrnn" and args.runtime == "torch":  # no .hrnn: the model itself
                    predictor = trained_predictor(model, info, args.token_ids)
                else:
                    _require_hadamrnn(config, source, f"predict --runtime {args.runtime}")
                    source = Path(folder) / "model.hrnn"
                    export_model(model, source, info.transform, info.classes)
        if predictor is None:
            predictor = open_predictor(source, args.runtime, args.token_ids)
    stream = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")
    with stream:  # bytes: the grammar (hadamrnn.deploy.inputs) decides what a line end or a character is
        for answer in predictor.run(stream):
            print(answer)
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .sweep import run_sweep, status

    given = Path(args.spec)
    if given.is_dir():  # a sweep directory: its own sweep.yaml
        spec, out = given / "sweep.yaml", given
        if not spec.is_file():
            raise ValueError(f"{given} is a directory without sweep.yaml: give a SPEC.yaml (with --out DIR) or a sweep "
                             f"directory")
        if args.out and Path(args.out).resolve() != given.resolve():
            raise ValueError(f"{given} is a sweep directory: --out must be left out or name the same directory")
    else:
        spec, out = given, Path(args.out) if args.out else Path("runs") / given.stem
    if not args.status:
        run_sweep(spec, out, args.storage, args.study, args.data_dir, args.workers)
    print(status(out, args.storage, args.study))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .compare import markdown_table, read_runs, write_comparison

    summaries, skipped = read_runs([Path(d) for d in args.runs], args.metric)
    for line in skipped:
        print(line, file=sys.stderr)
    if not summaries:
        raise ValueError("none of the directories given holds a readable finished run (the lines above say why "
                         "each was skipped)")
    print(markdown_table(summaries), end="")
    if args.output:
        files = write_comparison(summaries, Path(args.output))
        print(f"wrote {', '.join(str(f) for f in files)}", file=sys.stderr)
    return 0


def _configs(args: argparse.Namespace) -> int:
    from .train.config import config_text, shipped_configs

    if args.words:
        if len(args.words) != 2 or args.words[0] != "show":
            raise ValueError(f"expected 'hadamrnn configs' or 'hadamrnn configs show NAME', got {' '.join(args.words)!r}")
        sys.stdout.write(config_text(args.words[1])[0])
        return 0
    import shutil
    import textwrap

    described = shipped_configs()
    width = max(map(len, described))
    columns = max(60, min(shutil.get_terminal_size().columns, 120))
    for name, sentence in described.items():
        print(textwrap.fill(sentence, columns, initial_indent=f"{name:<{width}}  ",
                            subsequent_indent=" " * (width + 2), break_on_hyphens=False))
    print("\ntrain one: hadamrnn train NAME; start your own: hadamrnn configs show NAME > mine.yaml")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .bench import BENCH_CONFIGS, main as bench_main

    names = [name for name, config in BENCH_CONFIGS.items() if config.in_all] if args.config == "all" else [args.config]
    bench_main(names, engine=args.engine, repeats=args.repeats, as_json=args.json, lstm=args.lstm)
    return 0


def _pretrained(args: argparse.Namespace) -> int:
    from . import pretrained

    words = args.words
    if words[:1] == ["package"] and len(words) == 2:
        if not args.output or not args.train_command:
            raise ValueError("pretrained package RUN needs -o FILE.safetensors and --command 'the training command'")
        path = pretrained.package(words[1], args.output, args.train_command, args.description, data_dir=args.data_dir)
        print(f"wrote {path} ({path.stat().st_size} bytes)")
        return 0
    if words[:1] == ["show"] and len(words) == 2:
        entry = pretrained.describe(words[1])
        results = entry["results"]
        print(f"pretrained:{words[1].removeprefix(pretrained.PREFIX)}: {entry['description']}\n"
              f"  test {results['metric_name']} {format_metric(results['test_metric'])} (best-validation checkpoint), "
              f"{results['epochs']} epochs, {results['size_bits']['total']} bits of weights\n"
              f"  trained with: {entry['command']}")
        return 0
    if words:
        raise ValueError(f"pretrained {' '.join(words)!r}: use no words (list), 'show NAME' or 'package RUN'")
    for name in pretrained.names():
        entry = pretrained.describe(name)
        results = entry["results"]
        print(f"pretrained:{name:12} {results['metric_name']} {format_metric(results['test_metric']):>9}  "
              f"{results['size_bits']['total']:>7} bits  {entry['description']}")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="hadamrnn", description="Binary / sparse-ternary orthogonal RNNs.")
    parser.add_argument("--version", action="version", version=f"hadamrnn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    data_help = ("data directory (default: for a trained run, the one it was trained on; else $HADAMRNN_DATA, "
                 "else ./data)")

    train = commands.add_parser("train", help="train a model from a YAML config")
    train.add_argument("config", nargs="?",
                       help="a YAML file, or the name of a shipped config (hadamrnn configs); not needed with --resume")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value")
    train.add_argument("--model", metavar="FAMILY", help="train this model family (hadamrnn, ornn, ornn-quantized, "
                       "lstm, gru, fastgrnn) on the config's task: its model section keeps the keys FAMILY takes "
                       "(hidden_size, embedding_dim, ...) and FAMILY's defaults for the rest (and HadamRNN's optim.latent_lr "
                       "only for HadamRNN); --set applies after")
    train.add_argument("--data-dir", help=data_help)
    train.add_argument("--out", help="run directory (default: runs/<config name>)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.add_argument("--tensorboard", action="store_true",
                       help="also write TensorBoard event files to OUT/tensorboard (pip install 'hadamrnn[tensorboard]')")
    train.add_argument("--download", action="store_true", help="fetch missing data files (needs internet)")
    train.set_defaults(run=_train)

    ev = commands.add_parser("eval", help="evaluate a run directory or checkpoint")
    ev.add_argument("checkpoint", help="run directory (uses its best checkpoint), a .safetensors checkpoint, or "
                                       "pretrained:NAME")
    ev.add_argument("--split", choices=["train", "val", "test"], default="test")
    ev.add_argument("--data-dir", help=data_help)
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(run=_eval)

    size = commands.add_parser("size", help="bits per tensor of a config's model or a checkpoint")
    size.add_argument("source", help="YAML config, shipped config name, checkpoint / run directory, or pretrained:NAME")
    size.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    size.add_argument("--data-dir", help=data_help)
    size.add_argument("--json", action="store_true")
    size.set_defaults(run=_size)

    data = commands.add_parser("data", help="load a data set and print its splits, shapes and class counts")
    data.add_argument("name", help="a data set's name (an unknown name is an error that lists them)")
    data.add_argument("--path", help="the .npz file (data set npz)")
    data.add_argument("--set", action="append", default=[], metavar="data.KEY=VALUE",
                      help="a data option, as in a config (e.g. data.train=train.ts for timeseries)")
    data.add_argument("--data-dir", help=data_help)
    data.add_argument("--download", action="store_true", help="fetch missing files (needs internet)")
    data.add_argument("--json", action="store_true")
    data.add_argument("--dump", choices=["train", "val", "test"],
                      help="write this split's raw inputs for 'hadamrnn predict' (with -o FILE; labels to FILE.labels)")
    data.add_argument("-o", "--output", help="the file --dump writes")
    data.set_defaults(run=_data)

    export = commands.add_parser("export", help="write a trained model to a .hrnn file, or to integer C code")
    export.add_argument("source", help="run directory (best checkpoint), a .safetensors checkpoint, or pretrained:NAME")
    export.add_argument("-o", "--output", required=True,
                        help="the .hrnn file (--target file), a directory (c) or the .onnx file (onnx)")
    export.add_argument("--target", choices=["file", "c", "onnx"], default="file",
                        help="file: HadamRNN's compact .hrnn; c: integer C99 (HadamRNN, or FastGRNN trained with "
                             "model.activations: hard); onnx: an ONNX graph of "
                             "any family (pip install 'hadamrnn[onnx]')")
    export.add_argument("--bits", type=int, default=None,
                        help="C target: bits of inputs and hidden states (default: HadamRNN 16, or the model's "
                             "state_bits; FastGRNN the widest up to 16 that keeps every intermediate in int32)")
    export.add_argument("--calibration-samples", type=_positive_int, default=512,
                        help="C target: training sequences used to choose the fixed-point scales")
    export.add_argument("--data-dir", help=data_help)
    export.set_defaults(run=_export)

    predict = commands.add_parser("predict", help="run an exported model on sequences, one per line")
    predict.add_argument("model", help="a .hrnn file, a C export directory (numpy-int: its integer model; numpy, "
                                       "torch: its model.hrnn), an .onnx file (--runtime onnx), a run directory, a "
                                       "checkpoint, or pretrained:NAME")
    predict.add_argument("input", help="text file ('-' for standard input): per line T×d numbers, a text (models "
                                       "of text; two tab-separated texts for QQP), or token ids")
    predict.add_argument("--runtime", choices=["numpy", "torch", "numpy-int", "onnx"], default="numpy")
    predict.add_argument("--token-ids", action="store_true",
                         help="a text model reads token ids, as its generated C does, instead of text")
    predict.set_defaults(run=_predict)

    shipped = commands.add_parser("pretrained", help="the trained models that ship with hadamrnn (pretrained:NAME)")
    shipped.add_argument("words", nargs="*", metavar="show NAME | package RUN",
                         help="nothing: list them; show NAME: one in full; package RUN -o FILE: make one from a run")
    shipped.add_argument("-o", "--output", help="package: the .safetensors file to write")
    shipped.add_argument("--command", dest="train_command", help="package: the command that trained the run")
    shipped.add_argument("--description", default="", help="package: one line on what the model is")
    shipped.add_argument("--data-dir", help=data_help)
    shipped.set_defaults(run=_pretrained)

    compare = commands.add_parser("compare", help="finished runs side by side: a table per data set, CSV and a "
                                                   "size-accuracy plot")
    compare.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (unfinished ones are skipped)")
    compare.add_argument("-o", "--output", metavar="OUT_DIR", help="write compare.md, compare.csv and compare.png here")
    compare.add_argument("--metric", default="test_metric",
                         help="the results.json key shown as the test metric (default test_metric, the task's own; "
                              "e.g. test_macro_f1, test_accuracy)")
    compare.set_defaults(run=_compare)

    sweep = commands.add_parser("sweep", help="many runs of one task searched by Optuna (docs/sweeps.md)")
    sweep.add_argument("spec", metavar="SPEC_OR_DIR", help="a sweep specification (YAML), or a sweep directory to "
                                                           "continue or inspect")
    sweep.add_argument("--out", help="the sweep directory (default: runs/<spec name>)")
    sweep.add_argument("--storage", help="Optuna storage URL shared by the workers of several machines (default: "
                                         "DIR/study.db): postgresql+psycopg://USER@HOST/DB, journal:PATH, ...")
    sweep.add_argument("--study", help="the study's name (default: the spec's study, else its file name)")
    sweep.add_argument("--workers", type=_positive_int, default=1, help="worker processes on this machine")
    sweep.add_argument("--data-dir", help=data_help)
    sweep.add_argument("--status", action="store_true", help="print the trials and the best, run nothing")
    sweep.set_defaults(run=_sweep)

    configs = commands.add_parser("configs", help="list the shipped configs, or print one: configs show NAME")
    configs.add_argument("words", nargs="*", metavar="show NAME", help="print config NAME (YAML, to start your own)")
    configs.set_defaults(run=_configs)

    bench = commands.add_parser("bench", help="time a training step: fast engine vs the step-by-step loop")
    bench.add_argument("--config", choices=["pmnist", "imdb", "copy", "ornn", "ornn-copy", "pmnist-q8", "all"], default="all")
    bench.add_argument("--engine", default="auto", help="engine to compare with the loop (default: auto)")
    bench.add_argument("--repeats", type=_positive_int, default=5, help="timed steps per engine (median reported)")
    bench.add_argument("--json", action="store_true", help="one JSON object per configuration")
    bench.add_argument("--lstm", action="store_true", help="ornn rows: also an LSTM of the same size for reference "
                       "(most of --config all's time: about 15 minutes at pMNIST's shape on 2 cores)")
    bench.set_defaults(run=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    if args.command == "train" and not args.resume and not args.config:
        parser.error("train needs a CONFIG (or --resume with --out RUN_DIR)")
    if args.command == "train" and args.resume and not args.out:
        parser.error("--resume needs --out RUN_DIR")
    try:
        return args.run(args)
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as other commands do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 141
    except (ValueError, OSError) as error:
        print(f"hadamrnn {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside the training loop, which handles its own (start-up, eval, export)
        print(f"\nhadamrnn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
