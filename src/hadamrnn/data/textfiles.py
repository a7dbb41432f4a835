"""Your own text: a CSV or TSV file with a text column and a label column.

``data: {name: text, train: PATH, test: PATH[, val: PATH], text_column: NAME, label_column: NAME,
tokenizer: TOK, length: N}``. The delimiter follows each file's extension:

- ``.csv``: commas, with the quoting of RFC 4180 (a field holding commas, quotes or line breaks
  is quoted, a quote inside doubled), as spreadsheets and pandas write it;
- ``.tsv``: tabs, no quoting (GLUE's convention: a quote is a character like any other, and no
  field holds a tab or a line break).

The first line names the columns. ``tokenizer``: the path of a WordPiece ``vocab.txt`` (BERT's, one
token per line, ``[PAD]`` first; ``[CLS] text [SEP]``, lowercased with ``lowercase``), of a
``tokenizers`` JSON file (``tokenizer.json``: used as it is, its own special tokens; id 0 must be
the padding), or ``train`` to learn a WordPiece vocabulary of ``vocab_size`` tokens from the
training texts (as a ``vocab.txt`` is used). A run that learns one saves it as
``RUN/tokenizer.json`` and names that file in its configuration, so that ``--resume`` and ``eval``
read the same ids: ``tokenizers`` breaks ties between equally frequent merges in hash-map order,
so two trainings on a small corpus may learn different vocabularies (pass a run's
``tokenizer.json`` to share one). The ids are cut to ``length`` tokens (the first ``length - 1``
and the final one, ``[SEP]``) and pre-padded. The tokenizer is carried by the run and every
export, so ``predict`` takes raw text.

Labels are strings; the classes are the training file's labels, sorted as time-series labels are
(:func:`hadamrnn.classes.sorted_labels`), and their names are printed by ``eval`` and ``predict``.
Two classes train one logit with binary cross-entropy (as SST-2 does), more train a softmax.
Without ``val``, 10% of the training rows (a fixed seed) are held out for validation.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from tokenizers import Tokenizer

from ..atomic import atomic_write_bytes
from ..classes import sorted_labels
from ..options import option
from ..preprocess import MAX_STEPS, InputTransform, vocabulary_sha256
from .arrays import MAX_CLASSES, MAX_VOCABULARY, ArrayDataset, Splits, TaskInfo
from .spec import DataSet, SplitFilesOptions, file_error, held_out
from .tokenize import train_wordpiece, vocabulary, wordpiece_tokenizer

__all__ = ["TextFileOptions", "read_texts", "DATASETS"]

MAX_FIELD_CHARS = 1 << 24
_fail = file_error


@dataclass
class TextFileOptions(SplitFilesOptions):
    """The ``data:`` keys of your own text files: ``train``, ``test`` and ``val`` name .csv or .tsv files."""

    name: str = option("text", choices=("text",))
    text_column: str = "text"
    label_column: str = "label"
    tokenizer: str = "train"  # a WordPiece vocab.txt, a tokenizer.json, or "train": learnt from the training texts
    vocab_size: int = option(8000, low=len(("[PAD]", "[UNK]", "[CLS]", "[SEP]")) + 1, high=MAX_VOCABULARY)  # for train
    lowercase: bool = True
    length: int = option(128, low=3, high=MAX_STEPS)  # tokens, [CLS] and [SEP] included


def read_texts(path: str | Path, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    """The texts and string labels of a ``.csv`` or ``.tsv`` file; a :class:`TextFileError` naming the
    file and line (a :class:`~hadamrnn.data.spec.DataFileError`) for a row without its fields, an empty
    text or label, or a file that is not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such text file")
    dialects = {".csv": {"delimiter": ","}, ".tsv": {"delimiter": "\t", "quoting": csv.QUOTE_NONE}}
    if path.suffix.lower() not in dialects:
        raise _fail(path, None, f"unknown extension {path.suffix!r}: .csv (quoted as RFC 4180) or .tsv (no quoting)")
    texts, labels = [], []
    csv.field_size_limit(MAX_FIELD_CHARS)
    try:
        with open(path, encoding="utf-8", newline="") as stream:
            reader = csv.reader(stream, **dialects[path.suffix.lower()])
            header = next(reader, None)
            if header is None:
                raise _fail(path, None, "empty file: the first line names the columns")
            header = [name.strip() for name in header]
            for column in (text_column, label_column):
                if column not in header:
                    raise _fail(path, 1, f"no column {column!r} (the columns are {', '.join(header)[:200]}); set "
                                         f"data.text_column and data.label_column")
            where = header.index(text_column), header.index(label_column)
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                if len(row) != len(header):
                    raise _fail(path, line, f"{len(row)} fields where the header has {len(header)}"
                                + (" (a quote opened and never closed?)" if path.suffix.lower() == ".csv" else ""))
                text, label = row[where[0]], row[where[1]].strip()
                if not text.strip():
                    raise _fail(path, line, f"the text ({text_column!r}) is empty")
                if not label or label.lower() == "nan":
                    raise _fail(path, line, f"the label ({label_column!r}) is empty or NaN")
                texts.append(text)
                labels.append(label)
    except UnicodeDecodeError as error:
        raise _fail(path, None, f"not UTF-8 text ({error})") from None
    except csv.Error as error:
        raise _fail(path, None, f"not a readable {path.suffix.lower()[1:].upper()} file ({error})") from None
    if not texts:
        raise _fail(path, None, "no rows below the header")
    return texts, labels


def _tokenizer(options: TextFileOptions, texts: list[str]):
    """The tokenizer ``data.tokenizer`` names, or one learnt from ``texts``."""
    if options.tokenizer == "train":
        return train_wordpiece(texts, options.vocab_size, options.lowercase)
    path = Path(options.tokenizer)
    if not path.is_file():
        raise FileNotFoundError(f"data.tokenizer {path}: no such file; give a vocab.txt, a tokenizer.json or 'train'")
    try:
        tokenizer = Tokenizer.from_file(str(path)) if path.suffix == ".json" else wordpiece_tokenizer(path, options.lowercase)
    except Exception as error:  # tokenizers' own exception types for an unreadable file
        kind = "tokenizers JSON" if path.suffix == ".json" else "WordPiece vocab.txt"
        raise ValueError(f"data.tokenizer {path}: not a {kind} file ({str(error)[:200]})") from None
    if tokenizer.id_to_token(0) is None or tokenizer.encode("").ids[:1] == [0]:
        raise ValueError(f"data.tokenizer {path}: id 0 must be the padding token ([PAD]), which text never encodes to")
    return tokenizer


def _prepare(options: TextFileOptions, run_dir: Path, write: bool) -> TextFileOptions:
    """A run that learns its tokenizer saves it in ``run_dir/tokenizer.json`` and reads it from there."""
    if options.tokenizer != "train":
        return options
    path = (run_dir / "tokenizer.json").resolve()
    if write:
        texts = read_texts(options.train, options.text_column, options.label_column)[0]
        if options.val is None:  # only the rows that train (the held-out ones are validation)
            texts = [texts[k] for k in held_out(Path(options.train), len(texts))[0]]
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, _tokenizer(options, texts).to_str(pretty=True).encode())
    return replace(options, tokenizer=str(path))


def _load(options: TextFileOptions, root: Path) -> Splits:
    for key in ("train", "test"):
        if getattr(options, key) is None:
            raise ValueError(f"data set 'text' needs data.{key}: a .csv or .tsv file")
    read = lambda path: read_texts(path, options.text_column, options.label_column)  # noqa: E731
    train_path = Path(options.train)
    splits = {"train": read(train_path), "test": read(options.test)}
    classes = sorted_labels(splits["train"][1])
    if not 2 <= len(classes) <= MAX_CLASSES:
        raise _fail(train_path, None, f"{len(classes)} class(es) in {options.label_column!r}; a classifier needs 2 "
                                      f"to {MAX_CLASSES}")
    if options.val is not None:
        splits["val"] = read(options.val)
    else:
        texts, labels = splits["train"]
        kept, held = held_out(train_path, len(texts))
        splits["train"] = [texts[k] for k in kept], [labels[k] for k in kept]
        splits["val"] = [texts[k] for k in held], [labels[k] for k in held]
    index = {label: k for k, label in enumerate(classes)}
    for split, path in (("val", options.val or train_path), ("test", options.test)):
        unknown = sorted(set(splits[split][1]) - set(index), key=str)
        if unknown:
            raise _fail(Path(path), None, f"label {unknown[0][:40]!r} is not among the training file's classes "
                                          f"({', '.join(classes)[:200]})")
    tokenizer = _tokenizer(options, splits["train"][0])
    # the first length - 1 ids and the closing [SEP], pre-padded with [PAD] = 0
    transform = InputTransform("tokens", length=options.length, keep="first",
                               vocabulary_sha256=vocabulary_sha256(vocabulary(tokenizer)), tokenizer=tokenizer.to_str())
    binary = len(classes) == 2
    info = TaskInfo("text", num_classes=len(classes), loss="bce" if binary else "ce",
                    vocab_size=tokenizer.get_vocab_size(), transform=transform.to_dict(), classes=tuple(classes))
    datasets = [ArrayDataset(torch.from_numpy(transform.text(splits[split][0])),
                             torch.tensor([index[label] for label in splits[split][1]], dtype=torch.int64))
                for split in ("train", "val", "test")]
    return Splits(info, *datasets)


DATASETS = {"text": DataSet(TextFileOptions, lambda options, root: _load(options, root).info, _load,
                            paths=("train", "test", "val", "tokenizer"), keywords=("train",), prepare=_prepare)}
