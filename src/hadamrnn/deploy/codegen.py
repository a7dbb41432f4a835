"""C99 code for an integer model, rendered from the templates in ``templates/``:
``hadamrnn_model.h/.c`` (no malloc, no floating point) from the family's own pair
(``hadamrnn_model.*`` for HadamRNN, ``fastgrnn_model.*`` for FastGRNN) with what every family
shares (``model_api.h``, ``model_dsp.c``, ``model_sequence.c``), ``hadamrnn_input.h``, a ``predict.c`` program, and
a ``Makefile`` that builds it for this computer or, with ``startup_cortex_m.c`` and a linker script
per board (``mps2_an386.ld``, ``microbit.ld``: :data:`BOARDS`), for a Cortex-M4 or a Cortex-M0
under QEMU. The code performs exactly the operations of the NumPy integer model
(:class:`hadamrnn.deploy.integer.IntegerModel`, :class:`hadamrnn.deploy.integer_fastgrnn.IntegerFastGRNN`),
each intermediate in the type its proven bound allows, so their logits match bit for bit.
"""

from __future__ import annotations

import io
import json
import re
import string
import zipfile
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes
from ..classes import check_class_names
from ..untrusted import parse_json
from ..preprocess import InputTransform
from .fileformat import ModelFileError
from .integer import IntegerModel, IntegerRNN
from .integer_fastgrnn import IntegerFastGRNN

__all__ = ["write_c", "save_integer_model", "load_integer_model", "weight_bytes", "TEMPLATES", "BOARDS"]

TEMPLATES = ("predict.c", "Makefile", "startup_cortex_m.c")  # written as they are, for every model
INTEGER_FAMILIES = {family.family: family for family in (IntegerModel, IntegerFastGRNN)}
# The boards the Makefile runs under QEMU: linker script written -> (board, core, flash, RAM).
BOARDS = {"mps2_an386.ld": ("mps2-an386", "Cortex-M4", "4M", "4M"),
          "microbit.ld": ("microbit", "Cortex-M0, nRF51", "256K", "16K")}


class _Template(string.Template):
    delimiter = "@"  # C, Makefiles and linker scripts use $; a literal @ is written @@


def _render(name: str, **values: object) -> str:
    text = resources.files(__package__).joinpath("templates", name).read_text()
    return _Template(text).substitute({k: str(v) for k, v in values.items()})


def _array(values: np.ndarray, per_line: int = 16) -> str:
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    return ",\n    ".join(", ".join(flat[i:i + per_line]) for i in range(0, len(flat), per_line))


def _ctype(values: np.ndarray) -> str:
    low, high = int(np.min(values, initial=0)), int(np.max(values, initial=0))
    for bits, name in ((8, "int8_t"), (16, "int16_t"), (32, "int32_t")):
        if -(1 << (bits - 1)) <= low and high < (1 << (bits - 1)):
            return name
    return "int64_t"


_BYTES = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "int32_t": 4, "int64_t": 8}


def _packed_nibbles(levels: np.ndarray) -> np.ndarray | None:
    """Levels in [-8, 7] two per byte, low nibble first (odd counts padded with 0); None otherwise."""
    flat = np.asarray(levels, dtype=np.int64).reshape(-1)
    if flat.size == 0 or flat.min() < -8 or flat.max() > 7:
        return None
    flat = np.concatenate([flat, np.zeros(flat.size % 2, np.int64)])
    return (((flat[1::2] & 15) << 4) | (flat[0::2] & 15)).astype(np.uint8).view(np.int8).astype(np.int64)


@dataclass(frozen=True)
class _Table:
    name: str
    ctype: str
    values: np.ndarray
    comment: str
    packed: bool = False  # two 4-bit levels per byte
    extra: str = ""  # added to the array's length (a C expression): zeros a faster reader may reach

    def c(self) -> str:
        size = f"{max(self.values.size, 1)}{f' + {self.extra}' if self.extra else ''}"
        return (f"static const {self.ctype} {self.name}[{size}] = {{  /* {self.comment} */\n"
                f"    {_array(self.values) if self.values.size else '0'}\n}};")

    @property
    def bytes(self) -> int:
        return self.values.size * _BYTES[self.ctype]


def _sign_bits(signs: np.ndarray) -> np.ndarray:
    return np.packbits(np.asarray(signs) < 0, bitorder="little").astype(np.int64)


def _b_holds_rounding(model: IntegerModel) -> bool:
    """Whether ``B`` stores ``b + 2^(G-1)`` (one addition per unit fewer at every step): when that
    takes no wider type than ``b`` itself, so the table's bytes stay as they are."""
    return _ctype(np.asarray(model.b) + (1 << model.guard_bits >> 1)) == _ctype(model.b)


def _hadamrnn_tables(model: IntegerModel) -> list[_Table]:
    """The constant arrays of HadamRNN's ``hadamrnn_model.c``. V's levels go two per byte when they fit 4 bits (read
    once per read-out); U's stay one per byte or wider: unpacking them on every step costs more
    instructions than the bytes it saves are worth (docs/deployment.md has the measurement)."""
    tables: list[_Table] = []
    tables.append(_Table("U", _ctype(model.u_levels), model.u_levels.reshape(-1), "U's levels, row-major",
                         extra="HRNN_U_OVERREAD"))
    packed = _packed_nibbles(model.v_levels)
    if packed is not None:
        tables.append(_Table("V", "int8_t", packed, "V's levels, row-major, two per byte", packed=True))
    else:
        tables.append(_Table("V", _ctype(model.v_levels), model.v_levels.reshape(-1), "V's levels, row-major"))
    if _b_holds_rounding(model):  # the step's one rounding, added here once instead of at every step
        rounded = np.asarray(model.b) + (1 << model.guard_bits >> 1)
        tables.append(_Table("B", _ctype(rounded), rounded, "b at 2^-(fh+G), plus 2^(G-1) for the rounding shift"))
    else:
        tables.append(_Table("B", _ctype(model.b), np.asarray(model.b), "b at 2^-(fh+G)"))
    return tables + _common_tables(model)


def _common_tables(model: IntegerRNN) -> list[_Table]:
    tables = [_Table("CBIAS", _ctype(model.c), np.asarray(model.c), "c in logit units")]
    if model.embedding is not None:
        tables.append(_Table("EMBEDDING", _ctype(model.embedding), np.asarray(model.embedding).reshape(-1),
                             "token embeddings at 2^-fx, row-major"))
    return tables


def _fastgrnn_tables(model: IntegerFastGRNN) -> list[_Table]:
    """The constant arrays of FastGRNN's ``hadamrnn_model.c``: the levels of each factor, one per byte
    (or wider), V's, the biases at 2^-Q (``BZ`` with the 1 of σ's ``(x + 1)/2`` added)."""
    tables = []
    for name, factors in (("W", model.w_factors), ("U", model.u_factors)):
        # low rank: W2 (r × d) applies first, then W1 (n × r); full rank: W (n × d)
        labels = [f"{name}2", f"{name}1"] if len(factors) == 2 else [name]
        for label, levels in zip(labels, factors):
            tables.append(_Table(label, _ctype(levels), levels.reshape(-1), f"{label}'s levels, row-major",
                                 extra=f"HRNN_{name}_OVERREAD" if label == labels[0] else ""))
    tables.append(_Table("V", _ctype(model.v_levels), model.v_levels.reshape(-1), "V's levels, row-major"))
    gate = np.asarray(model.b_gate) + (1 << model.gate_bits)
    tables.append(_Table("BZ", _ctype(gate), gate, "b_z + 1 at 2^-Q"))
    tables.append(_Table("BH", _ctype(model.b_update), np.asarray(model.b_update), "b_h at 2^-Q"))
    return tables + _common_tables(model)


def weight_bytes(model: IntegerRNN) -> int:
    """Bytes of the constant arrays in the generated source (sign bits, levels, biases, embedding)."""
    if isinstance(model, IntegerFastGRNN):
        return sum(table.bytes for table in _fastgrnn_tables(model))
    return _sign_bits(model.signs).size + sum(table.bytes for table in _hadamrnn_tables(model))


def save_integer_model(model: IntegerRNN, path: str | Path) -> None:
    """The integer model as ``.npz`` arrays (no pickle): its family, every field (a tuple of arrays as
    ``NAME[k]``; the names of fields that are None in ``none_fields``), the transform and the class names as JSON."""
    arrays: dict[str, np.ndarray] = {"family": np.array(model.family)}
    none_fields = []
    for field in fields(model):
        value = getattr(model, field.name)
        if field.name in ("transform", "classes"):
            continue
        if value is None:
            none_fields.append(field.name)
        elif isinstance(value, tuple):
            arrays.update({f"{field.name}[{k}]": np.asarray(v) for k, v in enumerate(value)})
        else:
            arrays[field.name] = np.asarray(value)
    arrays["none_fields"] = np.array(json.dumps(none_fields))
    arrays["transform"] = np.array(json.dumps(model.transform.to_dict() if model.transform else None))
    arrays["classes"] = np.array(json.dumps(model.classes))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_integer_model(path: str | Path) -> IntegerRNN:
    """The integer model saved beside generated C; a ``ModelFileError`` when the file is not one."""
    try:
        return _load_integer_model(path)
    except (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as error:
        if isinstance(error, ModelFileError):
            raise
        raise ModelFileError(f"{Path(path).name}: not an integer model written by hadamrnn export --target c "
                             f"({type(error).__name__}: {str(error)[:200]})") from None


def _load_integer_model(path: str | Path) -> IntegerRNN:
    name = Path(path).name
    with np.load(path, allow_pickle=False) as stored:
        values = {k: stored[k] for k in stored.files}
    family = str(values.pop("family", "hadamrnn"))  # files from before FastGRNN's export hold a HadamRNN
    if family not in INTEGER_FAMILIES:
        raise ModelFileError(f"{name}: unknown model family {family[:40]!r}; this hadamrnn reads "
                             f"{sorted(INTEGER_FAMILIES)}")
    if family == "hadamrnn" and "guard_bits" not in values:
        raise ModelFileError(f"{name}: written by an older hadamrnn, which rounded each term of a step "
                             "on its own; export the model again (hadamrnn export RUN --target c)")
    transform = parse_json(str(values.pop("transform", "null")), f"{name}: transform", ModelFileError)
    classes = parse_json(str(values.pop("classes", "null")), f"{name}: classes", ModelFileError)
    none_fields = parse_json(str(values.pop("none_fields", "[]")), f"{name}: none_fields", ModelFileError)
    if "has_embedding" in values and not bool(values.pop("has_embedding")):  # the older way to say None
        none_fields = [*none_fields, "embedding"]
    kwargs: dict = {}
    tuples: dict[str, dict[int, np.ndarray]] = {}
    for key, value in values.items():
        match = re.fullmatch(r"(\w+)\[(\d+)\]", key)
        if match:
            tuples.setdefault(match[1], {})[int(match[2])] = value
        else:
            kwargs[key] = value.item() if value.ndim == 0 else value
    kwargs.update({key: tuple(parts[k] for k in range(len(parts))) for key, parts in tuples.items()})
    kwargs.update({key: None for key in none_fields if isinstance(key, str)})
    kwargs["transform"] = InputTransform.from_dict(transform) if transform is not None else None
    kwargs["classes"] = check_class_names(classes, len(kwargs["v_levels"])) if classes is not None else None
    return INTEGER_FAMILIES[family](**kwargs)


def _float_literal(value: float) -> str:
    return f"{float(np.float32(value))!r}f"


def _input_header(transform: InputTransform | None, d: int) -> str:
    """``hadamrnn_input.h``: the input transform as constants for ``predict.c``."""
    features = transform is not None and transform.kind == "features"
    tokens = transform is not None and transform.kind == "tokens"
    order = transform.order if features and transform.order is not None else ()
    offsets = (f"static const float HRNN_OFFSET[{d}] = {{{', '.join(map(_float_literal, transform.offset))}}};\n"
               f"static const float HRNN_DIVISOR[{d}] = {{{', '.join(map(_float_literal, transform.divisor))}}};"
               if features else "")
    return _render(
        "hadamrnn_input.h", features=int(features), offsets=offsets, order_steps=len(order),
        order=f"static const int32_t HRNN_ORDER[{len(order)}] = {{\n    {_array(np.array(order))}\n}};" if order else "",
        length=(transform.length or 0) if transform is not None else 0,
        keep_last=int(not tokens or transform.keep == "last"),
        vocabulary=(f"/* token ids refer to the vocabulary with SHA-256 {transform.vocabulary_sha256} */\n"
                    if tokens and transform.vocabulary_sha256 else ""))


def _bound_lines(model: IntegerRNN) -> str:
    lines = []
    for bound in model.check_bounds():
        lines += [f"#define HRNN_{bound.name.upper()}_BOUND {bound.max_abs}  /* {bound.what} */",
                  f"#define HRNN_{bound.name.upper()}_BITS {bound.bits}",
                  f"typedef {bound.ctype} hrnn_{bound.name}_t;"]
    if isinstance(model, IntegerModel) and not any(bound.name == "rotation" for bound in model.bounds()):
        lines.append("typedef hrnn_sum_t hrnn_rotation_t;  /* a / sqrt(m) is a shift: no product */")
    return "\n".join(lines)


def _dsp_fits(model: IntegerModel, u_table: _Table) -> dict[str, int]:
    """Whether the paired 16-bit instructions compute this model's step exactly, and gain: ``dsp_input``
    (U x by SMLAD: 8-bit levels, inputs in int16, the sum's bound in int32, and at least two inputs:
    with one, a word load and a sign extension cost more than the one product they replace) and
    ``dsp_fwht`` (the Hadamard sums' bound in int16, states in int16, an even n, blocks of at least 2)."""
    bits = {bound.name: bound.bits for bound in model.check_bounds()}
    n, d = model.u_levels.shape
    return {"dsp_input": int(d >= 2 and u_table.ctype == "int8_t" and model.bits <= 16 and bits["input"] <= 32),
            "dsp_fwht": int(model.bits <= 16 and bits["sum"] <= 16 and n % 2 == 0 and model.block >= 2)}


def _hadamrnn_values(model: IntegerModel) -> dict:
    """The placeholders of ``hadamrnn_model.h/.c``."""
    rot_multiplier, rot_shift = model.rotation
    tables = _hadamrnn_tables(model)
    return dict(
        block=model.block, rot_multiplier=rot_multiplier, rot_shift=rot_shift, u_multiplier=model.u_multiplier,
        u_shift=model.u_shift, guard_bits=model.guard_bits, **_dsp_fits(model, tables[0]),
        b_rounded=int(_b_holds_rounding(model)), signs=_array(_sign_bits(model.signs)),
        tables="\n".join([t.c() for t in tables] + [f"#define HRNN_V_PACKED {int(tables[1].packed)}"]))


def _fastgrnn_values(model: IntegerFastGRNN) -> dict:
    """The placeholders of ``fastgrnn_model.h/.c``."""
    tables = _fastgrnn_tables(model)
    ranks = [factors[0].shape[0] if len(factors) == 2 else 0 for factors in (model.w_factors, model.u_factors)]
    bits = {bound.name: bound.bits for bound in model.check_bounds()}

    def dsp_fits(name: str, factors: tuple[np.ndarray, ...]) -> int:
        """SMLAD for the factor that reads x (W) or h (U): 8-bit levels, 16-bit values, int32 sums, 2+ columns."""
        sums = bits[f"{name}_inner" if len(factors) == 2 else f"{name}_sum"]
        return int(_ctype(factors[0]) == "int8_t" and model.bits <= 16 and sums <= 32 and factors[0].shape[1] >= 2)

    return dict(
        w_rank=ranks[0], u_rank=ranks[1], fh=model.fh, gate_bits=model.gate_bits, w_pre_shift=model.w_pre_shift,
        w_multiplier=model.w_multiplier, w_shift=model.w_shift, u_pre_shift=model.u_pre_shift,
        u_multiplier=model.u_multiplier, u_shift=model.u_shift, zeta=model.zeta, nu=model.nu,
        mix_exponent=model.fh + 1 - model.gate_bits, tables="\n".join(t.c() for t in tables),
        dsp_w=dsp_fits("w", model.w_factors), dsp_u=dsp_fits("u", model.u_factors))


# family -> (the templates of its hadamrnn_model.h and hadamrnn_model.c, their placeholders)
_SOURCES = {"hadamrnn": ("hadamrnn_model.h", "hadamrnn_model.c", _hadamrnn_values),
            "fastgrnn": ("fastgrnn_model.h", "fastgrnn_model.c", _fastgrnn_values)}


def write_c(model: IntegerRNN, directory: str | Path) -> list[Path]:
    """Write ``hadamrnn_model.h/.c`` (from the model family's templates, with ``model_api.h``,
    ``model_dsp.c`` and ``model_sequence.c``, which every family shares), ``hadamrnn_input.h``, the files of
    :data:`TEMPLATES` (the linker script once per board of :data:`BOARDS`) and ``integer_model.npz``
    (the model for ``hadamrnn predict --runtime numpy-int``) into ``directory``; returns their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    header, source, family_values = _SOURCES[model.family]
    low, high = model.limits
    int32_bits = model.int32_state_bits()
    values = dict(
        n=model.v_levels.shape[1], d=model.input_size, classes=model.v_levels.shape[0], bits=model.bits,
        fx=model.fx, tokens=int(model.embedding is not None), vocab=model.vocab_size or 0, low=low, high=high,
        logit_scale=repr(model.logit_scale), bounds=_bound_lines(model),
        int32_bits=int32_bits if int32_bits is not None else "(none)",
        state_type="int16_t" if model.bits <= 16 else "int32_t",
        input_type=_ctype(model.embedding) if model.embedding is not None else "int32_t",  # as its table's
        **family_values(model))
    texts = {"hadamrnn_model.h": _render(header, api=_render("model_api.h"), **values),
             "hadamrnn_model.c": _render(source, sequence=_render("model_sequence.c"), dsp=_render("model_dsp.c"),
                                         **values),
             "hadamrnn_input.h": _input_header(model.transform, model.input_size)}
    texts.update({name: _render(name) for name in TEMPLATES})
    for script, (board, core, flash, ram) in BOARDS.items():
        texts[script] = _render("cortex_m.ld", board=board, core=core, flash=flash, ram=ram)
    written = []
    for name, text in texts.items():
        atomic_write_bytes(directory / name, text.encode())
        written.append(directory / name)
    save_integer_model(model, directory / "integer_model.npz")
    written.append(directory / "integer_model.npz")
    return written
