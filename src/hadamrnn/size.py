"""Model size in bits, tensor by tensor, as deployed.

``W``: ``n`` sign bits (the Hadamard structure and block size are implied by the format). ``U``,
``V``: ``p`` bits per entry plus one 32-bit float scale per tensor (32 bits per entry, no scale,
when full precision). Biases and embeddings: 32 bits per entry. For comparison the summary also
gives what ``W`` would cost as the dense matrix it stands for: 1 bit per entry when binary (full
Hadamard), 2 bits per entry when ternary (Block-HadamRNN, the smallest fixed-width code for 3 values).
Baselines count 32 bits per full-precision entry and ``p`` bits plus a scale per quantized tensor;
each model family lists its tensors in its ``size_rows`` method.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

__all__ = ["TensorSize", "FLOAT_BITS", "quantized_size", "size_rows", "model_size_bits", "size_summary"]

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


def quantized_size(name: str, shape: tuple[int, ...], bits: int | None) -> TensorSize:
    """A matrix of ``p``-bit levels plus one float32 scale, or of float32 entries (``bits=None``)."""
    entries = 1
    for dim in shape:
        entries *= dim
    if bits is None:
        return TensorSize(name, shape, "float32", FLOAT_BITS * entries, FLOAT_BITS * entries)
    total = bits * entries + FLOAT_BITS
    return TensorSize(name, shape, f"{bits}-bit + scale", total, total)


def size_rows(model: nn.Module) -> list[TensorSize]:
    """Per-tensor sizes of any model of :mod:`hadamrnn.models` (each family counts its own tensors)."""
    return model.size_rows()


def model_size_bits(model: nn.Module) -> dict[str, int]:
    """Bits per tensor (``W``, ``U``, ``b``, ``V``, ``c``, ``embedding`` if any) and ``"total"``."""
    sizes = {row.name: row.bits for row in size_rows(model)}
    sizes["total"] = sum(sizes.values())
    return sizes


def size_summary(model: nn.Module) -> str:
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
    table = [fmt(header), rule, *(fmt(line) for line in lines[:-1]), rule, fmt(lines[-1])]
    structured = [r for r in rows if r.dense_bits != r.bits]
    for r in structured:  # HadamRNN's W: what the same matrix would cost stored densely
        kind = "binary" if r.dense_bits == r.entries else "ternary, 2 bits/entry"
        table.append(f"{r.name} stored densely ({kind}) would take {r.dense_bits} bits; "
                     f"the model would total {total_dense} bits ({total_dense / 8192:.2f} KiB).")
    return "\n".join(table)
