"""Your own text (``data: {name: text}``): CSV and TSV files, a WordPiece vocabulary given or learnt,
class names, and a model that reads raw text in every runtime."""

import csv
import importlib.util
import json

import numpy as np
import pytest

from hadamrnn.data import load_data, summarize
from hadamrnn.data.textfiles import read_texts
from hadamrnn.data.tokenize import train_wordpiece
from hadamrnn.preprocess import InputTransform

REVIEWS = [("A great, great film — «très bien»", "pos"), ('He said "dull", twice.', "neg"),
           ("Line one\nline two: still one review", "pos"), ("naïve but touching", "pos"),
           ("boring, long and loud", "neg"), ("great cast, great story", "pos"), ("dull and boring", "neg"),
           ("a touching story", "pos"), ("loud, long, dull", "neg"), ("great fun", "pos")]


def _write_csv(path, rows, header=("id", "text", "label")):
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows((k, text, label) for k, (text, label) in enumerate(rows))
    return path


def test_a_csv_with_quotes_commas_line_breaks_and_non_ascii_reads_back_exactly(tmp_path):
    texts, labels = read_texts(_write_csv(tmp_path / "a.csv", REVIEWS), "text", "label")
    assert list(zip(texts, labels)) == REVIEWS


def test_a_tsv_is_read_without_quoting_as_glue_writes_it(tmp_path):
    (tmp_path / "a.tsv").write_text('sentence\tlabel\n"quoted" start\t1\nplain\t0\n', encoding="utf-8")
    assert read_texts(tmp_path / "a.tsv", "sentence", "label") == (['"quoted" start', "plain"], ["1", "0"])


@pytest.mark.parametrize("content, message", [
    ("text,label\nfine,pos\n\"never closed,pos\nok,neg\n", r"a\.csv, line 4: 1 fields where the header has 2 "
                                                           r"\(a quote opened and never closed\?\)"),
    ("text,label\nfine,pos\ntoo,many,fields\n", r"a\.csv, line 3: 3 fields where the header has 2"),
    ("text,label\nfine,pos\n ,neg\n", r"a\.csv, line 3: the text \('text'\) is empty"),
    ("text,label\nfine,pos\nfine,\n", r"a\.csv, line 3: the label \('label'\) is empty or NaN"),
    ("text,label\nfine,NaN\n", r"a\.csv, line 2: the label \('label'\) is empty or NaN"),
    ("sentence,label\nfine,pos\n", r"a\.csv, line 1: no column 'text' \(the columns are sentence, label\)"),
    ("text,label\n", r"a\.csv: no rows below the header"),
])
def test_a_bad_row_is_named_by_file_and_line(tmp_path, content, message):
    (tmp_path / "a.csv").write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_texts(tmp_path / "a.csv", "text", "label")


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"text,label\ncaf\xe9,pos\n")
    with pytest.raises(ValueError, match=r"a\.csv: not UTF-8 text"):
        read_texts(tmp_path / "a.csv", "text", "label")


def test_a_test_label_unseen_in_training_is_refused(tmp_path):
    _write_csv(tmp_path / "train.csv", REVIEWS), _write_csv(tmp_path / "test.csv", [("so-so", "mixed")])
    with pytest.raises(ValueError, match=r"test\.csv: label 'mixed' is not among the training file's classes "
                                         r"\(neg, pos\)"):
        load_data("text", train=tmp_path / "train.csv", test=tmp_path / "test.csv", vocab_size=60)


def test_a_learnt_vocabulary_numbers_its_tokens_canonically():
    """Special tokens first, then the learnt ones sorted (the trainer numbers some in hash-map order)."""
    tokenizer = train_wordpiece([text for text, _ in REVIEWS] * 3, 80)
    table = tokenizer.get_vocab()
    tokens = sorted(table, key=table.get)
    assert tokens[:4] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] and tokens[4:] == sorted(tokens[4:])


def test_a_run_saves_its_learnt_tokenizer_and_resumes_with_it(tmp_path):
    """tokenizer: train is learnt once, saved as RUN/tokenizer.json and named in the run's config, so
    that a resume reads the same ids and ends as a straight run does."""
    from dataclasses import replace

    from hadamrnn.train import fit
    from hadamrnn.train.config import from_dict

    _write_csv(tmp_path / "train.csv", REVIEWS * 3), _write_csv(tmp_path / "test.csv", REVIEWS)
    config = from_dict({"data": {"name": "text", "train": str(tmp_path / "train.csv"), "test": str(tmp_path / "test.csv"),
                                 "vocab_size": 60, "length": 16, "batch_size": 4},
                        "model": {"hidden_size": 8, "embedding_dim": 4}, "optim": {"epochs": 2}})
    assert not fit(config, tmp_path / "run", progress=False, stop_after_steps=3).completed
    learnt = tmp_path / "run" / "tokenizer.json"
    assert f"tokenizer: {learnt}" in (tmp_path / "run" / "config.yaml").read_text()
    resumed = fit(None, tmp_path / "run", resume=True, progress=False).results
    # a straight run given that tokenizer.json (a tokenizers JSON file is a tokenizer too)
    given = replace(config, data=replace(config.data, tokenizer=str(learnt)))
    assert fit(given, tmp_path / "straight", progress=False).results["test_loss"] == resumed["test_loss"]


def test_labels_become_named_classes_and_texts_pre_padded_ids(tmp_path):
    _write_csv(tmp_path / "train.csv", REVIEWS), _write_csv(tmp_path / "test.csv", REVIEWS[:3])
    splits = load_data("text", train=tmp_path / "train.csv", test=tmp_path / "test.csv", val=tmp_path / "test.csv",
                       vocab_size=60, length=40)
    assert splits.info.classes == ("neg", "pos") and splits.info.loss == "bce"
    assert splits.test.y.tolist() == [1, 0, 1]
    assert summarize(splits)["splits"]["test"]["class_counts"] == {"neg": 1, "pos": 2}  # hadamrnn data names them
    transform = InputTransform.from_dict(splits.info.transform)
    assert splits.test.x.shape == (3, 40)
    np.testing.assert_array_equal(splits.test.x.numpy(), transform.text([text for text, _ in REVIEWS[:3]]))
    row = splits.test.x[1].tolist()
    assert row[0] == 0 and row[-1] == 3 and 2 in row  # pre-padded with [PAD]; [CLS] … [SEP]


def test_three_classes_train_a_softmax(tmp_path):
    rows = [(text, {"pos": "good", "neg": "bad"}[label]) for text, label in REVIEWS] + [("so-so", "mixed")] * 3
    _write_csv(tmp_path / "train.csv", rows)
    splits = load_data("text", train=tmp_path / "train.csv", test=tmp_path / "train.csv", vocab_size=60)
    assert splits.info.classes == ("bad", "good", "mixed") and splits.info.loss == "ce"
    assert len(splits.val) == 1 and len(splits.train) == len(rows) - 1  # 10%, at least one, held out


def test_a_model_of_text_reads_raw_text_in_every_runtime_and_reproduces_eval(tmp_path, monkeypatch, capsys):
    """Trained on a CSV with a learnt vocabulary: predict on the raw test texts (one per line) gives
    eval's accuracy and the class names, the same in numpy, torch, onnx and the integer model, and
    the integer model given the token ids (as the C program reads them) answers as given the text."""
    from hadamrnn.cli import main
    from hadamrnn.train import load_trained

    monkeypatch.chdir(tmp_path)
    one_line = [(text.replace("\n", " "), label) for text, label in REVIEWS]
    _write_csv(tmp_path / "train.csv", one_line * 4), _write_csv(tmp_path / "test.csv", one_line)
    (tmp_path / "text.yaml").write_text("data: {name: text, train: train.csv, test: test.csv, vocab_size: 60, "
                                        "length: 16, batch_size: 8}\nmodel: {hidden_size: 16, embedding_dim: 8}\noptim: {epochs: 3}\n")
    assert main(["train", "text.yaml", "--out", "run"]) == 0
    capsys.readouterr()
    assert main(["eval", "run", "--json"]) == 0
    accuracy = json.loads(capsys.readouterr().out)["accuracy"]
    (tmp_path / "lines.txt").write_text("".join(text + "\n" for text, _ in one_line), encoding="utf-8")
    assert main(["export", "run", "--target", "c", "-o", "c"]) == 0
    runs = [["run"], ["run", "--runtime", "torch"], ["c", "--runtime", "numpy-int"]]
    if importlib.util.find_spec("onnxruntime") is not None:
        runs.append(["run", "--runtime", "onnx"])
    answers = []
    for model, *options in runs:
        capsys.readouterr()
        assert main(["predict", model, "lines.txt", *options]) == 0
        answers.append([line.split()[0] for line in capsys.readouterr().out.splitlines()])
    assert np.mean([answer == label for answer, (_, label) in zip(answers[0], one_line)]) == pytest.approx(accuracy)
    assert all(names == answers[0] for names in answers[1:])
    transform = InputTransform.from_dict(load_trained("run")[2].transform)
    (tmp_path / "ids.txt").write_text("".join(" ".join(map(str, ids)) + "\n"
                                              for ids in transform.encode([text for text, _ in one_line])))
    capsys.readouterr()
    assert main(["predict", "c", "ids.txt", "--runtime", "numpy-int", "--token-ids"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == answers[2]


def test_a_text_line_that_is_not_utf8_is_named_and_a_pair_needs_its_tab():
    from hadamrnn.deploy.inputs import InputError, parse_text

    with pytest.raises(InputError, match=r"line 3: not UTF-8 text \(byte 0xe9 at column 4\)"):
        parse_text(b"caf\xe9", 3, pairs=False)
    assert parse_text(b" \t ", 1, pairs=False) is None
    assert parse_text("what is it?\thow is it?".encode(), 1, pairs=True) == ("what is it?", "how is it?")
    with pytest.raises(InputError, match="line 2: this model reads two texts, separated by a tab"):
        parse_text(b"one text only", 2, pairs=True)


def test_sst2_as_a_csv_with_the_bert_vocabulary_is_the_built_in_sst2(tmp_path, real_data):
    """The real SST-2 files rewritten as CSV and read by data: text give the built-in loader's ids
    and labels, split for split."""
    root = real_data("glue/SST-2", "bert-base-uncased")
    for split in ("train", "dev"):
        with open(root / f"glue/SST-2/{split}.tsv", encoding="utf-8", newline="") as stream:
            rows = list(csv.DictReader(stream, delimiter="\t", quoting=csv.QUOTE_NONE))
        with open(tmp_path / f"{split}.csv", "w", encoding="utf-8", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["sentence", "label"])
            writer.writerows((row["sentence"], row["label"]) for row in rows)
    built_in = load_data("sst2", root)
    text = load_data("text", train=tmp_path / "train.csv", val=tmp_path / "dev.csv", test=tmp_path / "dev.csv",
                     text_column="sentence", tokenizer=str(root / "bert-base-uncased/vocab.txt"))
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(text, split).x.numpy(), getattr(built_in, split).x.numpy())
        np.testing.assert_array_equal(getattr(text, split).y.numpy(), getattr(built_in, split).y.numpy())
    assert text.info.transform == built_in.info.transform and text.info.classes == ("0", "1")


def test_predict_on_raw_sst2_dev_sentences_reproduces_eval(tmp_path, real_data, monkeypatch, capsys):
    """A model of the built-in sst2 set (briefly trained) carries BERT's tokenizer: its answers to the
    raw dev sentences, one per line, score what eval scores on the dev ids."""
    from hadamrnn.cli import main

    root = real_data("glue/SST-2", "bert-base-uncased")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sst2.yaml").write_text(
        "data: {name: sst2, batch_size: 64}\nmodel: {hidden_size: 32, embedding_dim: 16}\n"
        "optim: {epochs: 1, max_steps_per_epoch: 60, lr: 3.0e-3}\n")
    assert main(["train", "sst2.yaml", "--out", "run", "--data-dir", str(root)]) == 0
    capsys.readouterr()
    assert main(["eval", "run", "--json", "--data-dir", str(root)]) == 0
    accuracy = json.loads(capsys.readouterr().out)["accuracy"]
    with open(root / "glue/SST-2/dev.tsv", encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream, delimiter="\t", quoting=csv.QUOTE_NONE))
    (tmp_path / "dev.txt").write_text("".join(row["sentence"] + "\n" for row in rows), encoding="utf-8")
    assert main(["predict", "run", "dev.txt"]) == 0
    answers = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert len(answers) == len(rows) == 872
    assert np.mean([answer == row["label"] for answer, row in zip(answers, rows)]) == accuracy
    assert set(answers) == {"0", "1"}  # both classes answered: not two constant answers agreeing
