"""Opening an .onnx file safely and reading what it says about itself.

Before onnxruntime sees a file, :func:`check_external_data` reads the protobuf and
refuses weights stored in external files outside the model's folder: a location that
is absolute, climbs with ``..``, passes through a symlink, is a hardlink (``st_nlink >
1``), is not a regular file (a FIFO would hang the load), or is onnxruntime's
in-memory address tag (which would make it read process memory). onnxruntime does
not check all of these itself (it accepted the hardlink case); onnx's loader does,
but onnx is not a runtime dependency.

Why a protobuf reader of our own rather than ``onnx.load``: the runtime needs nothing
but numpy, onnxruntime and OpenCV, and using onnx "when importable" would give two
behaviours to test. The reader walks only the messages that can hold a tensor
(ModelProto -> GraphProto -> NodeProto -> AttributeProto -> TensorProto, plus
functions, training graphs and sparse tensors), skips everything else by wire type,
and refuses malformed input, so it cannot be led out of the file's bytes.
"""

from __future__ import annotations

import logging
import mmap
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from .card import METADATA_KEY, ModelCard
from .errors import ModelLoadError

logger = logging.getLogger(__name__)

__all__ = [
    "ExternalData",
    "card_path",
    "check_external_data",
    "check_model_file",
    "external_data",
    "is_ort_format",
    "open_session",
    "read_card",
    "read_metadata",
]

_ORT_LOAD_ERRORS = (
    ort_state.InvalidProtobuf,
    ort_state.Fail,
    ort_state.InvalidGraph,
    ort_state.NotImplemented,
    ort_state.NoSuchFile,
    ort_state.RuntimeException,
    ort_state.InvalidArgument,
)


# How long an idle intra-op thread spins before it sleeps, when spinning is on (the
# Engine's default). onnxruntime's own unbounded spinning, on a machine whose cores
# other programs also want, made two threads 4-5x slower than a sleeping thread pool
# (MobileNetV2 at 224, batch 1: 39.4 ms against 10.3 with spinning off, 10.8 spinning
# 20 us, LiteRT 9.9; docs/performance.md): a spinning worker uses up its time slice and
# is descheduled when work arrives, and every parallel operator waits for it. Bounded to
# 20 us it bridges the gaps between the operators of one run.
SPIN_DURATION_US = 20


def open_session(
    path: Path,
    providers: list,
    threads: int | None,
    spinning: bool,
    fixed: dict[str, int] | None = None,
    int8_gemm: bool = False,
) -> ort.InferenceSession:
    """Opens an onnxruntime session, turning every load failure into ModelLoadError.

    ``fixed`` gives free input dimensions (by their names) a value for this session, so
    onnxruntime folds what depends on them at load (a frame model's index tables).
    ``int8_gemm`` opens the model with its deep int8 convolutions moved to onnxruntime's
    GEMM kernels (:mod:`.int8gemm`; an exact rewrite, made in memory, the file untouched);
    a model without such convolutions, or with external data, opens as it is."""
    check_model_file(path)
    source: str | bytes = str(path)
    ort_format = is_ort_format(path)  # an ORT-format file holds its weights itself: nothing to check
    external = not ort_format and check_external_data(path)
    if int8_gemm and not ort_format and not external:
        from .int8gemm import move_to_gemm  # it reads protobuf with this module's helpers

        data, moved = move_to_gemm(path.read_bytes())
        if moved:
            logger.debug("%s: %d int8 convolutions on the GEMM kernels", path, moved)
            source = data
    options = ort.SessionOptions()
    for name, value in (fixed or {}).items():
        options.add_free_dimension_override_by_name(name, value)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Warnings such as "some nodes were not assigned to the preferred provider" are
    # normal; provider problems are reported by verify_providers instead.
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    else:
        options.add_session_config_entry("session.intra_op.spin_duration_us", str(SPIN_DURATION_US))
    try:
        session = ort.InferenceSession(source, sess_options=options, providers=providers)
    except _ORT_LOAD_ERRORS as exc:
        raise ModelLoadError(_load_error_message(path, exc)) from exc
    except UnicodeDecodeError:
        # onnxruntime refused the file with a message quoting bytes that are not UTF-8.
        raise ModelLoadError(
            f"cannot load {str(path)!r}: onnxruntime {ort.__version__} refused it, and the file holds "
            "names that are not valid UTF-8; accepted: an .onnx model as ONNX tools write it, "
            "e.g. from `cnnport export`"
        ) from None
    _check_text(session, path)
    return session


def check_model_file(path: Path) -> None:
    """Raises ModelLoadError unless ``path`` is a non-empty file (what every runtime opens)."""
    if not path.exists():
        raise ModelLoadError(f"model file not found: {str(path)!r}")
    if not path.is_file():
        raise ModelLoadError(f"expected an .onnx file, received a folder: {str(path)!r}")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"model file is empty: {str(path)!r}")


def is_ort_format(path: Path) -> bool:
    """True for onnxruntime's ORT format (``cnnport export --ort``): a flatbuffer, not a protobuf.

    onnxruntime itself picks the format by the ``.ort`` suffix; the file identifier
    (``ORTM`` at byte 4) is checked too, so a renamed .onnx still gets its external-data check.
    """
    if path.suffix.lower() != ".ort":
        return False
    with open(path, "rb") as handle:
        return handle.read(8)[4:8] == b"ORTM"


def _check_text(session: ort.InferenceSession, path: Path) -> None:
    """Reads the names and metadata once, so invalid UTF-8 is a ModelLoadError, not a crash later."""
    try:
        session.get_modelmeta().custom_metadata_map  # noqa: B018 - decoding is the check
        for arg in (*session.get_inputs(), *session.get_outputs()):
            arg.name, arg.type, arg.shape  # noqa: B018
    except UnicodeDecodeError as exc:
        raise ModelLoadError(
            f"cannot load {str(path)!r}: it holds a name or metadata value that is not valid UTF-8 "
            f"({exc.reason} at byte {exc.start}); accepted: an .onnx model as ONNX tools write it, "
            "e.g. from `cnnport export`"
        ) from None


def _load_error_message(path: Path, exc: Exception) -> str:
    reason = str(exc).split(" : ")[-1].strip()
    text = reason.lower()
    if "protobuf parsing failed" in text:
        return (
            f"cannot load {str(path)!r}: not a valid ONNX file (it may be truncated, or another "
            "format); accepted: an .onnx model, e.g. from `cnnport export`"
        )
    ir = re.search(r"Unsupported model IR version: (\d+), max supported IR version: (\d+)", reason)
    if ir:
        return (
            f"cannot load {str(path)!r}: it has ONNX IR version {ir[1]} but onnxruntime {ort.__version__} "
            f"reads IR versions up to {ir[2]}; re-export with opset {_DEFAULT_OPSET} "
            f"(cnnport export --opset {_DEFAULT_OPSET}, which writes an older IR version) or upgrade onnxruntime"
        )
    opset = re.search(
        r"Opset (\d+) is under development.*support for domain (\S+) is till opset (\d+)", reason
    )
    if opset:
        return (
            f"cannot load {str(path)!r}: it uses opset {opset[1]} of {opset[2]} but onnxruntime "
            f"{ort.__version__} supports opsets up to {opset[3]}; re-export with opset {opset[3]} or lower "
            f"(cnnport export --opset {min(int(opset[3]), _DEFAULT_OPSET)}) or upgrade onnxruntime"
        )
    if "opset" in text or "ir_version" in text or "ir version" in text:
        return (
            f"cannot load {str(path)!r}: it needs a newer onnxruntime than {ort.__version__} ({reason}); "
            f"re-export with opset {_DEFAULT_OPSET} (cnnport export --opset {_DEFAULT_OPSET}) or upgrade onnxruntime"
        )
    return f"cannot load {str(path)!r} with onnxruntime {ort.__version__}: {reason}"


def card_path(model: str | os.PathLike) -> Path:
    """Where the card of ``model`` is written beside it, for runtimes that cannot read ONNX
    metadata: ``digits.frame-rgba.onnx`` (or ``.ort``) -> ``digits.frame-rgba.card.json``."""
    model = Path(model)
    stem = model.name[: -len(model.suffix)] if model.suffix in (".onnx", ".ort") else model.name
    return model.with_name(f"{stem}.card.json")


def read_card(path: str | os.PathLike) -> ModelCard | None:
    """The model card embedded in an .onnx file, or None when it has none.

    Reads the metadata through onnxruntime (the ``onnx`` package is not needed).

    Raises:
        ModelLoadError: the file is missing or not a loadable ONNX model.
        CardError: the embedded card is invalid.
    """
    session = open_session(Path(path), ["CPUExecutionProvider"], threads=1, spinning=False)
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    return None if text is None else ModelCard.from_json(text)


def read_metadata(path: Path) -> dict[str, str]:
    """The ``metadata_props`` of an .onnx file (where its card lives), read without a runtime.

    For runtimes other than onnxruntime (the ``openvino`` provider), whose APIs do not
    hand the ONNX metadata over.

    Raises:
        ModelLoadError: the file cannot be read or is not a well-formed protobuf.
    """
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            buf = memoryview(view)
            try:
                return _metadata_props(buf)
            finally:
                buf.release()
    except _MalformedError as exc:
        raise ModelLoadError(
            f"cannot load {str(path)!r}: not a valid ONNX file ({exc}); accepted: an .onnx model, "
            "e.g. from `cnnport export`"
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {str(path)!r}: {exc}") from None


def _metadata_props(buf: memoryview) -> dict[str, str]:
    props: dict[str, str] = {}
    for number, wire, value in _fields(buf, 0, len(buf)):
        if number != _METADATA_PROPS or wire != 2:
            continue
        key = entry = ""
        for sub, sub_wire, sub_value in _fields(buf, *value):
            if sub in (1, 2) and sub_wire == 2:
                key, entry = (_text(buf, sub_value), entry) if sub == 1 else (key, _text(buf, sub_value))
        props[key] = entry
    return props


# --- external data ------------------------------------------------------------------

# What `cnnport export` writes by default (export/config.py); runtime/ cannot import it.
_DEFAULT_OPSET = 17
# onnxruntime treats a tensor whose location is this tag as living at the memory
# address given by its offset: from a file, that is an arbitrary memory read.
_ORT_MEMORY_TAG = "_ORT_MEM_ADDR_"
_MAX_DEPTH = 64  # nested graphs; protobuf's own recursion limit is 100
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_METADATA_PROPS = 14  # ModelProto.metadata_props

# Which length-delimited fields of which ONNX message hold a message that can lead to a
# tensor (numbers from onnx/onnx.proto3). Everything else is skipped unread.
_CHILDREN: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "function": {7: "node", 11: "attribute"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
}


@dataclass(frozen=True)
class ExternalData:
    """A tensor whose values live in another file: its name and the file's location."""

    tensor: str
    location: str | None


class _MalformedError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _MalformedError(f"bad varint at byte {pos}")
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if byte < 0x80:
            return value, pos


def _fields(buf: memoryview, start: int, end: int):
    """Yields (field number, wire type, value) of one message; LEN values as (start, end)."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _MalformedError(f"field number 0 at byte {pos}")
        if wire == 0:
            value, pos = _varint(buf, pos, end)
        elif wire == 2:
            size, pos = _varint(buf, pos, end)
            value, pos = (pos, pos + size), pos + size
        elif wire in (1, 5):
            value, pos = None, pos + (8 if wire == 1 else 4)
        else:  # groups (3, 4) do not exist in ONNX's proto3 schema; 6 and 7 are invalid
            raise _MalformedError(f"unsupported wire type {wire} at byte {pos}")
        if pos > end:
            raise _MalformedError(f"field {number} runs past the end of its message (byte {end})")
        yield number, wire, value


def _text(buf: memoryview, span: tuple[int, int]) -> str:
    try:
        return bytes(buf[span[0] : span[1]]).decode("utf-8")
    except UnicodeDecodeError:
        raise _MalformedError(f"invalid UTF-8 string at byte {span[0]}") from None


def _tensor(buf: memoryview, start: int, end: int) -> ExternalData | None:
    name, entries, location = "", {}, 0
    for number, wire, value in _fields(buf, start, end):
        if number == 8 and wire == 2:
            name = _text(buf, value)
        elif number == 14 and wire == 0:
            location = value
        elif number == 13 and wire == 2:
            key = entry = ""
            for sub, sub_wire, sub_value in _fields(buf, *value):
                if sub in (1, 2) and sub_wire == 2:
                    key, entry = (_text(buf, sub_value), entry) if sub == 1 else (key, _text(buf, sub_value))
            entries[key] = entry
    if location != _EXTERNAL and not entries:
        return None
    return ExternalData(name, entries.get("location"))


def external_data(data: bytes | memoryview | mmap.mmap) -> list[ExternalData]:
    """Every tensor of a serialized ModelProto whose data is stored in an external file.

    Raises:
        ModelLoadError: the bytes are not a well-formed protobuf, or nest too deep.
    """
    buf = memoryview(data)
    found: list[ExternalData] = []
    stack = [("model", 0, len(buf), 0)]
    try:
        while stack:
            kind, start, end, depth = stack.pop()
            if depth > _MAX_DEPTH:
                raise _MalformedError(f"messages nested more than {_MAX_DEPTH} deep")
            children = _CHILDREN[kind]
            for number, wire, value in _fields(buf, start, end):
                child = children.get(number)
                if child is None or wire != 2:
                    continue
                if child == "tensor":
                    tensor = _tensor(buf, *value)
                    if tensor is not None:
                        found.append(tensor)
                else:
                    stack.append((child, *value, depth + 1))
    except _MalformedError as exc:
        raise ModelLoadError(
            f"not a valid ONNX file ({exc}; it may be truncated, or another format); "
            "accepted: an .onnx model, e.g. from `cnnport export`"
        ) from None
    finally:
        buf.release()
    return found


def check_external_data(path: Path) -> bool:
    """Refuses an .onnx file whose external weight files are not safely inside its folder.

    Returns:
        Whether the file keeps any weights in external files (all of them checked).

    Raises:
        ModelLoadError: naming the tensor, the location, and the rule it breaks.
    """
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            tensors = external_data(view)
    except ModelLoadError as exc:
        raise ModelLoadError(f"cannot load {str(path)!r}: {exc}") from None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {str(path)!r}: {exc}") from None
    folder = path.absolute().parent
    for tensor in tensors:
        problem = _location_problem(folder, tensor.location)
        if problem:
            raise ModelLoadError(
                f"refusing {str(path)!r}: tensor {tensor.tensor!r} keeps its data in external file "
                f"{tensor.location!r}, which {problem}; accepted: external data files that are regular "
                "files inside the model's folder, named by a relative path without '..', "
                "not symlinks and not hardlinks"
            )
    return bool(tensors)


def _location_problem(folder: Path, location: str | None) -> str | None:
    """Why ``location`` is unsafe, or None when it names a plain file inside ``folder``."""
    if not location:
        return "is empty"
    if _ORT_MEMORY_TAG in location:
        return "is onnxruntime's in-memory address tag (it would read process memory)"
    if "\0" in location:
        return "holds a NUL character"
    if PurePosixPath(location).is_absolute() or PureWindowsPath(location).anchor:
        return "is an absolute path"
    parts = [p for p in re.split(r"[\\/]", location) if p not in ("", ".")]
    if ".." in parts:
        return "climbs out of the folder with '..'"
    if not parts:
        return "names no file"
    current = folder
    for i, part in enumerate(parts):
        current = current / part
        try:
            info = os.lstat(current)
        except OSError:
            return "does not exist"
        if stat.S_ISLNK(info.st_mode):
            return "is a symlink" if i == len(parts) - 1 else f"passes through the symlink {part!r}"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if info.st_nlink > 1:
        return f"is a hardlink ({info.st_nlink} names for one file)"
    if not os.path.realpath(current).startswith(os.path.realpath(folder) + os.sep):
        return "resolves outside the model's folder"
    return None
