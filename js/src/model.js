// loadModel and Model: a cnnport .onnx and its card on the caller's onnxruntime.
//
// The `ort` namespace comes from the caller (onnxruntime-node or onnxruntime-web), so the
// same code runs in Node.js and in a page. The semantics are those of Python's Engine
// (runtime/engine.py): softmax of the output when the card says it holds logits, top-k
// by a stable sort (ties: the lower index first), `present` as the head says, heatmaps as
// runtime/heatmap.py.

import { METADATA_KEY, parseCard, graphInput, FRAME_CHANNELS } from "./card.js";
import { CardError, InputError, ModelLoadError } from "./errors.js";
import { convertFrame, normalizeFrame } from "./frame.js";
import { heatmapFor } from "./heatmap.js";
import { frameFromImage } from "./image.js";
import { readMetadataProps } from "./protobuf.js";
import { readSource, sidecarOf } from "./source.js";

/**
 * Loads a cnnport model with its card.
 *
 * @param {Uint8Array|ArrayBuffer|string} source the .onnx bytes, a URL (fetched), or a
 *   file path (Node.js)
 * @param {object} options
 * @param {object} options.ort the onnxruntime namespace: `import * as ort from "onnxruntime-node"`
 *   or `"onnxruntime-web"`
 * @param {object} [options.sessionOptions] passed to ort.InferenceSession.create
 * @param {object|string} [options.card] the card, overriding what the file carries
 * @returns {Promise<Model>}
 *
 * @example
 * import * as ort from "onnxruntime-node";
 * const model = await loadModel("digits.frame-rgba.onnx", { ort });
 * const p = await model.classify({ data, width: 640, height: 480, format: "RGBA" });
 */
export async function loadModel(source, options = {}) {
  const { ort, sessionOptions = {} } = options;
  if (!ort || typeof ort.InferenceSession?.create !== "function" || typeof ort.Tensor !== "function") {
    throw new InputError(
      'loadModel needs the onnxruntime namespace as options.ort: import * as ort from "onnxruntime-node" (or "onnxruntime-web")',
    );
  }
  const bytes = await readSource(source);
  if (bytes.byteLength === 0) throw new ModelLoadError(`${describe(source)} is empty (0 bytes): not an ONNX model`);
  const card = await cardFor(bytes, source, options.card);
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, sessionOptions);
  } catch (error) {
    throw new ModelLoadError(`onnxruntime cannot load ${describe(source)}: ${error.message ?? error}`, {
      cause: error,
    });
  }
  try {
    checkGraph(session, card);
  } catch (error) {
    await session.release?.();
    throw error;
  }
  return new Model(ort, session, card, { bytes, sessionOptions });
}

function describe(source) {
  return typeof source === "string" ? `'${source}'` : `the model's bytes (${source.byteLength} bytes)`;
}

async function cardFor(bytes, source, given) {
  if (given !== undefined) return parseCard(given);
  let props = {};
  let unreadable = null;
  try {
    props = readMetadataProps(bytes);
  } catch (error) {
    unreadable = error; // an .ort file (a FlatBuffer, not ONNX protobuf) carries its card beside it
  }
  if (props[METADATA_KEY] !== undefined) return parseCard(props[METADATA_KEY]);
  const sidecar = sidecarOf(source);
  if (sidecar !== null) {
    const text = await readSource(sidecar, { text: true, missingOk: true });
    if (text !== null) return parseCard(text);
  }
  if (unreadable !== null) {
    throw new ModelLoadError(
      `${describe(source)} is not an ONNX model: ${unreadable.message}` +
        (sidecar ? ` (and no '${sidecar}' beside it, the card an .ort file needs)` : ""),
      { cause: unreadable },
    );
  }
  throw new CardError(
    `${describe(source)} carries no model card: no '${METADATA_KEY}' in its metadata_props` +
      (sidecar ? ` and no '${sidecar}' beside it` : "") +
      "; export it with `cnnport export`, or pass options.card",
  );
}

function checkGraph(session, card) {
  const input = graphInput(card);
  if (!session.inputNames.includes(input)) {
    throw new ModelLoadError(
      `the card names input '${input}' but the graph takes ${JSON.stringify(session.inputNames)}` +
        (card.frame ? "" : " (a tensor model's card; is this a frame model with a card without 'frame'?)"),
    );
  }
  if (!session.outputNames.includes(card.output.name)) {
    throw new ModelLoadError(
      `the card names output '${card.output.name}' but the graph has ${JSON.stringify(session.outputNames)}`,
    );
  }
}

/**
 * A loaded model: its card, and classify(). Made by {@link loadModel}.
 *
 * A frame model takes frames of any size, so its graph computes its resize tables from
 * the frame's shape on every run. On onnxruntime-web, when frames of one size come twice
 * in a row (a camera), a second session is opened with that size fixed
 * (freeDimensionOverrides), onnxruntime folds the tables at load, and frames of that size
 * run on it, as Python's Engine does; `sizedFor` names that size ("1x480x640"). Other
 * sizes keep the first session; one size is kept at a time. Runs are queued, one at a
 * time (see run), so a session being replaced is released at once. The model's bytes
 * stay in memory for it.
 * onnxruntime-node 1.30 does not take freeDimensionOverrides (its binding reads no such
 * option), and a proxied onnxruntime-web (env.wasm.proxy) hands the model's buffer to its
 * worker: on both, every frame runs on the first session.
 */
export class Model {
  #reopen;
  #sized = null; // {size, session}
  #lastSize = null;
  #released = false;
  #queue = Promise.resolve();

  constructor(ort, session, card, reopen = null) {
    this.ort = ort;
    this.session = session;
    this.card = card;
    this.#reopen = card.frame !== null && fixesDimensions(ort) ? reopen : null;
    this.labels = card.labels;
    this.isFrameModel = card.frame !== null;
    this.frameColor = card.frame ? card.frame.color : null;
    this.inputName = graphInput(card);
    this.multilabel = card.output.head === "multilabel";
    this.threshold = this.multilabel ? (card.output.threshold ?? 0.5) : null;
    const maps = card.output.class_maps;
    this.hasClassMaps = maps !== null && session.outputNames.includes(maps);
  }

  /**
   * Classifies one frame.
   *
   * @param {object} frame {data: Uint8Array|Uint8ClampedArray, width, height, format}
   *   (format BGR, RGB, RGBA, BGRA or GRAY), or an ImageData (RGBA)
   * @param {object} [options] {topK = 5, heatmap = false, threshold}
   * @returns {Promise<object>} {label, index, score, topK, present, probabilities, heatmap}
   */
  async classify(frame, options = {}) {
    const { topK = 5, heatmap = false } = options;
    const threshold = this.#checkedOptions(topK, options.threshold, heatmap);
    const f = normalizeFrame(frame);
    const { data, dims } = this.#feed(f);
    const out = await this.run(data, dims, { classMaps: heatmap });
    const prediction = this.#prediction(out.probabilities, topK, threshold);
    if (heatmap) {
      const { data: maps, dims: mapDims } = out.classMaps;
      prediction.heatmap = heatmapFor(maps, mapDims.slice(1), prediction.index, f.height, f.width, this.card.input, this.card.resize);
    }
    return prediction;
  }

  /**
   * Classifies an <img>, <video>, <canvas>, ImageBitmap or VideoFrame (browser): drawn
   * at its natural size, the graph resizes it (see frameFromImage).
   */
  classifyImage(source, options) {
    return this.classify(frameFromImage(source), options);
  }

  /**
   * Runs a batch that is already what the graph takes: for a frame model uint8 frames
   * (N, H, W, C) in the model's frame color, for a tensor model the card's input tensor.
   *
   * @param {Uint8Array|Float32Array} data the batch, row-major
   * @param {number[]} dims [N, H, W, C]
   * @param {object} [options] {classMaps: also return the class_maps output}
   * @returns {Promise<{probabilities: Float32Array, classes: number, classMaps: null | {data, dims}}>}
   *   probabilities: N x classes, softmax already taken where the output holds logits
   */
  async run(data, dims, { classMaps = false } = {}) {
    if (classMaps && !this.hasClassMaps) this.#checkedOptions(1, undefined, true); // the error naming the heads
    const dtype = this.isFrameModel ? "uint8" : this.card.input.dtype;
    const tensor = new this.ort.Tensor(dtype, data, dims);
    const name = this.card.output.name;
    const fetches = classMaps ? [name, this.card.output.class_maps] : [name];
    // One run at a time on a model: onnxruntime-web's sessions (WebGPU's above all) must not
    // run while another run, or a session being opened, is on the same module; a page's file
    // coming in during the camera's frame hung WebGPU for good. Callers' runs queue here.
    // Checked when called: a run asked for before release() still runs (release waits for it).
    if (this.#released) throw new ModelLoadError("the model was released (model.release()); load it again with loadModel");
    const results = await this.#exclusive(async () => {
      const session = await this.#sessionFor(dims);
      return session.run({ [this.inputName]: tensor }, fetches);
    });
    const probabilities = this.#probabilities(results[name], dims[0]);
    let maps = null;
    if (classMaps) {
      const out = results[this.card.output.class_maps];
      maps = { data: out.data instanceof Float32Array ? out.data : Float32Array.from(out.data), dims: [...out.dims] };
    }
    for (const t of Object.values(results)) if (!classMaps || t !== results[this.card.output.class_maps]) t.dispose?.();
    return { probabilities, classes: this.labels.length, classMaps: maps };
  }

  /** The frame size ("NxHxW") the second, fixed-size session runs, or null. */
  get sizedFor() {
    return this.#sized ? this.#sized.size : null;
  }

  /** Frees the onnxruntime sessions once the runs asked for before it are done. */
  async release() {
    this.#released = true;
    await this.#queue; // the runs already queued end first; later calls say the model is released
    const sized = this.#sized;
    this.#sized = null;
    if (sized !== null) await sized.session.release?.();
    await this.session.release?.();
  }

  #exclusive(work) {
    const turn = this.#queue.then(work); // #queue never rejects: a failed run does not block the next
    this.#queue = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  }

  // The session a run of `dims` goes to. Called inside #exclusive: no other run is on
  // either session while this one opens or replaces the fixed-size one.
  async #sessionFor(dims) {
    if (this.#reopen === null) return this.session;
    const size = dims.slice(0, 3).join("x");
    const again = size === this.#lastSize;
    this.#lastSize = size;
    if (this.#sized !== null && this.#sized.size === size) return this.#sized.session;
    if (!again) return this.session;
    const { bytes, sessionOptions } = this.#reopen;
    const [batch, height, width] = dims;
    // The names cnnport's frame models give the frame's dimensions (export/frame.py).
    const freeDimensionOverrides = { ...(sessionOptions.freeDimensionOverrides ?? {}), batch, height, width };
    let session;
    try {
      session = await this.ort.InferenceSession.create(bytes, { ...sessionOptions, freeDimensionOverrides });
    } catch (error) {
      // The first session still runs every size; do not try again.
      console.warn(`cnnport: no fixed-size session for ${size} frames (${error.message ?? error}); the first one runs them`);
      this.#reopen = null;
      return this.session;
    }
    const old = this.#sized;
    this.#sized = { size, session };
    if (old !== null) await old.session.release?.();
    return session;
  }

  #checkedOptions(topK, threshold, heatmap) {
    if (!Number.isInteger(topK) || topK < 1) throw new InputError(`topK must be a positive integer; received ${topK}`);
    if (threshold !== undefined && threshold !== null && !(typeof threshold === "number" && threshold > 0 && threshold < 1)) {
      throw new InputError(`threshold must be a number between 0 and 1; received ${threshold}`);
    }
    if (heatmap && !this.hasClassMaps) {
      const note = this.card.output.class_maps_note ?? "it was exported without one";
      throw new InputError(
        `a heatmap needs a model with a class_maps output; this model has none (${note}); models whose ` +
          "classifier is global average pooling followed by a Dense layer get one from `cnnport export`",
      );
    }
    return threshold ?? this.threshold;
  }

  #feed(frame) {
    const { width, height, format } = frame;
    if (this.isFrameModel) {
      const data = convertFrame(frame.data, width, height, format, this.frameColor);
      return { data, dims: [1, height, width, FRAME_CHANNELS[this.frameColor]] };
    }
    const input = this.card.input;
    if (width !== input.width || height !== input.height || format !== input.color) {
      throw new InputError(
        `this is a tensor model: it takes ${input.width} x ${input.height} ${input.color} frames only ` +
          `(received ${width} x ${height} ${format}); resizing belongs in the graph: export a frame model ` +
          `(cnnport export --frame ${format}) and load that`,
      );
    }
    const data = input.dtype === "float32" ? Float32Array.from(frame.data) : frame.data;
    return { data, dims: [1, height, width, input.channels] };
  }

  #probabilities(output, batch) {
    const classes = this.labels.length;
    const values = output.data;
    if (values.length !== batch * classes) {
      throw new ModelLoadError(
        `output '${this.card.output.name}' has ${values.length / batch} values per frame; the card lists ${classes} labels`,
      );
    }
    const scores = Float32Array.from(values);
    if (this.card.output.kind === "logits") for (let i = 0; i < batch; i++) softmax(scores.subarray(i * classes, (i + 1) * classes));
    return scores;
  }

  #prediction(scores, topK, threshold) {
    const order = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a]); // stable
    const candidate = (i) => ({ label: this.labels[i], index: i, score: scores[i] });
    const top = order.slice(0, Math.min(topK, scores.length)).map(candidate);
    const present = this.multilabel ? order.filter((i) => scores[i] >= threshold).map(candidate) : top.slice(0, 1);
    return { label: top[0].label, index: top[0].index, score: top[0].score, topK: top, present, probabilities: scores, heatmap: null };
  }
}

// onnxruntime-web takes freeDimensionOverrides; onnxruntime-node 1.30 ignores it, and a
// proxied onnxruntime-web transfers the model's buffer to its worker (see Model).
function fixesDimensions(ort) {
  return Boolean(ort.env?.versions?.web) && !ort.env?.wasm?.proxy;
}

// In place, in float64 then rounded to float32 (Python's is float32 throughout: the two
// differ by about 1e-7).
function softmax(row) {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  const exps = Array.from(row, (v) => {
    const e = Math.exp(v - max);
    sum += e;
    return e;
  });
  for (let i = 0; i < row.length; i++) row[i] = exps[i] / sum;
}
