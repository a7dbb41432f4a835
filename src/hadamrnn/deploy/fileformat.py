"""The ``.hrnn`` model file: layout, bit packing, reading and writing (NumPy only; see docs/format.md).

    magic "HRNN" | version u16 | header length u32 | JSON header | payload | CRC-32 u32

All integers little-endian. The payload is one bit stream (``W``'s signs, then the integer levels
of every quantized matrix, ``p`` bits each in two's complement, row-major, least significant bit
first) padded with zero bits to a whole byte, followed by float32 tensors. The JSON header names
each tensor with its shape and encoding, in payload order. The CRC-32 covers every byte before it.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes
from ..untrusted import parse_json

__all__ = ["MAGIC", "VERSION", "ModelFileError", "write_model_file", "read_model_file", "pack_bits", "unpack_bits"]

MAGIC = b"HRNN"
VERSION = 1
_PREAMBLE = struct.Struct("<4sHI")


class ModelFileError(ValueError):
    """A model file is truncated, corrupted, of a newer version, or not a model file."""


def pack_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """Integers in ``[-2^(bits-1), 2^(bits-1))`` (or 0/1 for ``bits=1``) as a flat array of ``bits``-bit fields."""
    unsigned = np.asarray(values, dtype=np.int64).reshape(-1) & ((1 << bits) - 1)
    return ((unsigned[:, None] >> np.arange(bits)) & 1).astype(np.uint8).reshape(-1)


def unpack_bits(stream: np.ndarray, count: int, bits: int, signed: bool) -> np.ndarray:
    fields = stream[: count * bits].reshape(count, bits).astype(np.int64)
    values = (fields << np.arange(bits)).sum(axis=1)
    if signed:
        values = np.where(values >= 1 << (bits - 1), values - (1 << bits), values)
    return values


def write_model_file(path: str | Path, header: dict, bit_fields: list[tuple[np.ndarray, int]],
                     floats: list[np.ndarray]) -> int:
    """Write a model file; returns its size in bytes. ``bit_fields``: (integer values, bits) in order."""
    bits = np.concatenate([pack_bits(values, width) for values, width in bit_fields]) if bit_fields else np.zeros(0, np.uint8)
    payload = np.packbits(bits, bitorder="little").tobytes()
    payload += b"".join(np.asarray(f, dtype="<f4").tobytes() for f in floats)
    text = json.dumps(header, sort_keys=True).encode()
    body = _PREAMBLE.pack(MAGIC, VERSION, len(text)) + text + payload
    data = body + struct.pack("<I", zlib.crc32(body))
    atomic_write_bytes(path, data)
    return len(data)


def read_model_file(path: str | Path) -> tuple[dict, np.ndarray, bytes]:
    """``(header, bit stream as a 0/1 uint8 array, float32 bytes)``, after every check."""
    data = Path(path).read_bytes()
    name = Path(path).name
    if len(data) < _PREAMBLE.size + 4 or data[:4] != MAGIC:
        raise ModelFileError(f"{name}: not a hadamrnn model file (no HRNN magic)")
    magic, version, header_length = _PREAMBLE.unpack_from(data)
    if version > VERSION:
        raise ModelFileError(f"{name}: format version {version} is newer than this hadamrnn reads ({VERSION}); upgrade")
    if version < 1:
        raise ModelFileError(f"{name}: format version {version} does not exist (versions start at 1)")
    if _PREAMBLE.size + header_length + 4 > len(data):
        raise ModelFileError(f"{name}: truncated ({len(data)} bytes; the header alone needs more)")
    (stored_crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if zlib.crc32(data[:-4]) != stored_crc:
        raise ModelFileError(f"{name}: checksum mismatch: the file is truncated or corrupted")
    try:
        header = parse_json(data[_PREAMBLE.size:_PREAMBLE.size + header_length], "header")
        payload = data[_PREAMBLE.size + header_length:-4]
        bit_count, float_count = header["bit_count"], header["float_count"]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (bit_count, float_count)):
            raise ValueError("bit_count and float_count must be non-negative integers")
        stream_bytes = (bit_count + 7) // 8
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        raise ModelFileError(f"{name}: unreadable header ({type(error).__name__}: {str(error)[:200]})") from None
    if len(payload) != stream_bytes + 4 * float_count:
        raise ModelFileError(f"{name}: payload is {len(payload)} bytes, header announces "
                             f"{stream_bytes + 4 * float_count}")
    stream = np.unpackbits(np.frombuffer(payload[:stream_bytes], np.uint8), bitorder="little")[:bit_count]
    return header, stream, payload[stream_bytes:]
