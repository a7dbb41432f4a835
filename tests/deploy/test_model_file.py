"""``.hrnn`` files that pass the CRC (anyone can recompute it) but lie in their header: every one is
refused with a ModelFileError before anything large is allocated."""

import json
import random
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
import torch

from hadamrnn import HadamRNN, HadamRNNConfig
from hadamrnn.deploy import runtime
from hadamrnn.deploy.export import export_model
from hadamrnn.deploy.fileformat import ModelFileError


def _exported(tmp_path, **kwargs):
    torch.manual_seed(0)
    config = dict(input_size=3, hidden_size=16, output_size=4, block_size=4, **kwargs)
    path = tmp_path / "m.hrnn"
    transform = {"kind": "features", "offset": [0.0] * 3, "divisor": [1.0] * 3, "order": None, "length": None,
                 "keep": "last", "vocabulary_sha256": None}
    export_model(HadamRNN(HadamRNNConfig(**config)), path, transform if not kwargs.get("vocab_size") else None)
    return path


def _parts(path):
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<4sHI", data)
    return version, json.loads(data[10:10 + length]), data[10 + length:-4]


def _write(path, header, payload, version=1, raw_header=None):
    text = raw_header if raw_header is not None else json.dumps(header).encode()
    body = struct.pack("<4sHI", b"HRNN", version, len(text)) + text + payload
    path.write_bytes(body + struct.pack("<I", zlib.crc32(body)))


def _tensor(header, name):
    return next(t for t in header["tensors"] if t["name"] == name)


CASES = {
    "encoding not a string": lambda h: _tensor(h, "U").update(encoding=4),
    "unknown encoding": lambda h: _tensor(h, "U").update(encoding="int0"),
    "huge shape": lambda h: _tensor(h, "U").update(shape=[2**29]),
    "block size 0": lambda h: h["config"].update(block_size=0),
    "negative block size": lambda h: h["config"].update(block_size=-4),
    "block size not a power of two": lambda h: h["config"].update(block_size=3),
    "readout missing": lambda h: h["config"].pop("readout"),
    "readout x": lambda h: h["config"].update(readout="x"),
    "readout 5": lambda h: h["config"].update(readout=5),
    "readout null": lambda h: h["config"].update(readout=None),
    "config not a mapping": lambda h: h.update(config=[1]),
    "tensors missing": lambda h: h.pop("tensors"),
    "tensor renamed": lambda h: _tensor(h, "b").update(name="bias"),
    "counts that lie": lambda h: h.update(bit_count=h["bit_count"] + 8, float_count=h["float_count"] - 2),
    "transform of another width": lambda h: h["input_transform"].update(offset=[0.0], divisor=[1.0]),
    "transform with a zero divisor": lambda h: h["input_transform"].update(divisor=[0.0, 1.0, 1.0]),
    "transform of unknown kind": lambda h: h["input_transform"].update(kind="pixels"),
    "bits out of range": lambda h: h["config"].update(input_bits=99),
    # finite in float64, not in float32, where the transform is applied (predict printed NaN):
    "transform divisor 0 in float32": lambda h: h["input_transform"].update(divisor=[1e-50, 1.0, 1.0]),
    "transform offset infinite in float32": lambda h: h["input_transform"].update(offset=[1e39, 0.0, 0.0]),
    "transform length a billion": lambda h: h.update(input_transform={"kind": "tokens", "length": 10**9}),
    "transform order a million and more": lambda h: h["input_transform"].update(order=list(range(2**20 + 1))),
}


@pytest.mark.parametrize("case", list(CASES))
def test_lying_headers_are_refused(tmp_path, case):
    path = _exported(tmp_path)
    version, header, payload = _parts(path)
    CASES[case](header)
    _write(path, header, payload)
    with pytest.raises(ModelFileError, match="m.hrnn"):
        runtime.load(path)


def test_deeply_nested_json_version_0_and_non_finite_scales(tmp_path):
    path = _exported(tmp_path)
    version, header, payload = _parts(path)
    _write(path, header, payload, raw_header=b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ModelFileError, match="unreadable header"):
        runtime.load(path)
    _write(path, header, payload, version=0)
    with pytest.raises(ModelFileError, match="version 0 does not exist"):
        runtime.load(path)
    floats = np.frombuffer(payload[(header["bit_count"] + 7) // 8:], "<f4").copy()
    for bad in (np.nan, np.inf):
        floats[0] = bad  # U_scale is the first float
        _write(path, header, payload[:(header["bit_count"] + 7) // 8] + floats.tobytes())
        with pytest.raises(ModelFileError, match="non-finite"):
            runtime.load(path)
    floats[0] = -1.0
    _write(path, header, payload[:(header["bit_count"] + 7) // 8] + floats.tobytes())
    with pytest.raises(ModelFileError, match="U_scale must be positive"):
        runtime.load(path)


_VALUES = [None, True, 0, -1, 1, 3, 2**31, 2**62, -2**40, 0.5, float("nan"), float("inf"), "", "x", "int0", "int99",
           "float32", "sign-bits", "last", "all", [], [0], [2**29], [-1, 3], [[[[1]]]], {}, {"a": 1}]


def _mutate(value, rng, depth=0):
    """A copy of the JSON value with one random change somewhere inside."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(sorted(value))
        choice = rng.random()
        copy = dict(value)
        if choice < 0.1:
            del copy[key]
        elif choice < 0.15:
            copy[f"extra{rng.randrange(9)}"] = rng.choice(_VALUES)
        else:
            copy[key] = _mutate(value[key], rng, depth + 1)
        return copy
    if isinstance(value, list) and value and rng.random() < 0.8:
        copy = list(value)
        index = rng.randrange(len(copy))
        copy[index] = _mutate(copy[index], rng, depth + 1)
        if rng.random() < 0.1:
            copy.append(rng.choice(_VALUES))
        return copy
    if rng.random() < 0.05:
        nested = rng.choice(_VALUES)
        for _ in range(rng.randrange(1, 3000)):
            nested = [nested]
        return nested
    return rng.choice(_VALUES)


@pytest.mark.parametrize("kwargs", [{}, {"vocab_size": 20}, {"input_bits": None, "readout": "all"}])
def test_fuzzed_headers_with_valid_crc_raise_only_model_file_errors_in_bounded_memory(tmp_path, kwargs):
    path = _exported(tmp_path, **kwargs)
    version, header, payload = _parts(path)
    rng = random.Random(len(kwargs))
    refused = 0
    tracemalloc.start()
    try:
        for case in range(400):
            mutated = _mutate(header, rng)
            try:
                text = json.dumps(mutated).encode()
            except (ValueError, RecursionError):
                continue
            _write(path, mutated, payload, raw_header=text)
            tracemalloc.reset_peak()
            try:
                runtime.load(path)
            except ModelFileError:
                refused += 1
            assert tracemalloc.get_traced_memory()[1] < 20 * 2**20, (case, str(mutated)[:300])
    finally:
        tracemalloc.stop()
    assert refused > 300
