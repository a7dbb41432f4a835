"""Text classification: IMDB reviews (word vocabulary) and GLUE SST-2 / QQP (BERT WordPiece).

IMDB, from ``imdb/aclImdb_v1.tar.gz`` (read directly) or an extracted ``imdb/aclImdb/`` folder:
lowercase, HTML line breaks removed, words ``[a-z0-9]+('[a-z]+)?`` (:func:`~hadamrnn.data.tokenize.word_tokenizer`);
vocabulary = the most frequent
training words, ids as Keras numbers them (0 padding, 1 start, 2 out-of-vocabulary, words from 3,
``vocab_size`` ids in all); the start token then the words, the last ``MAX_LEN`` tokens kept,
pre-padded with 0. Train = the 25,000 training reviews; validation and test = the two halves of
the 25,000 test reviews, split by a fixed permutation. Token arrays are cached in
``imdb/hadamrnn-cache-v2.npz`` (or ``~/.cache/hadamrnn`` when that folder is read-only),
keyed by the archive's size and modification time.

GLUE (``glue/SST-2/{train,dev}.tsv``, ``glue/QQP/{train,dev}.tsv``) is tokenized with the
``tokenizers`` WordPiece model from ``bert-base-uncased/vocab.txt`` (lowercased, no network;
:func:`~hadamrnn.data.tokenize.wordpiece_tokenizer`):
``[CLS] sentence [SEP]`` (QQP: ``[CLS] q1 [SEP] [SEP] q2 [SEP]``), cut to ``GLUE_LEN`` tokens
and pre-padded with ``[PAD]`` = 0, so the last step holds the last token. Test labels are hidden,
so the dev set serves as both validation and reported test set.

Each set's input transform carries its tokenizer, so an exported model reads raw text.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import tarfile
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_write_bytes
from ..options import option
from ..preprocess import InputTransform, vocabulary_sha256
from .arrays import ArrayDataset, Splits, TaskInfo
from .files import DataFile, damaged, require
from .spec import DataOptions, DataSet
from .tokenize import WORD_SPECIAL, word_tokenizer, wordpiece_tokenizer, words

__all__ = ["load_imdb", "load_glue", "glue_info", "IMDB_INFO", "IMDB_FILES", "GLUE_FILES", "DATASETS"]

MAX_LEN = 500
IMDB_VOCAB = 10_000
GLUE_LEN = 128
SPLIT_SEED = 1234
IMDB_FILES = [DataFile("imdb/aclImdb_v1.tar.gz", "2d1bc6389336aefdeb6f5badd46da7dc097273b545f696f75af227c1992e7056",
                       "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz")]
VOCAB_FILE = DataFile("bert-base-uncased/vocab.txt", "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
                      "https://huggingface.co/bert-base-uncased/resolve/main/vocab.txt")
GLUE_FILES = {
    "sst2": [DataFile("glue/SST-2/train.tsv", "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1",
                      "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip (unzip into glue/)"),
             DataFile("glue/SST-2/dev.tsv", "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0",
                      "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip (unzip into glue/)"), VOCAB_FILE],
    "qqp": [DataFile("glue/QQP/train.tsv", None, "https://dl.fbaipublicfiles.com/glue/data/QQP-clean.zip (unzip into glue/)"),
            DataFile("glue/QQP/dev.tsv", None, "https://dl.fbaipublicfiles.com/glue/data/QQP-clean.zip (unzip into glue/)"),
            VOCAB_FILE],
}
IMDB_INFO = TaskInfo("imdb", num_classes=2, loss="bce", vocab_size=IMDB_VOCAB)


def _imdb_reviews(root: Path) -> dict[str, list[tuple[str, int]]]:
    """{split: [(text, label)]} in file-name order, from the archive or an extracted folder."""
    reviews: dict[str, list[tuple[str, str, int]]] = {"train": [], "test": []}
    pattern = re.compile(r"aclImdb/(train|test)/(pos|neg)/([^/]+\.txt)$")
    folder = root / "imdb" / "aclImdb"
    if folder.is_dir():
        for path in sorted(folder.glob("*/*/*.txt")):
            match = pattern.search(path.as_posix())
            if match:
                reviews[match[1]].append((match[3], path.read_text(encoding="utf-8"), int(match[2] == "pos")))
    else:
        require("imdb", IMDB_FILES, root)
        with tarfile.open(root / IMDB_FILES[0].path, "r:gz") as archive:
            for member in archive:
                match = pattern.search(member.name)
                if match and member.isfile():
                    text = archive.extractfile(member).read().decode("utf-8")
                    reviews[match[1]].append((match[3], text, int(match[2] == "pos")))
    return {split: [(text, label) for _, text, label in sorted(items, key=lambda r: (r[2], r[0]))]
            for split, items in reviews.items()}


def _encode_imdb(reviews: dict[str, list[tuple[str, int]]]) -> dict[str, np.ndarray]:
    counts = Counter(word for text, _ in reviews["train"] for word in words(text))
    ranked = sorted(counts, key=lambda word: (-counts[word], word))[: IMDB_VOCAB - len(WORD_SPECIAL)]
    arrays = {"vocabulary": np.array(WORD_SPECIAL + ranked)}
    transform = imdb_transform(WORD_SPECIAL + ranked)
    for split, items in reviews.items():
        arrays[f"x_{split}"] = transform.text([text for text, _ in items]).astype(np.uint16)  # ids < 10,000
        arrays[f"y_{split}"] = np.array([label for _, label in items], dtype=np.int64)
    return arrays


def imdb_transform(vocabulary: list[str]) -> InputTransform:
    """``<start>`` and the review's word ids (``vocabulary[i]`` is the word of id ``i``), the last
    ``MAX_LEN`` kept, pre-padded."""
    return InputTransform("tokens", length=MAX_LEN, keep="last", vocabulary_sha256=vocabulary_sha256(vocabulary),
                          tokenizer=word_tokenizer(vocabulary).to_str())


def _cache_path(root: Path) -> Path:
    target = root / "imdb"
    # The permission bits count, not just os.access: root may write into a folder marked read-only.
    if os.access(target, os.W_OK) and target.stat().st_mode & 0o222:
        return target / "hadamrnn-cache-v2.npz"
    key = hashlib.sha1(str(target.resolve()).encode()).hexdigest()[:16]
    return Path.home() / ".cache" / "hadamrnn" / f"imdb-{key}-v2.npz"


def load_imdb(root: Path) -> Splits:
    source = root / IMDB_FILES[0].path
    folder = root / "imdb" / "aclImdb"
    if not folder.is_dir():
        require("imdb", IMDB_FILES, root)
    stamp = np.array([source.stat().st_size, int(source.stat().st_mtime)] if source.is_file() else [0, 0])
    cache = _cache_path(root)
    arrays = None
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as stored:
                if np.array_equal(stored["stamp"], stamp):
                    arrays = {k: stored[k] for k in stored.files}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            arrays = None  # a damaged cache of ours: tokenise again and rewrite it
    if arrays is None:
        try:
            arrays = _encode_imdb(_imdb_reviews(root))
        except (OSError, EOFError, tarfile.TarError, UnicodeDecodeError, zlib.error) as error:
            raise damaged("imdb", IMDB_FILES, root, f"{type(error).__name__}: {error}") from error
        if not len(arrays["x_train"]) or not len(arrays["x_test"]):
            raise damaged("imdb", IMDB_FILES, root, "no reviews found under aclImdb/{train,test}/{pos,neg}/")
        # a temporary file of its own: two processes (a sweep's workers) may build the cache at once
        buffer = io.BytesIO()
        np.savez(buffer, stamp=stamp, **arrays)
        atomic_write_bytes(cache, buffer.getvalue())
    held = np.random.default_rng(SPLIT_SEED).permutation(len(arrays["x_test"]))
    half = len(held) // 2
    tensors = lambda x, y: ArrayDataset(torch.from_numpy(x.astype(np.int64)), torch.from_numpy(y))  # noqa: E731
    info = replace(IMDB_INFO, transform=imdb_transform(arrays["vocabulary"].tolist()).to_dict())
    return Splits(info, tensors(arrays["x_train"], arrays["y_train"]),
                  tensors(arrays["x_test"][held[:half]], arrays["y_test"][held[:half]]),
                  tensors(arrays["x_test"][held[half:]], arrays["y_test"][held[half:]]))


def _read_tsv(path: Path) -> list[dict[str, str]]:
    """Rows of a GLUE file; ``ValueError`` (with the file's name) when it is not UTF-8 TSV."""
    try:
        with open(path, encoding="utf-8", newline="") as stream:
            return list(csv.DictReader(stream, delimiter="\t", quoting=csv.QUOTE_NONE))
    except (UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{path.name}: not a UTF-8 tab-separated file ({error})") from None


def glue_info(root: Path, task: str) -> TaskInfo:
    """The task description; reads only the vocabulary (its size is the embedding's)."""
    (vocab_path,) = require(task, [VOCAB_FILE], root)
    try:
        with open(vocab_path, encoding="utf-8") as stream:
            vocab_size = sum(1 for _ in stream)
    except UnicodeDecodeError as error:
        raise damaged(task, [VOCAB_FILE], root, f"vocab.txt is not UTF-8 ({error})") from None
    return TaskInfo(task, num_classes=2, loss="bce", vocab_size=vocab_size)


def load_glue(root: Path, task: str) -> Splits:
    files = GLUE_FILES[task]
    train_path, dev_path, vocab_path = require(task, files, root)
    info = glue_info(root, task)
    try:
        tokenizer = wordpiece_tokenizer(vocab_path, lowercase=True, pairs=task == "qqp")
    except ValueError as error:
        raise damaged(task, files, root, f"vocab.txt: {error}") from None
    # the first GLUE_LEN - 1 ids and the closing [SEP]
    cut = InputTransform("tokens", length=GLUE_LEN, keep="first", vocabulary_sha256=vocabulary_sha256(
        vocab_path.read_text(encoding="utf-8").splitlines()), tokenizer=tokenizer.to_str(), pairs=task == "qqp")
    info = replace(info, transform=cut.to_dict())

    def encode(path: Path) -> ArrayDataset:
        try:
            rows = _read_tsv(path)
            if task == "sst2":
                texts = [row["sentence"] for row in rows]
                labels = [int(row["label"]) for row in rows]
            else:
                texts = [(row["question1"], row["question2"]) for row in rows]
                labels = [int(row["is_duplicate"]) for row in rows]
        except (KeyError, TypeError, ValueError) as error:
            raise damaged(task, files, root, f"{path.name}: unexpected columns or labels ({error})") from error
        return ArrayDataset(torch.from_numpy(cut.text(texts)), torch.tensor(labels, dtype=torch.int64))

    dev = encode(dev_path)
    if tokenizer.get_vocab_size() != info.vocab_size:
        raise damaged(task, files, root, "vocab.txt has duplicate or blank lines")
    return Splits(info, encode(train_path), dev, dev)


@dataclass
class TextOptions(DataOptions):
    name: str = option("imdb", choices=("imdb", "sst2", "qqp"))


DATASETS = {
    "imdb": DataSet(TextOptions, lambda options, root: IMDB_INFO, lambda options, root: load_imdb(root),
                    files=tuple(IMDB_FILES)),
    **{task: DataSet(TextOptions, lambda options, root: glue_info(root, options.name),
                     lambda options, root: load_glue(root, options.name), files=tuple(files))
       for task, files in GLUE_FILES.items()},
}
