"""The inference engine: an .onnx file in, typed predictions out. No TensorFlow.

Example:
    >>> from cnnport.runtime import Engine
    >>> engine = Engine("model.onnx", providers="auto")          # doctest: +SKIP
    >>> engine.predict(frame_bgr, top_k=3).label                 # doctest: +SKIP
    'seven'
"""

from __future__ import annotations

import itertools
import logging
import numbers
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from .card import METADATA_KEY, InputSpec, ModelCard, OutputSpec
from .errors import CnnportError, InputError, ModelMismatchError, ProviderError
from .heatmap import CAM_HEADS, heatmap_for
from .int8gemm import cpu_has_amx_int8, cpu_sums_int8_exactly, has_gemm_convolutions
from .modelfile import open_session
from .preprocess import ImageLike, decode_all, preprocess, to_frame_color
from .providers import CPU, CUDA, TENSORRT, resolve_providers, verify_providers
from .tensors import check_frames, check_tensor

__all__ = ["Candidate", "Engine", "Prediction"]

logger = logging.getLogger(__name__)

_ORT_DTYPES = {"tensor(uint8)": "uint8", "tensor(float)": "float32"}


@dataclass(frozen=True)
class Candidate:
    """One class and its score."""

    label: str
    index: int
    score: float


@dataclass(frozen=True)
class Prediction:
    """The answer for one image: the best class, the top-k, and every score.

    ``present`` is what the model says is in the image: for a multi-label model every
    class whose probability is at least the threshold (possibly none), best first; for a
    softmax or binary model the best class alone. ``heatmap``, asked for with
    ``Engine.predict(..., heatmap=True)``, is where the model found the best class: a
    float32 map in [0, 1] at the image's size.
    """

    label: str
    index: int
    score: float
    top_k: tuple[Candidate, ...]
    scores: np.ndarray = field(repr=False, compare=False)
    present: tuple[Candidate, ...] = ()
    heatmap: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """JSON-ready form (without the full score vector)."""
        return {
            "label": self.label,
            "index": self.index,
            "score": self.score,
            "top_k": [_candidate_dict(c) for c in self.top_k],
            "present": [_candidate_dict(c) for c in self.present],
        }


def _is_integer(value: Any) -> bool:
    """An int or a numpy integer (np.int64(2) from an array), not a bool nor a float."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _candidate_dict(candidate: Candidate) -> dict:
    return {"label": candidate.label, "index": candidate.index, "score": candidate.score}


class Engine:
    """Runs an ONNX image classifier on onnxruntime, fed by the shared preprocessing.

    Args:
        path: the .onnx file. Its embedded model card says how to feed it.
        providers: "auto" (CUDA when it really loads, else CPU), "cpu", "cuda",
            "tensorrt", or "openvino" / "openvino-bf16" (the OpenVINO runtime, f32 or its
            reduced-precision bf16; never chosen by auto). An explicit provider that does
            not load is an error.
        device_id: GPU index for cuda/tensorrt.
        threads: onnxruntime intra-op threads (OpenVINO: INFERENCE_NUM_THREADS); None lets
            the runtime choose.
        spinning: let idle threads spin, for at most 20 us, before they sleep (lower
            latency on cores nothing else wants); turn off for live apps so an idle
            engine does not burn CPU between frames, and on a CPU that other programs
            keep busy, where it is faster off (docs/performance.md).
        int8_gemm: run the deep int8 convolutions (256 or more weights per output channel)
            on onnxruntime's int8 GEMM kernels, which use AMX tiles where the CPU has
            them, instead of its direct convolution kernels; an exact rewrite made in
            memory at load (the outputs are bit-identical on a CPU with VNNI or AMX-INT8;
            True elsewhere is a ProviderError; :mod:`cnnport.runtime.int8gemm`).
            None (auto): on the CPU provider of a CPU that reports AMX-INT8, both ways are
            timed at load (batch 1, seven interleaved rounds of at least 10 ms each; the
            load takes 0.2-0.9 s longer) and the GEMM kernels kept only
            when 3% faster (ResNet50 int8: 1.3x at 2 threads; a 96 px convnet: slower at
            2 threads); off elsewhere. ``int8_gemm`` then says what was chosen and
            ``int8_gemm_ms`` the two timings. No effect on a float model.
        labels: class names for an ONNX without a card (or to rename a card's labels).
        input_size: (height, width) for an ONNX without a card whose graph does not
            fix them.
        color: "RGB" or "GRAY" for an ONNX without a card (default: RGB for 3
            channels, GRAY for 1).
        warmup: run one batch at load so the first real call is not slow.
        io_binding: bind inputs and outputs explicitly (default: on for GPU providers).
        max_batch: larger batches are run in chunks of this size to bound memory.

    Raises:
        ModelLoadError: the file is missing, not ONNX, truncated or unsupported.
        ModelMismatchError: the graph does not match its card.
        ProviderError: the requested provider is unknown or did not load.

    Example:
        >>> engine = Engine("model.onnx", providers="cpu", spinning=False)   # doctest: +SKIP
        >>> [p.label for p in engine.predict(["a.png", "b.png"])]            # doctest: +SKIP
        ['cat', 'dog']
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        providers: str = "auto",
        device_id: int = 0,
        threads: int | None = None,
        spinning: bool = True,
        int8_gemm: bool | None = None,
        labels: Sequence[str] | None = None,
        input_size: tuple[int, int] | None = None,
        color: str | None = None,
        warmup: bool = True,
        io_binding: bool | None = None,
        max_batch: int = 64,
    ) -> None:
        started = time.perf_counter()
        self.path = Path(path)
        if not _is_integer(max_batch) or max_batch < 1:
            raise InputError(f"max_batch must be an integer of at least 1; received {max_batch!r}")
        if threads is not None and (not _is_integer(threads) or threads < 0):
            raise InputError(
                f"threads (--threads) must be a whole number of at least 1, or 0 or None for onnxruntime's "
                f"choice; received {threads!r}"
            )
        self.max_batch = int(max_batch)
        threads = None if threads is None or threads == 0 else int(threads)  # 0: onnxruntime's own default
        choice = resolve_providers(providers, device_id)
        if int8_gemm and choice.open is not None:
            raise ProviderError(f"int8_gemm is onnxruntime's; provider {choice.name!r} runs OpenVINO")
        if int8_gemm and choice.required == CPU and not cpu_sums_int8_exactly():
            raise ProviderError(
                "int8_gemm needs a CPU with VNNI or AMX-INT8: without them onnxruntime's int8 GEMM and "
                "direct convolution kernels saturate 16-bit sums differently, so the outputs would change; "
                "this CPU reports neither (leave int8_gemm at None/auto, or --int8-gemm auto|off)"
            )
        # auto: measured below, where it can help (the CPU provider on an AMX CPU, a model
        # with int8 convolutions the rewrite moves)
        measure_gemm = (
            int8_gemm is None
            and choice.open is None
            and choice.required == CPU
            and cpu_has_amx_int8()
            and has_gemm_convolutions(self.path)
        )
        self.int8_gemm = bool(int8_gemm)
        # (plain, GEMM) batch-1 milliseconds where auto measured them, else None
        self.int8_gemm_ms: tuple[float, float] | None = None
        if choice.open is not None:  # not onnxruntime (openvino): spinning is onnxruntime's setting
            self._session = choice.open(self.path, threads)
        else:
            self._session = open_session(
                self.path, choice.providers, threads, spinning, int8_gemm=self.int8_gemm
            )
        # A frame model's session specialized to one frame size (see _session_for).
        self._reopen = None if choice.open is not None else (choice.providers, threads, spinning)
        self._sized: tuple[tuple[int, ...], Any] | None = None
        self._last_size: tuple[int, ...] | None = None
        self._sizing = threading.Lock()  # one thread at a time opens a sized session
        self.providers: tuple[str, ...] = tuple(verify_providers(choice, self._session.get_providers()))
        self.card = _card_for(self._session, self.path, labels, input_size, color)
        self.frame = self.card.frame  # a frame model takes decoded frames of any size
        self._input_name = self.card.graph_input
        self._output_name = self.card.output.name
        graph_outputs = {o.name for o in self._session.get_outputs()}
        maps = self.card.output.class_maps
        self._maps_name = maps if maps in graph_outputs else None
        self._batch_dim = _check_graph(self._session, self.card)
        self._apply_softmax = self.card.output.kind == "logits"
        self.multilabel = self.card.output.head == "multilabel"
        self.threshold = (self.card.output.threshold or 0.5) if self.multilabel else None
        on_gpu = self.providers[0] in (CUDA, TENSORRT)
        if io_binding and choice.open is not None:
            raise ProviderError(f"io_binding is onnxruntime's; provider {choice.name!r} runs OpenVINO")
        self.io_binding = on_gpu if io_binding is None else io_binding
        shape = (
            self.card.input.shape if self.frame is None else (*self.card.input.shape[:2], self.frame.channels)
        )
        sample = np.zeros((1, *shape), self.card.input.dtype if self.frame is None else np.uint8)
        if measure_gemm:
            self._choose_int8_gemm(sample)
        if warmup:
            self.run(sample)
        self.load_seconds = time.perf_counter() - started

    def _choose_int8_gemm(self, sample: np.ndarray) -> None:
        """Times the model at batch 1 as it is and with its int8 convolutions on the GEMM
        kernels, interleaved, and keeps the GEMM session only when it is clearly faster
        (3%): which is faster depends on the model and the thread count (ResNet50 int8
        gains 1.3x at 2 threads, a 96 px convnet loses 13% there and gains 14% at one;
        docs/performance.md). Both give bit-identical outputs. Seven rounds of at least
        10 ms each after 10 calls of warm-up: about 0.25 s for a small model, 0.5 s for
        ResNet50."""
        gemm = open_session(self.path, *self._reopen, int8_gemm=True)
        feed = {self._input_name: sample}
        sessions = (self._session, gemm)
        times: tuple[list[float], list[float]] = ([], [])
        for session in sessions:  # the first calls at 2 threads are slow: the pool wakes
            for _ in range(10):
                session.run(None, feed)
        for _ in range(7):  # interleaved rounds of >= 3 calls and >= 10 ms each
            for session, spent in zip(sessions, times, strict=True):
                start = time.perf_counter()
                for count in itertools.count(1):
                    begin = time.perf_counter()
                    session.run(None, feed)
                    spent.append(time.perf_counter() - begin)
                    if count >= 3 and time.perf_counter() - start >= 0.01:
                        break
        plain_ms, gemm_ms = (float(np.median(t)) * 1e3 for t in times)
        self.int8_gemm_ms = (plain_ms, gemm_ms)
        if gemm_ms < 0.97 * plain_ms:
            self._session, self.int8_gemm = gemm, True
        logger.info("int8 GEMM kernels: %.3f ms vs %.3f ms direct; %s", gemm_ms, plain_ms, self.int8_gemm)

    @property
    def sized_for(self) -> tuple[int, ...] | None:
        """The frame size (N, H, W) a frame model's second, fixed-size session runs, or
        None (see :meth:`_session_for`)."""
        return None if self._sized is None else self._sized[0]

    @property
    def labels(self) -> tuple[str, ...]:
        return self.card.labels

    @property
    def input_spec(self) -> InputSpec:
        return self.card.input

    def __repr__(self) -> str:
        return f"Engine({str(self.path)!r}, providers={list(self.providers)}, classes={len(self.labels)})"

    def preprocess(self, images: ImageLike | Sequence[ImageLike], *, color: str = "BGR") -> np.ndarray:
        """The classifier's input tensor for ``images``, made as the card says (see
        :func:`preprocess`). A frame model makes the same tensor inside its graph."""
        return preprocess(images, self.card.input, self.card.resize, color=color)

    def frames(self, images: ImageLike | Sequence[ImageLike], *, color: str = "BGR") -> list[np.ndarray]:
        """What a frame model is fed: each image decoded, as uint8 (H, W, C) in the model's
        frame channel order (see :func:`to_frame_color`)."""
        if self.frame is None:
            raise InputError(f"{str(self.path)!r} is a tensor model; frames() is for frame models")
        decoded = decode_all(images, color)
        if not decoded:
            raise InputError("received an empty batch; accepted: at least one image")
        return [to_frame_color(image, self.frame.color, color) for image in decoded]

    def predict(
        self,
        images: ImageLike | Sequence[ImageLike],
        *,
        top_k: int = 5,
        color: str = "BGR",
        threshold: float | None = None,
        heatmap: bool = False,
    ) -> Prediction | list[Prediction]:
        """Classifies one image or a batch.

        Args:
            images: a BGR frame (OpenCV's order), an RGB frame with ``color="RGB"``, a
                gray image, a file path, encoded image bytes, a PIL image, or a list /
                (N, H, W, C) array of these.
            top_k: how many best classes each prediction lists.
            color: channel order of array inputs, "BGR" or "RGB".
            threshold: a multi-label model's decision threshold (default: the card's).
            heatmap: also compute where the model looks (``Prediction.heatmap``), from the
                graph's class activation maps.

        Raises:
            InputError: ``heatmap`` on a model without a ``class_maps`` output (the message
                names the heads that have one).

        Returns:
            One :class:`Prediction` for a single image, a list for a batch (a list or
            a 4-D array).
        """
        if isinstance(images, list | tuple) and len(images) > self.max_batch:
            # A long list of paths is decoded chunk by chunk, so memory stays bounded.
            chunks = [images[i : i + self.max_batch] for i in range(0, len(images), self.max_batch)]
            options = {"top_k": top_k, "color": color, "threshold": threshold, "heatmap": heatmap}
            return [p for chunk in chunks for p in self.predict(list(chunk), **options)]
        if heatmap:
            predictions = self._predict_with_heatmaps(images, top_k, color, threshold)
        elif self.frame is not None:
            threshold = self._checked_options(top_k, threshold)
            scores = [self.run(group) for group in _same_size(self.frames(images, color=color))]
            predictions = [self._prediction(row, top_k, threshold) for row in np.concatenate(scores)]
        else:
            batch = self.preprocess(images, color=color)
            predictions = self.predict_tensor(batch, top_k=top_k, threshold=threshold)
        single = not isinstance(images, list | tuple) and not (
            isinstance(images, np.ndarray) and images.ndim == 4
        )
        return predictions[0] if single else predictions

    def predict_tensor(
        self, tensor: np.ndarray, *, top_k: int = 5, threshold: float | None = None
    ) -> list[Prediction]:
        """Predictions for a tensor that is already model input (N, H, W, C)."""
        threshold = self._checked_options(top_k, threshold)
        return [self._prediction(row, top_k, threshold) for row in self.run(tensor)]

    def _checked_options(self, top_k: int, threshold: float | None) -> float | None:
        """Validates ``top_k`` and ``threshold``; returns the threshold to use."""
        if not _is_integer(top_k) or top_k < 1:
            raise InputError(f"top_k must be a positive integer; received {top_k!r}")
        real = isinstance(threshold, numbers.Real) and not isinstance(threshold, bool)
        if threshold is not None and not (real and 0 < threshold < 1):
            raise InputError(f"threshold must be a number between 0 and 1; received {threshold!r}")
        return self.threshold if threshold is None else float(threshold)

    def run(self, tensor: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (N, classes), for a model-input tensor.

        The tensor must be (N, H, W, C) as the card says. Another dtype is cast when
        the cast loses nothing, else refused; NaN and Inf are refused. A frame model takes
        uint8 frames (N, H, W, C) of any size in its frame color, nothing else.
        """
        tensor = self._checked(tensor)
        chunk = self._batch_dim or self.max_batch
        if len(tensor) <= chunk:
            return self._run(tensor)
        return np.concatenate([self._run(tensor[i : i + chunk]) for i in range(0, len(tensor), chunk)])

    @property
    def has_class_maps(self) -> bool:
        """Whether the graph gives class activation maps (heatmaps)."""
        return self._maps_name is not None

    def require_class_maps(self, purpose: str = "a heatmap") -> None:
        """Raises an InputError naming the heads that have maps when the graph has none."""
        if self._maps_name is not None:
            return
        note = self.card.output.class_maps_note or "it was exported without one"
        raise InputError(
            f"{purpose} needs a model with a class_maps output; {str(self.path)!r} has none ({note}); "
            f"models whose classifier is {CAM_HEADS} get one from `cnnport export` (without --no-cam)"
        )

    def run_with_maps(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities (N, classes) and class activation maps (N, h, w, classes).

        Raises:
            InputError: the model has no ``class_maps`` output.
        """
        self.require_class_maps()
        tensor = self._checked(tensor)
        probabilities, maps = [], []
        for start in range(0, len(tensor), self.max_batch):
            chunk = tensor[start : start + self.max_batch]
            session = self._session_for(chunk)
            out = session.run([self._output_name, self._maps_name], {self._input_name: chunk})
            scores = out[0].astype(np.float32, copy=False)
            probabilities.append(softmax(scores) if self._apply_softmax else scores)
            maps.append(out[1].astype(np.float32, copy=False))
        return np.concatenate(probabilities), np.concatenate(maps)

    def _checked(self, tensor: np.ndarray) -> np.ndarray:
        if self.frame is None:
            return check_tensor(tensor, self.card.input)
        return check_frames(tensor, self.frame)

    def _predict_with_heatmaps(self, images, top_k: int, color: str, threshold: float | None) -> list:
        threshold = self._checked_options(top_k, threshold)
        frames = decode_all(images, color)
        if self.frame is None:
            probabilities, maps = self.run_with_maps(self.preprocess(frames, color=color))
        else:
            frames = self.frames(frames, color=color)
            parts = [self.run_with_maps(group) for group in _same_size(frames)]
            probabilities, maps = (np.concatenate(p) for p in zip(*parts, strict=True))
        predictions = []
        for frame, scores, class_maps in zip(frames, probabilities, maps, strict=True):
            prediction = self._prediction(scores, top_k, threshold)
            heat = heatmap_for(
                class_maps[..., prediction.index], frame.shape[:2], self.card.input, self.card.resize
            )
            predictions.append(replace(prediction, heatmap=heat))
        return predictions

    def _session_for(self, tensor: np.ndarray) -> Any:
        """The session to run ``tensor`` on. A frame model takes frames of any size, so its
        graph computes its resize tables from the frame's shape on every call; when the
        same (N, H, W) comes twice in a row (a camera), a second session is opened with
        those dimensions fixed, onnxruntime folds the tables at load, and frames of that
        size run on it (about 50 us less per call; docs/frame-models.md#measured). Other sizes keep the
        general session; one size is kept at a time. Safe to call from several threads (an app
        serving several cameras): a call never runs on a session fixed to another size."""
        reopen = self._reopen
        if self.frame is None or reopen is None:
            return self._session
        size = tensor.shape[:3]
        # Read once: another thread's call may swap in a session for its own size.
        sized = self._sized
        if sized is not None and sized[0] == size:
            self._last_size = size
            return sized[1]
        with self._sizing:
            sized = self._sized  # another thread may have opened it while this one waited
            if sized is not None and sized[0] == size:
                return sized[1]
            again, self._last_size = size == self._last_size, size
            if not again:
                return self._session
            names = self._session.get_inputs()[0].shape[:3]
            fixed = {n: v for n, v in zip(names, size, strict=True) if isinstance(n, str)}
            if not fixed:
                return self._session
            try:
                session = open_session(self.path, *reopen, fixed=fixed, int8_gemm=self.int8_gemm)
            except CnnportError as exc:  # the general session still runs it
                logger.debug("no session for frames of %s: %s", size, exc)
                self._reopen = None
                return self._session
            self._sized = (size, session)
            return session

    def _run(self, tensor: np.ndarray) -> np.ndarray:
        if self._batch_dim and len(tensor) != self._batch_dim:
            pad = np.zeros((self._batch_dim - len(tensor), *tensor.shape[1:]), tensor.dtype)
            return self._run(np.concatenate([tensor, pad]))[: len(tensor)]
        session = self._session_for(tensor)
        if self.io_binding:
            binding = session.io_binding()
            binding.bind_cpu_input(self._input_name, np.ascontiguousarray(tensor))
            binding.bind_output(self._output_name, "cpu")
            session.run_with_iobinding(binding)
            out = binding.copy_outputs_to_cpu()[0]
        else:
            out = session.run([self._output_name], {self._input_name: tensor})[0]
        out = out.astype(np.float32, copy=False)
        return softmax(out) if self._apply_softmax else out

    def _prediction(self, scores: np.ndarray, top_k: int, threshold: float | None) -> Prediction:
        order = np.argsort(-scores, kind="stable")
        top = tuple(
            Candidate(self.labels[i], int(i), float(scores[i])) for i in order[: min(top_k, len(scores))]
        )
        if self.multilabel:
            present = tuple(
                Candidate(self.labels[i], int(i), float(scores[i])) for i in order if scores[i] >= threshold
            )
        else:
            present = top[:1]
        return Prediction(top[0].label, top[0].index, top[0].score, top, scores, present)


def _same_size(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Consecutive frames of one size stacked into a batch (a frame model's batch holds
    frames of one size), in order."""
    groups: list[list[np.ndarray]] = []
    for frame in frames:
        if groups and groups[-1][0].shape == frame.shape:
            groups[-1].append(frame)
        else:
            groups.append([frame])
    # One frame is a view with a batch axis, not a copy (a live app's every call).
    return [group[0][None] if len(group) == 1 else np.stack(group) for group in groups]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (the Engine's, for cards whose output is logits)."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _card_for(
    session: ort.InferenceSession,
    path: Path,
    labels: Sequence[str] | None,
    input_size: tuple[int, int] | None,
    color: str | None,
) -> ModelCard:
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if text is None:
        return _card_from_graph(session, path, labels, input_size, color)
    card = ModelCard.from_json(text)
    if input_size is not None or color is not None:
        raise InputError(
            f"{str(path)!r} carries a model card, which sets the input size and color; "
            "input_size and color are only accepted for an ONNX without a card"
        )
    if labels is not None:
        if len(labels) != len(card.labels):
            raise ModelMismatchError(
                f"labels has {len(labels)} names but the model has {len(card.labels)} classes"
            )
        card = replace(card, labels=tuple(labels))
    return card


def _card_from_graph(
    session: ort.InferenceSession,
    path: Path,
    labels: Sequence[str] | None,
    input_size: tuple[int, int] | None,
    color: str | None,
) -> ModelCard:
    """A card for an ONNX made elsewhere: input spec from the graph, labels from the caller."""
    graph_input, graph_output = session.get_inputs()[0], session.get_outputs()[0]
    shape = graph_input.shape
    if len(shape) != 4:
        raise ModelMismatchError(
            f"{str(path)!r} has no model card and its input {graph_input.name!r} has shape {shape}; "
            "accepted: an NHWC image input (batch, height, width, channels)"
        )
    height, width, channels = (d if isinstance(d, int) else None for d in shape[1:])
    if input_size is not None:
        height, width = input_size
    if height is None or width is None or channels not in (1, 3):
        raise ModelMismatchError(
            f"{str(path)!r} has no model card and its input shape {shape} does not fix the image "
            "size as NHWC with 1 or 3 channels; pass input_size=(height, width) (cnnport: --input-size)"
        )
    dtype = _ORT_DTYPES.get(graph_input.type)
    if dtype is None:
        raise ModelMismatchError(
            f"{str(path)!r} input {graph_input.name!r} is {graph_input.type}; accepted: uint8 or float32"
        )
    classes = graph_output.shape[-1]
    if labels is None:
        if not isinstance(classes, int):
            raise ModelMismatchError(f"{str(path)!r} has no card and no fixed class count; pass labels")
        labels = [f"class_{i}" for i in range(classes)]
        logger.warning(
            "%s has no model card and no labels were given; using class_0..class_%d", path, classes - 1
        )
    spec = InputSpec(
        height=height,
        width=width,
        channels=channels,
        color=color or ("GRAY" if channels == 1 else "RGB"),
        dtype=dtype,
        name=graph_input.name,
    )
    return ModelCard(labels=tuple(labels), input=spec, output=OutputSpec(name=graph_output.name))


def _check_frame_input(inputs: dict, card: ModelCard) -> list:
    """A frame model's graph input: uint8 (N, H, W, C) with C as the frame color says."""
    frame = card.frame
    if frame.name not in inputs:
        raise ModelMismatchError(
            f"the card names frame input {frame.name!r} but the graph has {sorted(inputs)}"
        )
    graph_input = inputs[frame.name]
    shape = graph_input.shape
    if graph_input.type != "tensor(uint8)" or len(shape) != 4 or shape[3] not in (frame.channels, None):
        raise ModelMismatchError(
            f"the card says frames (N, H, W, {frame.channels}) uint8 in {frame.color} order but the graph's "
            f"{frame.name!r} is {shape} {graph_input.type}"
        )
    return shape


def _check_graph(session: ort.InferenceSession, card: ModelCard) -> int | None:
    """Checks the graph against the card; returns the batch size if the graph fixes it."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    if card.frame is not None:
        shape = _check_frame_input(inputs, card)
        _check_outputs(outputs, card)
        return shape[0] if isinstance(shape[0], int) else None
    spec = card.input
    if spec.name not in inputs:
        raise ModelMismatchError(f"the card names input {spec.name!r} but the graph has {sorted(inputs)}")
    graph_input = inputs[spec.name]
    if _ORT_DTYPES.get(graph_input.type) != spec.dtype:
        raise ModelMismatchError(
            f"the card says input dtype {spec.dtype} but the graph takes {graph_input.type}"
        )
    shape = graph_input.shape
    fixed = [d if isinstance(d, int) else None for d in shape[1:]] if len(shape) == 4 else None
    if fixed is None or any(d not in (None, want) for d, want in zip(fixed, spec.shape, strict=True)):
        raise ModelMismatchError(
            f"the card says input (N, {spec.height}, {spec.width}, {spec.channels}) but the graph's "
            f"{spec.name!r} is {shape}"
        )
    _check_outputs(outputs, card)
    return shape[0] if isinstance(shape[0], int) else None


def _check_outputs(outputs: dict, card: ModelCard) -> None:
    if card.output.name not in outputs:
        raise ModelMismatchError(
            f"the card names output {card.output.name!r} but the graph has {sorted(outputs)}"
        )
    classes = outputs[card.output.name].shape[-1]
    if isinstance(classes, int) and classes != card.num_classes:
        raise ModelMismatchError(
            f"the card lists {card.num_classes} labels but output {card.output.name!r} has {classes} classes"
        )
