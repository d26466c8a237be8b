"""A Triton model repository for an exported model: for serving beyond one process.

One exported .onnx becomes one model of the repository::

    REPOSITORY/
      digits/
        config.pbtxt      platform onnxruntime_onnx, the dynamic batch axis, dynamic batching
        labels.txt        the card's labels, one a line (Triton's classification extension)
        card.json         the model card, for clients that want the input contract
        1/model.onnx      the gated .onnx, byte for byte

``config.pbtxt`` is Triton's ``ModelConfig`` protobuf in text form. It is written from
the graph's own signature (as onnxruntime reads it): every input and output without its
first axis, which is the batch axis Triton manages (``max_batch_size``); the other free
axes of a frame model (height, width) are ``-1``. Triton's dynamic batcher only joins
requests of one shape, which is what a frame model asks for (all frames of a batch one
size). When ``tritonclient`` is installed the text is parsed with its ``model_config_pb2``
(Triton's own schema) before anything is written.

Example:
    >>> write_triton_model(Path("digits.onnx"), card, Path("triton"))  # doctest: +SKIP
    PosixPath('triton/digits')
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cnnport.runtime import ModelCard
from cnnport.runtime.files import folder_mode, replace_folder

from .errors import ExportError

__all__ = ["DEFAULT_MAX_BATCH_SIZE", "TensorSignature", "model_name", "triton_config", "write_triton_model"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_SIZE = 32
# Triton waits this long for more requests to join a batch: a fraction of one CNN call.
QUEUE_DELAY_US = 100
LABELS_FILE = "labels.txt"

# onnxruntime's type names -> Triton's DataType enum.
_TRITON_TYPES = {
    "tensor(uint8)": "TYPE_UINT8",
    "tensor(int8)": "TYPE_INT8",
    "tensor(float)": "TYPE_FP32",
    "tensor(float16)": "TYPE_FP16",
    "tensor(int64)": "TYPE_INT64",
    "tensor(int32)": "TYPE_INT32",
}


@dataclass(frozen=True)
class TensorSignature:
    """One graph input or output as onnxruntime reads it: name, type, shape (None: free)."""

    name: str
    type: str
    shape: tuple[int | None, ...]


def model_name(onnx_path: Path) -> str:
    """The model's name in the repository: ``digits.int8.onnx`` -> ``digits_int8``."""
    stem = onnx_path.name[: -len(".onnx")] if onnx_path.name.endswith(".onnx") else onnx_path.stem
    return re.sub(r"[^A-Za-z0-9_-]", "_", stem)


def _signature(onnx_path: Path) -> tuple[list[TensorSignature], list[TensorSignature]]:
    from cnnport.runtime.modelfile import open_session

    session = open_session(onnx_path, ["CPUExecutionProvider"], threads=1, spinning=False)

    def read(args) -> list[TensorSignature]:
        return [
            TensorSignature(a.name, a.type, tuple(d if isinstance(d, int) else None for d in a.shape))
            for a in args
        ]

    return read(session.get_inputs()), read(session.get_outputs())


def _quote(text: str) -> str:
    """A protobuf text-format string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _tensor_block(tensor: TensorSignature, labels: bool) -> str:
    if tensor.type not in _TRITON_TYPES:
        raise ExportError(
            f"graph tensor {tensor.name!r} has type {tensor.type}; a Triton config is written for "
            f"{', '.join(_TRITON_TYPES)}"
        )
    if not tensor.shape or tensor.shape[0] is not None:
        raise ExportError(
            f"graph tensor {tensor.name!r} has shape {list(tensor.shape)}; Triton's dynamic batching needs "
            "a free first (batch) axis, as `cnnport export` writes it"
        )
    dims = ", ".join(str(-1 if d is None else d) for d in tensor.shape[1:])
    lines = [
        f"    name: {_quote(tensor.name)}",
        f"    data_type: {_TRITON_TYPES[tensor.type]}",
        f"    dims: [ {dims} ]",
    ]
    if labels:
        lines.append(f'    label_filename: "{LABELS_FILE}"')
    return "  {\n" + "\n".join(lines) + "\n  }"


def triton_config(
    name: str,
    inputs: list[TensorSignature],
    outputs: list[TensorSignature],
    card: ModelCard,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
) -> str:
    """The ``config.pbtxt`` text of one model (the labels go with the card's probability output).

    Raises:
        ExportError: a tensor has no free batch axis or a type Triton's config cannot name.
    """
    if max_batch_size < 1:
        raise ExportError(f"the Triton max batch size must be at least 1; received {max_batch_size}")
    blocks_in = ",\n".join(_tensor_block(t, False) for t in inputs)
    blocks_out = ",\n".join(_tensor_block(t, t.name == card.output.name) for t in outputs)
    return (
        f"# Written by cnnport export from {name}'s graph; the card is card.json beside it.\n"
        f"name: {_quote(name)}\n"
        'platform: "onnxruntime_onnx"\n'
        f"max_batch_size: {max_batch_size}\n"
        f"input [\n{blocks_in}\n]\n"
        f"output [\n{blocks_out}\n]\n"
        f"dynamic_batching {{\n  max_queue_delay_microseconds: {QUEUE_DELAY_US}\n}}\n"
    )


def parse_config(text: str):
    """``text`` parsed with Triton's own ModelConfig schema (tritonclient's model_config_pb2).

    Raises:
        MissingExtraError: tritonclient is not installed.
        ExportError: the text is not a valid ModelConfig.
    """
    from cnnport.runtime import require

    require("tritonclient", extra="triton", purpose="validating a Triton config.pbtxt")
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise ExportError(f"the Triton config does not parse as Triton's ModelConfig: {exc}") from exc


def _validate(text: str) -> None:
    try:
        import tritonclient  # noqa: F401  (optional: the test suite validates without it being here)
    except ModuleNotFoundError:
        logger.warning('config.pbtxt not parsed with Triton\'s schema: pip install "cnnport[triton]"')
        return
    parse_config(text)


def write_triton_model(
    onnx_path: Path, card: ModelCard, repository: Path, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
) -> Path:
    """Writes ``onnx_path`` as one model of the Triton repository; returns its folder.

    The folder is built beside its final place and swapped in whole, so a server
    polling the repository never sees half a model.

    Raises:
        ExportError: the graph cannot be described to Triton (see :func:`triton_config`).
    """
    name = model_name(onnx_path)
    inputs, outputs = _signature(onnx_path)
    text = triton_config(name, inputs, outputs, card, max_batch_size)
    _validate(text)
    final = repository / name
    try:
        repository.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=repository))
    except OSError as exc:
        raise ExportError(
            f"cannot write the Triton repository {str(repository)!r}: {exc.strerror or exc}"
        ) from exc
    try:
        (staging / "1").mkdir()
        shutil.copyfile(onnx_path, staging / "1" / "model.onnx")
        (staging / "config.pbtxt").write_text(text)
        (staging / LABELS_FILE).write_text("".join(f"{label}\n" for label in card.labels))
        (staging / "card.json").write_text(card.to_json(indent=2) + "\n")
        # mkdtemp makes 0700 whatever the umask: give the folder the mode mkdir would have
        # (a server running as another user reads it where the umask lets it).
        os.chmod(staging, folder_mode())
        replace_folder(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("Triton model %s in %s", name, repository)
    return final
