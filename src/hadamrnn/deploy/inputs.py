"""The input grammar of ``predict``: what a line of input is, for every runtime (NumPy only).

The generated C ``predict`` implements the same grammar (``templates/predict.c``); both are
written down in docs/format.md ("Input lines"), and a property test feeds the same random and
hostile lines to the C program and to the ``numpy``, ``numpy-int`` and ``torch`` runtimes.

- Input is bytes. A line ends at LF; a CR right before an LF (or before the end of the input) is
  part of the line end. A line holds at most ``MAX_LINE_BYTES`` bytes.
- Words are separated by spaces and tabs. Any other byte below 0x20, DEL (0x7F) and every byte
  from 0x80 up (input is ASCII) is refused. A word holds at most ``MAX_WORD`` characters.
- Feature models: a word is a decimal number, ``[+-]? (digits [. digits?] | . digits)
  ([eE] [+-]? digits)?`` (no ``inf``, ``nan``, hex floats, ``_`` or non-ASCII digits), read
  correctly rounded to a double. A value beyond float32's range is taken as ``±FLT_MAX``, and so
  is a value the model's input transform (float32 arithmetic) carries beyond it: inputs
  saturate, as the integer model's do, and never become infinite or NaN.
- Token models: a word is a token id, ASCII digits only, below the vocabulary size.
- A line of spaces and tabs only is skipped (no output).
- Text models (whose transform carries a tokenizer): a line is one text, UTF-8 (any characters
  but the line end), or two texts separated by the first tab for a model of pairs; the generated
  C reads token ids (``predict --token-ids`` makes every runtime read ids as C does).

Errors, in this order: the first bad byte, over-long word or malformed word (or out-of-range
token id) in reading order; then a count of values that is not a multiple of the inputs per
step; then a step count that a model reading a fixed order of steps cannot take. Each names the
line (counted from 1, skipped lines included) and the word or byte.
"""

from __future__ import annotations

import re
from typing import BinaryIO, Iterator

import numpy as np

__all__ = ["InputError", "read_lines", "parse_line", "parse_text", "MAX_WORD", "MAX_LINE_BYTES", "FLOAT32_MAX"]

MAX_WORD = 63
MAX_LINE_BYTES = 1 << 24
FLOAT32_MAX = float(np.finfo(np.float32).max)

_NUMBER = rb"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_TOKEN = rb"[0-9]+"
_FORBIDDEN = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f-\xff]")
_WORD = re.compile(rb"[^ \t]+")
_FORMS = {form: re.compile(form) for form in (_NUMBER, _TOKEN)}
# The bytes a valid line is made of. Over these, Python's float() takes exactly the decimal form
# (its extras, "inf", "nan" and "1_0", need other bytes), and int() exactly the token form.
_ALPHABET = {False: b"0123456789+-.eE \t", True: b"0123456789 \t"}


class InputError(ValueError):
    """A line that is not input for this model; the message names the line and the word or byte."""


def read_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes, bool]]:
    """``(number, line, complete)`` for every line of a binary stream, without its line end.
    ``complete`` is False for a line cut at ``MAX_LINE_BYTES`` (it is longer; nothing after the cut is read)."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 2)
        if not line:
            return
        number += 1
        ended = line.endswith(b"\n")
        if ended:
            line = line[:-1]
        if line.endswith(b"\r") and (ended or len(line) < MAX_LINE_BYTES + 2):  # CRLF, or a CR ending the input
            line = line[:-1]
        if len(line) > MAX_LINE_BYTES:
            yield number, line[:MAX_LINE_BYTES], False
            return
        yield number, line, True


def _word_error(word: bytes, tokens: bool, vocabulary: int | None) -> str | None:
    """Why ``word`` (a well-formed ASCII word of at most MAX_WORD characters) is not an input, or None."""
    text = word.decode("ascii")
    if tokens:
        if not _FORMS[_TOKEN].fullmatch(word):
            return f"not a token id (a whole number from 0 to {vocabulary - 1}): '{text}'"
        if int(word) >= vocabulary:
            return f"token id '{text}' is not below the vocabulary size {vocabulary}"
    elif not _FORMS[_NUMBER].fullmatch(word):
        return f"not a decimal number: '{text}'"
    return None


def _first_error(line: bytes, tokens: bool, vocabulary: int | None, complete: bool) -> str | None:
    """The first error of ``line`` in reading order, as the C program meets it, or None.

    C reads a byte at a time: a forbidden byte is refused where it stands; a word is refused at its
    64th character when it is too long, else where it ends (so a word still open when an incomplete
    line is cut is checked for its bytes and length only)."""
    bad = _FORBIDDEN.search(line)
    bad_at = bad.start() if bad else len(line) + 1
    for match in _WORD.finditer(line):
        start, end = match.span()
        if bad_at < start:
            break
        if min(end, bad_at) - start > MAX_WORD:  # the 64th character comes before any bad byte
            return f"a word longer than {MAX_WORD} characters at column {start + 1}"
        if bad_at < end:
            break
        if end == len(line) and not complete:
            break
        problem = _word_error(match.group(), tokens, vocabulary)
        if problem:
            return problem
    if bad_at <= len(line):
        return (f"byte 0x{line[bad_at]:02x} at column {bad_at + 1} is not allowed (a line holds ASCII words "
                f"separated by spaces or tabs)")
    if not complete:
        return f"longer than {MAX_LINE_BYTES} bytes"
    return None


def parse_text(line: bytes, number: int, pairs: bool, complete: bool = True) -> str | tuple[str, str] | None:
    """One line as a text model's input: the text, or ``(first, second)`` for ``pairs``; None for a
    line of white space. An :class:`InputError` naming the line for anything else."""
    if not complete or len(line) > MAX_LINE_BYTES:
        raise InputError(f"line {number}: longer than {MAX_LINE_BYTES} bytes")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"line {number}: not UTF-8 text (byte 0x{line[error.start]:02x} at column "
                         f"{error.start + 1})") from None
    if not text.strip():
        return None
    if not pairs:
        return text
    first, tab, second = text.partition("\t")
    if not tab or not first.strip() or not second.strip():
        raise InputError(f"line {number}: this model reads two texts, separated by a tab")
    return first, second


def parse_line(line: bytes, number: int, tokens: bool, vocabulary: int | None = None,
               complete: bool = True) -> np.ndarray | None:
    """One line's words: token ids ``(T,)`` int64, or numbers float64 saturated to ``±FLOAT32_MAX``;
    None for a blank line. An :class:`InputError` naming the line for anything else.

    Linear in the line's length, in time and memory: one pass checks the bytes, the conversion
    checks each word; only a line with an error is walked again to find the first."""
    if tokens and vocabulary is None:
        raise ValueError("a token model's lines need its vocabulary size")
    if len(line) > MAX_LINE_BYTES:
        line, complete = line[:MAX_LINE_BYTES], False
    words = line.split() if complete and not line.translate(None, _ALPHABET[tokens]) else None
    if words is not None and not words:
        return None
    if words is not None and max(map(len, words)) <= MAX_WORD:
        try:
            if not tokens:
                values = np.fromiter(map(float, words), np.float64, len(words))
                return np.clip(values, -FLOAT32_MAX, FLOAT32_MAX)
            ids = np.fromiter(map(int, words), np.int64, len(words)) if max(map(len, words)) <= 18 else [
                int(word) for word in words]  # 18 digits stay below 2^63
            if max(ids) < vocabulary:
                return np.asarray(ids, dtype=np.int64)
        except ValueError:
            pass  # a malformed word: the walk below names it
    problem = _first_error(line, tokens, vocabulary, complete)
    if problem is None:  # pragma: no cover - the fast path and the walk disagree: a bug, not an input
        raise AssertionError(f"line {number}: no error found in a line the grammar refused")
    raise InputError(f"line {number}: {problem}")
