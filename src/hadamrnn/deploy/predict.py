"""``hadamrnn predict``: an exported model run on input lines, in the runtime of your choice.

Every runtime reads lines by one grammar (:mod:`hadamrnn.deploy.inputs`, the same as the generated C
``predict``) and applies the model's input transform, so they take the same raw inputs and refuse
the same lines with the same words:

- ``numpy``: the float model of a ``.hrnn`` file (NumPy only);
- ``torch``: the same file as a PyTorch module, in float64 (for a run directory of another family:
  the trained model itself, in float64, :func:`trained_predictor`);
- ``numpy-int``: the integer model of a C export directory, bit for bit what the C program computes;
- ``onnx``: an ``.onnx`` file (``export --target onnx``, any family) in onnxruntime (the transform in
  float32, the model in float64); its graph applies the transform itself, so it is given the raw
  values once they are checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np

from ..classes import check_class_names
from ..preprocess import InputTransform
from .inputs import InputError, parse_line, parse_text, read_lines

__all__ = ["Predictor", "open_predictor", "trained_predictor", "RUNTIMES"]

RUNTIMES = ("numpy", "torch", "numpy-int", "onnx")
BATCH = 256  # lines of one shape computed together


@dataclass
class Predictor:
    """A loaded model and what its lines need: token ids (``vocabulary``) or ``features`` per step."""

    logits: Callable[[np.ndarray], np.ndarray]  # model inputs (1, T, d) or (1, T) -> logits
    transform: InputTransform | None
    features: int
    vocabulary: int | None  # a token model's vocabulary size; None for a feature model
    all_steps: bool  # read-out at every step: the last step's logits are printed
    integer: bool  # integer logits, printed exactly
    raw: bool = False  # the model applies the transform itself (ONNX): it is given the checked raw values
    classes: tuple[str, ...] | None = None  # printed instead of the class index
    token_ids: bool = False  # a text model reads token ids, as its C does, rather than text

    @property
    def text(self) -> bool:
        """Lines are raw text: the model carries a tokenizer and is not asked for ids."""
        return self.transform is not None and self.transform.tokenizer is not None and not self.token_ids

    def inputs(self, values: np.ndarray, number: int) -> np.ndarray:
        """One line's raw values as the model's ``(1, T, d)`` or ``(1, T)`` input, through its transform
        (``raw``: checked by it, then given as they are)."""
        if self.vocabulary is not None:
            return self.transform.tokens([values]) if self.transform is not None and not self.raw else values[None]
        if values.size % self.features:
            raise InputError(f"line {number}: the number of values is not a multiple of {self.features}")
        raw = values.reshape(1, -1, self.features)
        try:
            transformed = self.transform.features(raw) if self.transform is not None else raw
        except ValueError as error:
            raise InputError(f"line {number}: {error}") from None
        return raw if self.raw else transformed

    def answers(self, batch: np.ndarray) -> list[str]:
        """``"class logit_1 … logit_C"`` for each sequence of a batch of model inputs (the last step's
        logits, for read-out "all"); the class is its name where the model has names, else its index.
        The integer model's answers do not depend on the batch; the float
        models' agree with one-at-a-time answers to float64 rounding."""
        logits = self.logits(batch)
        last = logits[:, -1] if self.all_steps else logits
        labels = (last[:, 0] > 0).astype(int) if last.shape[1] == 1 else last.argmax(1)
        show = (lambda v: str(int(v))) if self.integer else (lambda v: f"{v:.6g}")
        name = (lambda k: self.classes[k]) if self.classes is not None else str
        return [" ".join([name(label), *map(show, row)]) for label, row in zip(labels.tolist(), last)]

    def run(self, stream: BinaryIO, batch: int = BATCH) -> Iterator[str]:
        """An answer per non-blank line of a binary stream, in order; :class:`InputError` at the first
        bad line, after the answers of the lines before it. Runs of up to ``batch`` consecutive lines of
        one shape are computed together (the integer model's step is then one NumPy call for them all)."""
        pending: list[np.ndarray] = []
        for number, line, complete in read_lines(stream):
            try:
                if self.text:
                    text = parse_text(line, number, self.transform.pairs, complete)
                    values = None if text is None else np.asarray(self.transform.encode([text])[0], np.int64)
                else:
                    values = parse_line(line, number, self.vocabulary is not None, self.vocabulary, complete)
                x = None if values is None else self.inputs(values, number)
            except InputError:
                if pending:  # the lines before the bad one are answered first
                    yield from self.answers(np.concatenate(pending))
                raise
            if x is None:
                continue
            if pending and (x.shape != pending[0].shape or len(pending) == batch):
                yield from self.answers(np.concatenate(pending))
                pending.clear()
            pending.append(x)
        if pending:
            yield from self.answers(np.concatenate(pending))


def _torch_logits(model, tokens: bool) -> Callable[[np.ndarray], np.ndarray]:
    """A PyTorch model's logits in float64, on a copy (PyTorch imported only here)."""
    import copy

    import torch

    model = copy.deepcopy(model).to("cpu").double().eval()

    def logits(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x if tokens else np.asarray(x, dtype=np.float64))).numpy()

    return logits


def open_predictor(path: str | Path, runtime: str = "numpy", token_ids: bool = False) -> Predictor:
    """The model at ``path`` in ``runtime``: a ``.hrnn`` file or a C export directory (whose
    ``model.hrnn`` the float runtimes read and whose integer model ``numpy-int`` reads). A text
    model reads raw text, or token ids with ``token_ids``."""
    return _reading_token_ids(_open(Path(path), runtime), token_ids, str(path))


def trained_predictor(model, info, token_ids: bool = False) -> Predictor:
    """A trained PyTorch model of any family, in float64, with its data set's ``TaskInfo``: what
    ``--runtime torch`` runs for a run directory whose family has no ``.hrnn`` file."""
    transform = InputTransform.from_dict(info.transform) if info.transform is not None else None
    predictor = Predictor(_torch_logits(model, info.vocab_size is not None), transform, info.input_size, info.vocab_size, info.loss == "ce_all", integer=False,
                          classes=info.classes)
    return _reading_token_ids(predictor, token_ids, info.name)


def _reading_token_ids(predictor: Predictor, token_ids: bool, name: str) -> Predictor:
    if token_ids and predictor.vocabulary is None:
        raise ValueError(f"{name}: --token-ids is for text models; this model reads numbers")
    predictor.token_ids = token_ids
    return predictor


def _open(path: Path, runtime: str) -> Predictor:
    path = Path(path)
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {list(RUNTIMES)}")
    if (runtime == "onnx") != (path.suffix == ".onnx"):
        raise ValueError(f"{path}: --runtime onnx runs .onnx files (hadamrnn export RUN --target onnx -o FILE.onnx), "
                         f"and only it does")
    if runtime == "onnx":
        from .onnx import onnx_logits

        logits, description = onnx_logits(path)
        transform = description.get("transform")
        try:
            transform = InputTransform.from_dict(transform) if transform is not None else None
            features, vocabulary = description.get("input_size"), description.get("vocab_size")
            if not (isinstance(features, int) or isinstance(vocabulary, int)):
                raise ValueError("neither input_size nor vocab_size")
            classes = description.get("classes")
            if classes is not None:
                classes = check_class_names(classes, description.get("output_size") or 0)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{path}: unreadable hadamrnn metadata ({error})") from None
        return Predictor(logits, transform, features or 0, vocabulary, description.get("readout") == "all",
                         integer=False, raw=True, classes=classes)
    if runtime == "numpy-int":
        from .codegen import load_integer_model

        if not (path / "integer_model.npz").is_file() and path.suffix != ".npz":
            raise ValueError(f"{path}: --runtime numpy-int reads the directory written by 'hadamrnn export RUN "
                             f"--target c -o DIR' (its integer_model.npz); for a .hrnn file use --runtime numpy or torch")
        integer = load_integer_model(path / "integer_model.npz" if path.is_dir() else path)
        return Predictor(lambda x: integer.logits_int(integer.quantize_inputs(x)), integer.transform,
                         integer.input_size, integer.vocab_size, integer.readout == "all", integer=True,
                         classes=integer.classes)
    from . import runtime as float_runtime

    if path.is_dir():  # a C export directory holds the float model beside the integer one
        if (path / "integer_model.npz").is_file() and not (path / "model.hrnn").is_file():
            raise ValueError(f"{path} holds an integer model without a .hrnn float model (FastGRNN's C export): run it "
                             f"with --runtime numpy-int, or its float model from the run directory with --runtime onnx")
        if not (path / "model.hrnn").is_file():
            raise ValueError(f"{path} is a directory without a model.hrnn: --runtime {runtime} reads a .hrnn file "
                             f"(hadamrnn export RUN -o FILE.hrnn) or a C export directory")
        path = path / "model.hrnn"
    exported = float_runtime.load(path)
    tokens = exported.embedding is not None
    if runtime == "numpy":
        logits = exported.logits
    else:
        from .export import load_as_torch

        logits = _torch_logits(load_as_torch(path), tokens)
    return Predictor(logits, exported.transform, exported.U.shape[1], len(exported.embedding) if tokens else None,
                     exported.config["readout"] == "all", integer=False, classes=exported.classes)
