"""The input transform: from a raw sequence, as a user holds it, to the model's input (NumPy only).

The data loaders, the exported model file and every runtime share this one definition, so that a
model fed raw data outside Python computes what it computed in training:

- features ``(T, d)``: ``x[t] = (raw[order[t]] - offset) / divisor`` per channel, in float32
  (MNIST: pixels 0–255 divided by 255, pMNIST's pixel order; HAR: the training windows' mean and
  standard deviation per channel); with a ``length`` (time series of unequal lengths), a shorter
  sequence is pre-padded with steps of zeros (model inputs: the channels' means in raw values) and
  a longer one keeps its last ``length`` steps, as token rows are cut;
- token ids: cut to ``length`` ids (``keep="last"``: the last ones, IMDB's rule; ``keep="first"``:
  the first ``length - 1`` and the final one, the ``[SEP]`` of GLUE) and pre-padded with id 0, so
  the last step holds the last token. ``vocabulary_sha256`` identifies the id ↔ token table the
  ids refer to (the SHA-256 of that table as a text file, one token per line);
- text: a token transform with a ``tokenizer`` (the JSON of a ``tokenizers`` tokenizer, special
  tokens included, id 0 the padding) turns raw text into those ids first, then cuts and pads them;
  ``pairs``: the model reads two texts (QQP's questions), which a ``predict`` line separates by a tab.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Iterable, Literal

import numpy as np

__all__ = ["InputTransform", "vocabulary_sha256", "MAX_STEPS"]

MAX_STEPS = 1 << 20  # the longest fixed sequence (token length, step order) a transform may prescribe
MAX_TOKENIZER_CHARS = 64 << 20  # a tokenizer's JSON (BERT's WordPiece: about 0.7 MB)


@lru_cache(maxsize=4)
def _tokenizer(text: str):
    """The ``tokenizers`` tokenizer of a JSON text (parsed once per text: a vocabulary takes a while)."""
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_str(text)
    except Exception as error:  # tokenizers raises its own exception type for a bad JSON
        raise ValueError(f"the transform's tokenizer is not a tokenizers JSON ({str(error)[:200]})") from None


def vocabulary_sha256(tokens: Iterable[str]) -> str:
    """SHA-256 of the vocabulary as a text file: one token per line, line ``i`` is id ``i``."""
    return hashlib.sha256("".join(f"{token}\n" for token in tokens).encode()).hexdigest()


@dataclass(frozen=True)
class InputTransform:
    kind: Literal["features", "tokens"]
    offset: tuple[float, ...] | None = None  # features: per channel
    divisor: tuple[float, ...] | None = None  # features: per channel
    order: tuple[int, ...] | None = None  # features: model step t reads raw step order[t]
    length: int | None = None  # tokens, or features without order: the model's sequence length
    keep: Literal["last", "first"] = "last"  # which ids (steps) a longer sequence keeps; features: "last"
    vocabulary_sha256: str | None = None  # tokens
    tokenizer: str | None = None  # tokens from text: a tokenizers JSON (special tokens added, id 0 = padding)
    pairs: bool = False  # text: the model reads two texts

    def __post_init__(self) -> None:
        if self.kind == "features":
            if self.offset is None or self.divisor is None or len(self.offset) != len(self.divisor):
                raise ValueError("a features transform needs offset and divisor of one value per channel")
            # Checked in float32, the precision the transform is applied in: 1e39 is finite in float64 only,
            # and a divisor of 1e-50 is 0 in float32.
            offset, divisor = np.asarray(self.offset, np.float64), np.asarray(self.divisor, np.float64)
            with np.errstate(over="ignore", under="ignore"):
                offset32, divisor32 = offset.astype(np.float32), divisor.astype(np.float32)
            if not (np.isfinite(offset32).all() and np.isfinite(divisor32).all() and (divisor32 > 0).all()):
                raise ValueError("transform offsets must be finite and divisors finite and positive in float32 "
                                 "(|v| ≤ 3.4e38, divisors ≥ 1.4e-45)")
            if self.order is not None and len(self.order) > MAX_STEPS:
                raise ValueError(f"transform order has {len(self.order)} steps; at most {MAX_STEPS}")
            if self.order is not None and sorted(self.order) != list(range(len(self.order))):
                raise ValueError("transform order must be a permutation of 0..T-1")
            if self.length is not None and (isinstance(self.length, bool) or not isinstance(self.length, int)
                                            or not 1 <= self.length <= MAX_STEPS or self.order is not None
                                            or self.keep != "last"):
                raise ValueError(f"a features transform's length is a whole number in [1, {MAX_STEPS}], keeps the "
                                 f"last steps and goes without an order")
        elif self.kind == "tokens":
            if (isinstance(self.length, bool) or not isinstance(self.length, int) or not 1 <= self.length <= MAX_STEPS
                    or self.keep not in ("last", "first")):
                raise ValueError(f"a tokens transform needs a length in [1, {MAX_STEPS}] and keep 'last' or 'first', "
                                 f"got {str(self.length)[:20]} and {str(self.keep)[:20]}")
            if self.tokenizer is not None:
                if not isinstance(self.tokenizer, str) or len(self.tokenizer) > MAX_TOKENIZER_CHARS:
                    raise ValueError(f"a transform's tokenizer is a JSON text of at most {MAX_TOKENIZER_CHARS} "
                                     f"characters")
                _tokenizer(self.tokenizer)
        else:
            raise ValueError(f"transform kind must be 'features' or 'tokens', got {self.kind!r}")
        if self.kind == "features" and self.tokenizer is not None:
            raise ValueError("a features transform has no tokenizer")
        if not isinstance(self.pairs, bool) or (self.pairs and self.tokenizer is None):
            raise ValueError("pairs is true or false, and true only for a transform with a tokenizer")

    @property
    def channels(self) -> int:
        return len(self.offset) if self.offset is not None else 0

    def features(self, raw: np.ndarray) -> np.ndarray:
        """Raw ``(B, T, d)`` numbers → model inputs ``(B, T, d)`` float32."""
        raw = np.asarray(raw)
        if raw.ndim != 3 or raw.shape[-1] != self.channels:
            raise ValueError(f"expected raw inputs (B, T, {self.channels}), got shape {raw.shape}")
        if self.order is not None:
            if raw.shape[1] != len(self.order):
                raise ValueError(f"this model reads sequences of exactly {len(self.order)} steps (it reorders them), "
                                 f"got {raw.shape[1]}")
            raw = raw[:, list(self.order)]
        offset, divisor = np.asarray(self.offset, np.float32), np.asarray(self.divisor, np.float32)
        # Inputs saturate at float32's range, before and after the arithmetic, as they do in every
        # runtime (docs/format.md, "Input lines"): nothing becomes infinite or NaN.
        limit = np.finfo(np.float32).max
        with np.errstate(over="ignore"):
            x = np.clip((np.clip(raw, -limit, limit).astype(np.float32) - offset) / divisor, -limit, limit)
        if self.length is not None:  # the last `length` steps, pre-padded with zeros
            x = x[:, -self.length:]
            x = np.concatenate([np.zeros((x.shape[0], self.length - x.shape[1], x.shape[2]), np.float32), x], axis=1)
        return x

    def encode(self, texts: list) -> list[list[int]]:
        """Raw texts (``(first, second)`` pairs for ``pairs``) → their token ids, special tokens
        included, not yet cut or padded."""
        if self.tokenizer is None:
            raise ValueError("this model takes token ids, not text (its transform has no tokenizer)")
        return [encoding.ids for encoding in _tokenizer(self.tokenizer).encode_batch(texts, add_special_tokens=True)]

    def text(self, texts: list) -> np.ndarray:
        """Raw texts → ``(B, length)`` int64 model inputs: :meth:`encode`, then :meth:`tokens`."""
        return self.tokens(self.encode(texts))

    def tokens(self, sequences: Iterable[Iterable[int]]) -> np.ndarray:
        """Token id sequences of any length → ``(B, length)`` int64, cut and pre-padded."""
        rows = []
        for sequence in sequences:
            ids = [int(token) for token in sequence]
            if len(ids) > self.length:
                ids = ids[-self.length:] if self.keep == "last" else ids[:self.length - 1] + ids[-1:]
            rows.append([0] * (self.length - len(ids)) + ids)
        return np.array(rows, dtype=np.int64).reshape(len(rows), self.length)

    @classmethod
    def standardizing(cls, x: np.ndarray) -> "InputTransform":
        """The features transform that gives each channel of ``x`` ``(N, T, d)`` (a training split) mean
        0 and standard deviation 1 (computed in float64; a constant channel is only shifted)."""
        mean = x.mean(axis=(0, 1), dtype=np.float64)
        std = x.std(axis=(0, 1), dtype=np.float64)
        std = np.where(std > 0, std, 1.0)
        return cls("features", offset=tuple(map(float, mean)), divisor=tuple(map(float, std)))

    @staticmethod
    def unpadded(row: np.ndarray) -> np.ndarray:
        """A pre-padded token row without its leading padding (what a user would hold)."""
        start = int(np.argmax(row != 0)) if (row != 0).any() else len(row)
        return row[start:]

    def to_dict(self) -> dict:
        """As JSON-ready data; ``tokenizer`` and ``pairs`` only for text (so the dicts of other
        transforms stay as they were before text existed, and runs from then still resume)."""
        values = {key: (list(value) if isinstance(value, tuple) else value) for key, value in asdict(self).items()}
        if self.tokenizer is None:
            del values["tokenizer"], values["pairs"]
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "InputTransform":
        """Validated; raises ``ValueError`` naming what is wrong."""
        if not isinstance(values, dict):
            raise ValueError(f"an input transform is a mapping, got {type(values).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown input transform key(s) {unknown}")
        converted = {}
        for key, value in values.items():
            if key in ("offset", "divisor", "order") and value is not None:
                if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                          for v in value):
                    raise ValueError(f"input transform {key} must be a list of numbers")
                value = tuple(int(v) for v in value) if key == "order" else tuple(float(v) for v in value)
            converted[key] = value
        return cls(**converted)
