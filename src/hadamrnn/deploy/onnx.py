"""ONNX export (``hadamrnn export RUN --target onnx -o model.onnx``) and its runtime (``predict --runtime onnx``).

Every model family becomes one standard ONNX graph (opset 17) that ``onnxruntime`` or any other
ONNX runtime runs: input ``inputs``, raw as a user holds them — ``(batch, steps, d)`` float32
features, or ``(batch, steps)`` int64 token ids pre-padded with 0 — and output ``logits``,
``(batch, C)`` (read-out at the last step) or ``(batch, steps, C)`` (at every step), float64. Batch
and sequence length are dynamic.

- The data set's input transform is part of the graph, as in every other runtime
  (:mod:`hadamrnn.preprocess`): features are reordered (pMNIST), saturated at float32's range,
  shifted and scaled per channel and saturated again; token rows are cut to the model's length by
  its rule (``keep="last"``, or ``"first"``: the first ``length - 1`` ids of a row's tokens and its
  last) and pre-padded, row by row, so rows of one batch may hold different numbers of tokens.
- The recurrence is a ``Scan`` over time whose body is the family's step, with the weights the
  trained model uses (quantized ``U``/``V``/``W`` as their values; HadamRNN's ``W`` as its dense
  ±1/√m matrix: ONNX has no Walsh–Hadamard operator). The input projection of every step is one
  ``MatMul`` before the scan. The transform runs in float32, as everywhere; the model after it in
  float64 and ``logits`` are float64, as in the NumPy runtime: inputs saturated at float32's range
  (a line may hold 1e39) would overflow a float32 product, and every runtime must give every input
  the same verdict.
- A HadamRNN trained with fixed-point states (``model.state_bits``) computes an integer step that
  this float graph does not: export it to C (``--target c``) and run its integer model.

The graph's ``metadata_props`` hold ``hadamrnn``: a JSON description (family, input size or
vocabulary, classes, read-out, transform) that ``predict`` reads to check lines before running.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from ..preprocess import InputTransform
from ..untrusted import parse_json

__all__ = ["export_onnx", "onnx_logits", "read_description", "INSTALL", "OPSET"]

OPSET = 17
INSTALL = "pip install 'hadamrnn[onnx]'"
METADATA_KEY = "hadamrnn"
FORMAT_VERSION = 1
_FLOAT_MAX = float(np.finfo(np.float32).max)


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ValueError(f"--target onnx needs the onnx package: {INSTALL}") from None
    return onnx


class _Graph:
    """Nodes and constants of one graph (or a ``Scan`` body, which may use the outer graph's
    constants by name), each output named afresh."""

    def __init__(self, helper, numpy_helper, prefix: str) -> None:
        self.helper, self.numpy_helper, self.prefix = helper, numpy_helper, prefix
        self.nodes, self.initializers, self.count = [], [], 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}{hint}_{self.count}"

    def const(self, value, hint: str = "const", dtype=np.float64) -> str:
        name = self.name(hint)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, outputs: int = 1, **attributes):
        names = [self.name(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self.helper.make_node(op_type, inputs, names, **attributes))
        return names[0] if outputs == 1 else names

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray | None = None, hint: str = "linear") -> str:
        """``x @ weightᵀ (+ bias)`` for a PyTorch-style ``(out, in)`` weight."""
        y = self.op("MatMul", [x, self.const(np.ascontiguousarray(weight.T), hint)])
        return self.op("Add", [y, self.const(bias, hint + "_bias")]) if bias is not None else y


def _array(tensor) -> np.ndarray:
    return tensor.detach().to("cpu").double().numpy()


def _head(model) -> tuple[np.ndarray, np.ndarray]:
    """``V`` and ``c`` as the forward pass uses them."""
    output = model.output
    weight = output.quantized_weight() if hasattr(output, "quantized_weight") else output.weight
    return _array(weight), _array(output.bias)


def _family(model) -> tuple[str, dict]:
    """The family's step kind and the float64 arrays of its forward pass."""
    from torch import nn

    from ..models.fastgrnn import FastGRNN
    from ..models.gated import Gated
    from ..models.hadamrnn import HadamRNN
    from ..models.ornn import ORNN

    embedding = getattr(model, "embedding", None)
    common = {"embedding": _array(embedding.weight) if embedding is not None else None}
    if isinstance(model, HadamRNN):
        if model.fixed_point is not None:
            raise ValueError("this HadamRNN computes fixed-point states (model.state_bits), an integer step a float "
                             "ONNX graph does not reproduce: export it with --target c and run its integer model "
                             "(hadamrnn predict DIR FILE --runtime numpy-int)")
        weights = {k: v.double().numpy() for k, v in model.effective_weights().items() if k != "embedding"}
        return "linear", {**common, **weights, "relu": True}
    V, c = _head(model)
    common.update(V=V, c=c, relu=isinstance(model.activation, nn.ReLU))
    if isinstance(model, ORNN):
        return "linear", {**common, "W": _array(model.recurrent_weight()), "U": _array(model.input.quantized_weight()),
                          "b": _array(model.input.bias)}
    if isinstance(model, Gated):
        rnn = model.rnn
        kind = "lstm" if isinstance(rnn, nn.LSTM) else "gru"
        return kind, {**common, "W_ih": _array(rnn.weight_ih_l0), "W_hh": _array(rnn.weight_hh_l0),
                      "b_ih": _array(rnn.bias_ih_l0), "b_hh": _array(rnn.bias_hh_l0)}
    if isinstance(model, FastGRNN):
        import torch

        factors = lambda matrix: [_array(f.quantized_weight()) for f in matrix.factors]  # noqa: E731
        return "fastgrnn", {**common, "W": factors(model.W), "U": factors(model.U),
                            "b_z": _array(model.bias_gate), "b_h": _array(model.bias_update),
                            "zeta": _array(torch.sigmoid(model.zeta_raw)), "nu": _array(torch.sigmoid(model.nu_raw)),
                            "hard": model.activations == "hard"}
    raise ValueError(f"no ONNX export for {type(model).__name__}")


def _features(g: _Graph, x: str, transform: InputTransform | None) -> str:
    """Raw ``(B, T, d)`` float32 features → model inputs, as ``InputTransform.features`` computes them."""
    if transform is None:
        return x
    if transform.order is not None:
        x = g.op("Gather", [x, g.const(list(transform.order), "order", np.int64)], axis=1)
    low, high = g.const(-_FLOAT_MAX, "min", np.float32), g.const(_FLOAT_MAX, "max", np.float32)
    x = g.op("Clip", [x, low, high])
    x = g.op("Sub", [x, g.const(transform.offset, "offset", np.float32)])
    x = g.op("Div", [x, g.const(transform.divisor, "divisor", np.float32)])
    x = g.op("Clip", [x, low, high])
    if transform.length is None:
        return x
    length = transform.length  # the last `length` steps, pre-padded with steps of zeros
    x = g.op("Slice", [x, g.const([-length], "from", np.int64), g.const([1 << 62], "to", np.int64),
                       g.const([1], "axis", np.int64)])
    steps = g.op("Slice", [g.op("Shape", [x]), g.const([1], "from", np.int64), g.const([2], "to", np.int64)])
    missing = g.op("Max", [g.op("Sub", [g.const([length], "length", np.int64), steps]), g.const([0], "zero", np.int64)])
    zero = g.const([0], "zero", np.int64)
    return g.op("Pad", [x, g.op("Concat", [zero, missing, zero, zero, zero, zero], axis=0)])


def _tokens(g: _Graph, ids: str, transform: InputTransform | None) -> str:
    """Pre-padded ``(B, T)`` ids → ``(B, length)``, each row cut by the transform's rule and pre-padded:
    output column ``j`` reads row position ``T - length + j`` (0 where that is before the row), or,
    for a row of more than ``length`` tokens under ``keep="first"``, its first ``length - 1`` tokens
    and its last."""
    if transform is None:
        return ids
    length = transform.length
    zero, one, size = (g.const(v, hint, np.int64) for v, hint in ((0, "zero"), (1, "one"), (length, "length")))
    steps = g.op("Gather", [g.op("Shape", [ids]), one])  # T, a scalar
    j = g.const(np.arange(length), "columns", np.int64)
    index = g.op("Add", [g.op("Sub", [steps, size]), j])  # (length,)
    nonzero = g.op("Cast", [g.op("Not", [g.op("Equal", [ids, zero])])], to=6)  # int32
    start = g.op("ArgMax", [nonzero], axis=1, keepdims=1)  # (B, 1): the first token (0 for an empty row)
    index = g.op("Add", [index, g.op("Mul", [start, zero])])  # (B, length)
    if transform.keep == "first":
        count = g.op("Sub", [steps, start])  # tokens in each row
        head = g.op("Where", [g.op("Less", [j, g.op("Sub", [size, one])]), g.op("Add", [start, j]),
                              g.op("Sub", [steps, one])])
        index = g.op("Where", [g.op("Greater", [count, size]), head, index])
    inside = g.op("GreaterOrEqual", [index, zero])
    gathered = g.op("GatherElements", [ids, g.op("Max", [index, zero])], axis=1)
    return g.op("Where", [inside, gathered, zero])


def _body(helper, numpy_helper, kind: str, w: dict, n: int, all_steps: bool, TensorProto):
    """The ``Scan`` body of one step: ``(states…, projected input z_t) → (new states…[, h_t])``."""
    b = _Graph(helper, numpy_helper, "step_")
    h, z = "h", "z"
    states_in = [helper.make_tensor_value_info("h", TensorProto.DOUBLE, None)]
    if kind == "linear":
        new = [b.op("Add", [b.linear(h, w["W"], hint="W"), z])]
    elif kind == "lstm":
        states_in.append(helper.make_tensor_value_info("cell", TensorProto.DOUBLE, None))
        gates = b.op("Add", [z, b.linear(h, w["W_hh"], hint="W_hh")])
        i, f, g_, o = b.op("Split", [gates, b.const([n] * 4, "split", np.int64)], outputs=4, axis=1)
        cell = b.op("Add", [b.op("Mul", [b.op("Sigmoid", [f]), "cell"]),
                            b.op("Mul", [b.op("Sigmoid", [i]), b.op("Tanh", [g_])])])
        new = [b.op("Mul", [b.op("Sigmoid", [o]), b.op("Tanh", [cell])]), cell]
    elif kind == "gru":
        zr, zz, zn = b.op("Split", [z, b.const([n] * 3, "split", np.int64)], outputs=3, axis=1)
        hr, hz, hn = b.op("Split", [b.linear(h, w["W_hh"], w["b_hh"], "W_hh"), b.const([n] * 3, "split", np.int64)],
                          outputs=3, axis=1)
        r = b.op("Sigmoid", [b.op("Add", [zr, hr])])
        update = b.op("Sigmoid", [b.op("Add", [zz, hz])])
        candidate = b.op("Tanh", [b.op("Add", [zn, b.op("Mul", [r, hn])])])
        keep = b.op("Mul", [update, h])
        new = [b.op("Add", [b.op("Mul", [b.op("Sub", [b.const(1.0, "one"), update]), candidate]), keep])]
    else:  # fastgrnn
        pre = h
        for k, factor in enumerate(w["U"]):
            pre = b.linear(pre, factor, hint=f"U{k + 1}")
        pre = b.op("Add", [z, pre])
        gate_in, candidate_in = (b.op("Add", [pre, b.const(w[key], key)]) for key in ("b_z", "b_h"))
        if w["hard"]:  # (clip(x, -1, 1) + 1) / 2 and clip(x, -1, 1), as the model computes them
            clip = lambda v: b.op("Clip", [v, b.const(-1.0, "minus_one"), b.const(1.0, "one")])  # noqa: E731
            gate = b.op("Mul", [b.op("Add", [clip(gate_in), b.const(1.0, "one")]), b.const(0.5, "half")])
            candidate = clip(candidate_in)
        else:
            gate, candidate = b.op("Sigmoid", [gate_in]), b.op("Tanh", [candidate_in])
        mix = b.op("Add", [b.op("Mul", [b.const(w["zeta"], "zeta"), b.op("Sub", [b.const(1.0, "one"), gate])]),
                           b.const(w["nu"], "nu")])
        new = [b.op("Add", [b.op("Mul", [mix, candidate]), b.op("Mul", [gate, h])])]
    outputs = [b.op("Identity", [s], hint="state") for s in new]
    if all_steps:
        outputs.append(b.op("Identity", [new[0]], hint="h_t"))
    graph = helper.make_graph(b.nodes, "step", states_in + [helper.make_tensor_value_info(z, TensorProto.DOUBLE, None)],
                              [helper.make_tensor_value_info(name, TensorProto.DOUBLE, None) for name in outputs],
                              initializer=b.initializers)
    return graph, len(new)


def export_onnx(model, info, path: str | Path) -> Path:
    """Write the trained ``model`` (any family; ``info``: its :class:`~hadamrnn.data.TaskInfo`, whose
    transform the graph applies) as an ONNX file at ``path``; returns the path."""
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    from ..atomic import atomic_write_bytes

    model = model.eval()
    kind, w = _family(model)
    transform = InputTransform.from_dict(info.transform) if info.transform is not None else None
    tokens = info.vocab_size is not None
    all_steps = info.readout == "all"
    g = _Graph(helper, numpy_helper, "")
    inputs = helper.make_tensor_value_info("inputs", TensorProto.INT64 if tokens else TensorProto.FLOAT,
                                           ["batch", "steps"] if tokens else ["batch", "steps", info.input_size])
    if tokens:
        x = g.op("Gather", [g.const(w["embedding"], "embedding"), _tokens(g, "inputs", transform)])
    else:
        x = g.op("Cast", [_features(g, "inputs", transform)], to=TensorProto.DOUBLE)
    x = g.op("Transpose", [x], perm=[1, 0, 2])  # (T, B, d): Scan runs over the first axis
    if kind == "linear":
        n, z = w["W"].shape[0], g.linear(x, w["U"], w["b"], "U")
    elif kind in ("lstm", "gru"):
        n = w["W_hh"].shape[1]
        z = g.linear(x, w["W_ih"], w["b_ih"] + w["b_hh"] if kind == "lstm" else w["b_ih"], "W_ih")
    else:
        n, z = w["U"][-1].shape[0], x
        for k, factor in enumerate(w["W"]):
            z = g.linear(z, factor, hint=f"W{k + 1}")
    batch = g.op("Slice", [g.op("Shape", [x]), g.const([1], "from", np.int64), g.const([2], "to", np.int64)])
    zeros = g.op("ConstantOfShape", [g.op("Concat", [batch, g.const([n], "n", np.int64)], axis=0)],
                 value=numpy_helper.from_array(np.zeros(1, np.float64)))
    body, state_count = _body(helper, numpy_helper, kind, w, n, all_steps, TensorProto)
    scanned = g.op("Scan", [zeros] * state_count + [z], outputs=state_count + all_steps, body=body,
                   num_scan_inputs=1)
    scanned = scanned if isinstance(scanned, list) else [scanned]
    h = g.op("Transpose", [scanned[-1]], perm=[1, 0, 2]) if all_steps else scanned[0]
    if w["relu"]:
        h = g.op("Relu", [h])
    g.linear(h, w["V"], w["c"], "V")
    g.nodes[-1].output[0] = "logits"
    output_shape = ["batch", "steps", info.output_size] if all_steps else ["batch", info.output_size]
    graph = helper.make_graph(g.nodes, "hadamrnn", [inputs],
                              [helper.make_tensor_value_info("logits", TensorProto.DOUBLE, output_shape)],
                              initializer=g.initializers)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="hadamrnn")
    onnx_model.ir_version = 8  # readable by onnxruntime 1.14 and later
    description = {"format_version": FORMAT_VERSION, "family": type(model).__name__, "input_size": info.input_size,
                   "vocab_size": info.vocab_size, "output_size": info.output_size, "readout": info.readout,
                   "transform": info.transform, "classes": list(info.classes) if info.classes else None}
    helper.set_model_props(onnx_model, {METADATA_KEY: json.dumps(description)})
    onnx.checker.check_model(onnx_model, full_check=True)
    path = Path(path)
    atomic_write_bytes(path, onnx_model.SerializeToString())
    return path


def _session(path: Path):
    try:
        import onnxruntime
    except ImportError:
        raise ValueError(f"--runtime onnx needs onnxruntime: {INSTALL}") from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for unreadable files
        raise ValueError(f"{path}: not an ONNX model onnxruntime can load ({str(error)[:300]})") from None


def read_description(session, path: Path) -> dict:
    """The ``hadamrnn`` metadata of a loaded ONNX session, validated."""
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if text is None:
        raise ValueError(f"{path}: an ONNX model without hadamrnn's metadata; predict runs the models "
                         f"'hadamrnn export RUN --target onnx' writes")
    description = parse_json(text, f"{path} metadata", max_bytes=16 << 20)
    if not isinstance(description, dict) or description.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: hadamrnn metadata of an unknown format version")
    return description


def onnx_logits(path: str | Path) -> tuple[Callable[[np.ndarray], np.ndarray], dict]:
    """``(logits, description)``: raw inputs ``(B, T, d)`` or ``(B, T)`` → the graph's logits."""
    path = Path(path)
    session = _session(path)
    description = read_description(session, path)
    tokens = description.get("vocab_size") is not None

    def logits(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.int64 if tokens else np.float32)
        return session.run(["logits"], {"inputs": x})[0]

    return logits, description
