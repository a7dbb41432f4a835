"""Model size in bits, tensor by tensor, as deployed.

``W``: ``n`` sign bits (the Hadamard structure and block size are implied by the format). ``U``,
``V``: ``p`` bits per entry plus one 32-bit float scale per tensor (32 bits per entry, no scale,
when full precision). Biases and embeddings: 32 bits per entry. For comparison the summary also
gives what ``W`` would cost as the dense matrix it stands for: 1 bit per entry when binary (full
Hadamard), 2 bits per entry when ternary (Block-HadamRNN, the smallest fixed-width code for 3 values).
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import HadamRNN

__all__ = ["TensorSize", "size_rows", "model_size_bits", "size_summary"]

FLOAT_BITS = 32


@dataclass(frozen=True)
class TensorSize:
    """One tensor's deployed size."""

    name: str
    shape: tuple[int, ...]
    precision: str  # e.g. "1-bit sign", "4-bit", "float32"
    bits: int  # total, scales included
    dense_bits: int  # the same tensor stored as a dense matrix at its own precision (differs only for W)

    @property
    def entries(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


def _quantized(name: str, shape: tuple[int, ...], bits: int | None) -> TensorSize:
    entries = shape[0] * shape[1]
    if bits is None:
        return TensorSize(name, shape, "float32", FLOAT_BITS * entries, FLOAT_BITS * entries)
    total = bits * entries + FLOAT_BITS
    return TensorSize(name, shape, f"{bits}-bit + scale", total, total)


def size_rows(model: HadamRNN) -> list[TensorSize]:
    """Per-tensor sizes, in the order W, U, b, V, c[, embedding]."""
    c = model.config
    n, d, classes = c.hidden_size, c.input_size, c.output_size
    block = model.recurrence.block
    ternary = block < n
    rows = [
        TensorSize("W", (n, n), f"{n} sign bits ({'block ' + str(block) if ternary else 'full'} Hadamard)",
                   n, (2 if ternary else 1) * n * n),
        _quantized("U", (n, d), c.input_bits),
        TensorSize("b", (n,), "float32", FLOAT_BITS * n, FLOAT_BITS * n),
        _quantized("V", (classes, n), c.output_bits),
        TensorSize("c", (classes,), "float32", FLOAT_BITS * classes, FLOAT_BITS * classes),
    ]
    if model.embedding is not None:
        vocab = c.vocab_size
        rows.append(TensorSize("embedding", (vocab, d), "float32", FLOAT_BITS * vocab * d, FLOAT_BITS * vocab * d))
    return rows


def model_size_bits(model: HadamRNN) -> dict[str, int]:
    """Bits per tensor (``W``, ``U``, ``b``, ``V``, ``c``, ``embedding`` if any) and ``"total"``."""
    sizes = {row.name: row.bits for row in size_rows(model)}
    sizes["total"] = sum(sizes.values())
    return sizes


def size_summary(model: HadamRNN) -> str:
    """A printable table of the per-tensor sizes, with the dense-``W`` comparison."""
    rows = size_rows(model)
    header = ("tensor", "shape", "precision", "entries", "bits", "KiB")
    lines = [(r.name, "×".join(map(str, r.shape)), r.precision, str(r.entries), str(r.bits),
              f"{r.bits / 8192:.2f}") for r in rows]
    total = sum(r.bits for r in rows)
    total_dense = sum(r.dense_bits for r in rows)
    lines.append(("total", "", "", str(sum(r.entries for r in rows)), str(total), f"{total / 8192:.2f}"))
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths)))

    rule = "-" * len(fmt(header))
    w = rows[0]
    kind = "binary" if w.dense_bits == w.entries else "ternary, 2 bits/entry"
    return "\n".join([fmt(header), rule, *(fmt(line) for line in lines[:-1]), rule, fmt(lines[-1]),
                      f"W stored densely ({kind}) would take {w.dense_bits} bits; "
                      f"the model would total {total_dense} bits ({total_dense / 8192:.2f} KiB)."])
