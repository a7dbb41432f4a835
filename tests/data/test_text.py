import io
import tarfile

import pytest
import torch

from hadamrnn.data import DataError, load_data
from hadamrnn.data.text import MAX_LEN
from hadamrnn.data.tokenize import words

REVIEWS = {
    "train/pos/0_9.txt": "A great film.<br /><br />Great acting, great story!",
    "train/pos/1_8.txt": "Great fun",
    "train/neg/0_2.txt": "Awful film. Awful, awful.",
    "train/neg/1_1.txt": "boring",
    "test/pos/0_10.txt": "great great unknownword",
    "test/neg/0_3.txt": "awful",
    "test/pos/1_7.txt": "film",
    "test/neg/1_4.txt": "boring film",
}


@pytest.fixture
def imdb_dir(tmp_path):
    (tmp_path / "imdb").mkdir()
    with tarfile.open(tmp_path / "imdb/aclImdb_v1.tar.gz", "w:gz") as archive:
        for name, text in REVIEWS.items():
            data = text.encode()
            info = tarfile.TarInfo(f"aclImdb/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return tmp_path


def test_tokenizer_lowercases_and_drops_line_breaks():
    assert words("A great film.<br /><br />Don't!") == ["a", "great", "film", "don't"]


def test_imdb_archive_vocabulary_padding_and_splits(imdb_dir):
    splits = load_data("imdb", imdb_dir)
    assert splits.info.vocab_size == 10_000 and splits.info.loss == "bce"
    assert (len(splits.train), len(splits.val), len(splits.test)) == (4, 2, 2)
    x, y = splits.train.x, splits.train.y
    assert x.shape == (4, MAX_LEN) and x.dtype == torch.int64
    assert y.tolist() == [0, 0, 1, 1]  # neg files first, then pos, by file name
    # most frequent training words: great (4), awful (3), film (2) → ids 3, 4, 5 (Keras numbering)
    awful = x[0][x[0] != 0].tolist()
    assert awful == [1, 4, 5, 4, 4]  # start, awful, film, awful, awful; pre-padded with zeros
    assert (x[0][: MAX_LEN - 5] == 0).all()
    test_tokens = torch.cat([splits.val.x, splits.test.x])
    assert 2 in test_tokens.flatten().tolist()  # the unknown word is out-of-vocabulary
    # the cache is reused and gives the same arrays
    assert (imdb_dir / "imdb/hadamrnn-cache-v2.npz").is_file()
    assert torch.equal(load_data("imdb", imdb_dir).train.x, x)


def test_imdb_keeps_the_last_500_tokens(tmp_path):
    (tmp_path / "imdb/aclImdb/train/pos").mkdir(parents=True)
    (tmp_path / "imdb/aclImdb/test/neg").mkdir(parents=True)
    (tmp_path / "imdb/aclImdb/train/pos/0_9.txt").write_text(" ".join(["good"] * 600 + ["end"]))
    (tmp_path / "imdb/aclImdb/test/neg/0_1.txt").write_text("bad")
    (tmp_path / "imdb/aclImdb/test/neg/1_1.txt").write_text("bad")
    splits = load_data("imdb", tmp_path)
    row = splits.train.x[0]
    assert row[-1].item() == 4 and row[0].item() == 3  # ends with "end"; the start token was cut


def test_imdb_missing_archive(tmp_path):
    with pytest.raises(DataError, match="aclImdb_v1.tar.gz.*ai.stanford.edu"):
        load_data("imdb", tmp_path)


VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "is", "good", "bad", "what", "?", "how"]


@pytest.fixture
def glue_dir(tmp_path):
    (tmp_path / "bert-base-uncased").mkdir()
    (tmp_path / "bert-base-uncased/vocab.txt").write_text("\n".join(VOCAB) + "\n")
    (tmp_path / "glue/SST-2").mkdir(parents=True)
    (tmp_path / "glue/SST-2/train.tsv").write_text("sentence\tlabel\nthe movie is good \t1\nthe movie is BAD\t0\n")
    (tmp_path / "glue/SST-2/dev.tsv").write_text("sentence\tlabel\ngood\t1\n")
    (tmp_path / "glue/QQP").mkdir(parents=True)
    header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
    (tmp_path / "glue/QQP/train.tsv").write_text(header + "0\t1\t2\twhat is good?\thow is good?\t1\n")
    (tmp_path / "glue/QQP/dev.tsv").write_text(header + "1\t3\t4\twhat?\tmovie\t0\n")
    return tmp_path


def test_sst2_wordpiece_pre_padded(glue_dir):
    splits = load_data("sst2", glue_dir)
    assert splits.info.vocab_size == len(VOCAB)
    x, y = splits.train.x, splits.train.y
    assert x.shape == (2, 128) and y.tolist() == [1, 0]
    assert x[1][-6:].tolist() == [2, 5, 6, 7, 9, 3]  # [CLS] the movie is bad [SEP], lowercased
    assert (x[1][:-6] == 0).all()
    assert splits.test is splits.val  # test labels are hidden: the dev set is reported


def test_qqp_joins_questions_with_two_separators(glue_dir):
    splits = load_data("qqp", glue_dir)
    assert splits.train.x[0][-12:].tolist() == [2, 10, 7, 8, 11, 3, 3, 12, 7, 8, 11, 3]
    assert splits.val.y.tolist() == [0]


def test_glue_missing_files_name_the_vocabulary(tmp_path):
    with pytest.raises(DataError, match="vocab.txt"):
        load_data("sst2", tmp_path)


def test_real_text_counts(real_data):
    root = real_data("glue", "bert-base-uncased", "imdb")
    sst2 = load_data("sst2", root)
    assert (len(sst2.train), len(sst2.val)) == (67349, 872)
    assert int(sst2.train.y.sum()) == 37569 and int(sst2.val.y.sum()) == 444
    imdb = load_data("imdb", root)
    assert (len(imdb.train), len(imdb.val), len(imdb.test)) == (25000, 12500, 12500)
    assert int(imdb.train.y.sum()) == 12500 and int(imdb.val.y.sum() + imdb.test.y.sum()) == 12500
    assert int(imdb.train.x.max()) == 9999 and bool((imdb.train.x[:, -1] != 0).all())


def test_two_processes_building_the_imdb_cache_at_once_both_succeed(imdb_dir, monkeypatch):
    """A sweep's workers may tokenise IMDB at the same moment: here a second load runs to its end
    between the first one's serialising and its writing the cache (they once shared one temporary
    file, and the first found it renamed away)."""
    import numpy as np

    savez, inner = np.savez, []

    def savez_then_let_another_load_run(*args, **kwargs):
        savez(*args, **kwargs)
        if not inner:
            inner.append(None)  # the second load's own savez passes through
            inner[0] = load_data("imdb", imdb_dir)

    monkeypatch.setattr(np, "savez", savez_then_let_another_load_run)
    outer = load_data("imdb", imdb_dir)
    assert torch.equal(outer.train.x, inner[0].train.x)
    assert sorted(p.name for p in (imdb_dir / "imdb").iterdir()) == ["aclImdb_v1.tar.gz", "hadamrnn-cache-v2.npz"]
