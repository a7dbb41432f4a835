"""The tokenizers of text models, built with the ``tokenizers`` library and carried by the model.

A text model's input transform holds its tokenizer as JSON (``InputTransform.tokenizer``), so that
an exported model turns raw text into the ids it was trained on in every runtime. Each tokenizer
adds its model's special tokens itself and has id 0 for padding:

- :func:`word_tokenizer`: IMDB's words (lowercase, HTML line breaks removed, words
  ``[a-z0-9]+('[a-z]+)?``, unknown words ``<oov>``), ``<start>`` first;
- :func:`wordpiece_tokenizer`: BERT's WordPiece from a ``vocab.txt`` (``[CLS] text [SEP]``; pairs
  ``[CLS] a [SEP] [SEP] b [SEP]``, as GLUE's QQP is read);
- :func:`train_wordpiece`: a WordPiece vocabulary trained on your training texts, with the same
  normaliser and template.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordLevel, WordPiece
from tokenizers.trainers import WordPieceTrainer

__all__ = ["WORD_SPECIAL", "WORDPIECE_SPECIAL", "word_tokenizer", "words", "wordpiece_tokenizer", "train_wordpiece",
           "vocabulary"]

WORD_SPECIAL = ["<pad>", "<start>", "<oov>"]  # ids 0-2 of a word vocabulary
WORDPIECE_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]  # ids 0-3 of a trained WordPiece vocabulary
_WORD = r"[a-z0-9]+(?:'[a-z]+)?"


def _words_pipeline(tokenizer: Tokenizer) -> Tokenizer:
    tokenizer.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace("<br />", " "),
                                                 normalizers.Replace("<br/>", " ")])
    # invert: the pattern matches the words kept; what lies between them is dropped
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(_WORD), behavior="removed", invert=True)
    return tokenizer


_SPLITTER = _words_pipeline(Tokenizer(WordLevel({"<oov>": 0}, unk_token="<oov>")))


def words(text: str) -> list[str]:
    """IMDB's words of a text, as :func:`word_tokenizer` splits it."""
    return [word for word, _ in _SPLITTER.pre_tokenizer.pre_tokenize_str(_SPLITTER.normalizer.normalize_str(text))]


def word_tokenizer(vocabulary: list[str]) -> Tokenizer:
    """Words to ids by ``vocabulary`` (``vocabulary[i]`` is id ``i``; it starts with :data:`WORD_SPECIAL`)."""
    if list(vocabulary[:3]) != WORD_SPECIAL:
        raise ValueError(f"a word vocabulary starts with {WORD_SPECIAL}")
    tokenizer = _words_pipeline(Tokenizer(WordLevel({word: k for k, word in enumerate(vocabulary)}, unk_token="<oov>")))
    tokenizer.post_processor = processors.TemplateProcessing(single="<start> $A", special_tokens=[("<start>", 1)])
    return tokenizer


def _bert(tokenizer: Tokenizer, lowercase: bool, pairs: bool) -> Tokenizer:
    """BERT's normaliser and pre-tokeniser, and its template (``[PAD]`` must be id 0)."""
    if tokenizer.token_to_id("[PAD]") != 0:
        raise ValueError("[PAD] is not token 0 of the vocabulary")
    missing = [token for token in WORDPIECE_SPECIAL if tokenizer.token_to_id(token) is None]
    if missing:
        raise ValueError(f"the vocabulary lacks {missing}")
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = [(token, tokenizer.token_to_id(token)) for token in ("[CLS]", "[SEP]")]
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] [SEP] $B:1 [SEP]:1" if pairs else None, special_tokens=special)
    return tokenizer


def wordpiece_tokenizer(vocab_path: str | Path, lowercase: bool = True, pairs: bool = False) -> Tokenizer:
    """BERT's WordPiece tokenizer of a ``vocab.txt`` (one token per line, line ``i`` is id ``i``)."""
    return _bert(Tokenizer(WordPiece.from_file(str(vocab_path), unk_token="[UNK]")), lowercase, pairs)


def train_wordpiece(texts: Iterable[str], vocab_size: int, lowercase: bool = True) -> Tokenizer:
    """A WordPiece tokenizer of at most ``vocab_size`` tokens learnt from ``texts`` (deterministic:
    the same texts give the same vocabulary)."""
    tokenizer = Tokenizer(WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(texts, WordPieceTrainer(vocab_size=vocab_size, special_tokens=WORDPIECE_SPECIAL,
                                                          show_progress=False))
    # The trainer learns the same tokens each time but numbers some of them in hash-map order, which
    # changes from process to process: the ids are made canonical (special tokens, then sorted).
    learnt = sorted(set(vocabulary(tokenizer)) - set(WORDPIECE_SPECIAL))
    table = {token: k for k, token in enumerate(WORDPIECE_SPECIAL + learnt)}
    return _bert(Tokenizer(WordPiece(table, unk_token="[UNK]")), lowercase, pairs=False)


def vocabulary(tokenizer: Tokenizer) -> list[str]:
    """The tokens in id order."""
    table = tokenizer.get_vocab(with_added_tokens=True)
    return sorted(table, key=table.get)
