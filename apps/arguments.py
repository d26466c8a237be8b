"""Argument helpers shared by the command modules: engine flags, sizes, number lists,
frame sources, and the extras a command needs."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnport.runtime import PROVIDERS, Engine, InputError, require

__all__ = [
    "INT8_GEMM",
    "add_custom_objects_argument",
    "add_engine_arguments",
    "add_int8_gemm_argument",
    "add_source_arguments",
    "engine_from_args",
    "frame_size",
    "parse_floats",
    "parse_size",
    "require_export_stack",
    "watchdog_from_args",
]


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by every command that opens an Engine."""
    parser.add_argument(
        "--provider",
        default="auto",
        choices=["auto", *PROVIDERS.names()],
        help="execution provider; auto uses CUDA when it really loads, else CPU; openvino and openvino-bf16 "
        'run the OpenVINO runtime (f32, or bf16: reduced precision; pip install "cnnport[openvino]")',
    )
    parser.add_argument("--device-id", type=int, default=0, help="GPU index for cuda/tensorrt")
    parser.add_argument(
        "--threads", type=int, default=None, help="onnxruntime intra-op threads (default: its choice)"
    )
    add_int8_gemm_argument(parser)
    parser.add_argument(
        "--labels", default=None, help="text file of class names, one a line, for an ONNX without a card"
    )
    parser.add_argument(
        "--input-size",
        default=None,
        metavar="HxW",
        help="input height x width for an ONNX without a card, e.g. 224x224",
    )


def add_int8_gemm_argument(parser: argparse.ArgumentParser, extra: str = "") -> None:
    """``--int8-gemm auto|on|off``: the Engine's int8_gemm (runtime/int8gemm.py)."""
    parser.add_argument(
        "--int8-gemm",
        default="auto",
        choices=list(INT8_GEMM),
        help="int8 convolutions on onnxruntime's GEMM kernels (AMX tiles) instead of its direct ones; "
        "auto times both at load on a CPU with AMX-INT8 and keeps the faster; the outputs are identical "
        "(on needs VNNI or AMX-INT8, whose int8 sums are exact)" + extra,
    )


INT8_GEMM = {"auto": None, "on": True, "off": False}  # --int8-gemm -> Engine(int8_gemm=...)


def parse_size(
    text: str, flag: str = "--input-size", example: str = "224x224 (height x width)"
) -> tuple[int, int]:
    """``"224x224"`` -> (224, 224), in the order written; an InputError naming ``flag`` otherwise."""
    try:
        first, second = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise InputError(f"{flag} must look like {example}; received {text!r}") from None
    if first < 1 or second < 1:
        raise InputError(f"{flag} must be positive; received {text!r}")
    return first, second


def engine_from_args(args: argparse.Namespace, *, spinning: bool = True) -> Engine:
    labels = None
    if args.labels:
        try:
            labels = [line.strip() for line in Path(args.labels).read_text().splitlines() if line.strip()]
        except OSError as exc:
            raise InputError(f"cannot read labels file {args.labels!r}: {exc.strerror or exc}") from None
    size = parse_size(args.input_size) if args.input_size else None
    if size is not None:
        from cnnport.runtime import METADATA_KEY, ModelCard
        from cnnport.runtime.errors import CnnportError
        from cnnport.runtime.modelfile import read_metadata

        try:  # the metadata alone, without opening a session the Engine opens again
            text = read_metadata(Path(args.model)).get(METADATA_KEY)
        except CnnportError:
            text = None  # not a readable model: the Engine says what is wrong
        if text is not None:
            spec = ModelCard.from_json(text).input
            raise InputError(
                f"--input-size is for an ONNX without a card; {args.model!r} carries one, which says "
                f"its input is {spec.height}x{spec.width}: drop --input-size"
            )
    return Engine(
        args.model,
        providers=args.provider,
        device_id=args.device_id,
        threads=args.threads,
        spinning=spinning,
        int8_gemm=INT8_GEMM[args.int8_gemm],
        labels=labels,
        input_size=size,
    )


def parse_floats(text: str | None, flag: str, count: int | None = None) -> tuple[float, ...] | None:
    """``"0,1"`` -> (0.0, 1.0); an InputError naming ``flag`` for anything else."""
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or (count is not None and len(values) != count):
        shape = "LOW,HIGH" if count == 2 else "one number, or one per channel, comma-separated"
        raise InputError(f"{flag} must be {shape}; received {text!r}")
    return values


def add_custom_objects_argument(parser: argparse.ArgumentParser) -> None:
    """``--custom-objects`` of the commands that load a .keras (export, check, explain, bench)."""
    parser.add_argument(
        "--custom-objects",
        action="append",
        default=[],
        metavar="FILE.py|package.module",
        help="Python code you trust that defines the model's own layers, Model subclasses or functions; "
        "imported before loading (repeatable). Safe loading stays on: a Lambda layer is still refused",
    )


def require_export_stack(purpose: str) -> None:
    for module in ("tensorflow", "keras", "tf2onnx", "onnx"):
        require(module, extra="train", purpose=purpose)


def frame_size(text: str | None) -> tuple[int, int] | None:
    """``--size 640x480`` -> (640, 480) (width x height, as cameras take it)."""
    return parse_size(text, "--size", "640x480 (width x height)") if text else None


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """The frame-source flags of `cnnport webcam` and `cnnport collect`."""
    parser.add_argument(
        "--source",
        default="0",
        help="camera index, video file, stream URL (rtsp://, http://) or folder of images",
    )
    parser.add_argument("--mirror", action="store_true", help="flip frames left-right (selfie view)")
    parser.add_argument(
        "--size", default=None, metavar="WxH", help="frame size to ask a camera for, e.g. 640x480"
    )
    parser.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: no limit)")
    parser.add_argument(
        "--stale-after",
        type=float,
        default=3.0,
        help="seconds without a new frame before a live source is reconnected",
    )
    parser.add_argument(
        "--reconnects",
        type=int,
        default=None,
        help="reconnect attempts before giving up (default: retry for ever)",
    )


def watchdog_from_args(args: argparse.Namespace):
    """The webcam watchdog from --stale-after and --reconnects."""
    from .webcam import Watchdog  # the library package, not a command

    if args.reconnects is not None and args.reconnects < 0:
        raise InputError(
            f"--reconnects must be 0 or more (0: give up at once); received {args.reconnects}; "
            "leave it out to retry for ever"
        )
    try:
        return Watchdog(stale_after_s=args.stale_after, max_reconnects=args.reconnects)
    except ValueError as exc:
        raise InputError(f"--stale-after must be positive; received {args.stale_after}") from exc
