// The model card, as runtime/card.py defines it (schema versions 1 to 3).
//
// Validated enough that a wrong or foreign card fails at load with a message naming the
// field, what it holds and what is accepted, rather than later as a wrong answer. The
// defaults are Python's: a version 1 card (no output.head) is a softmax head, a version
// 2 card (no frame) is a tensor model.

import { CardError } from "./errors.js";

export const METADATA_KEY = "cnnport.card";
export const SCHEMA_VERSION = 3;
export const READABLE_VERSIONS = [1, 2, 3];
export const COLORS = ["RGB", "GRAY"];
export const FRAME_COLORS = ["BGR", "RGB", "RGBA", "BGRA", "GRAY"];
export const FRAME_CHANNELS = { BGR: 3, RGB: 3, RGBA: 4, BGRA: 4, GRAY: 1 };
const DTYPES = ["uint8", "float32"];
const RESIZE_MODES = ["stretch", "center_crop"];
const INTERPOLATIONS = ["nearest", "linear", "area", "cubic", "lanczos"];
const OUTPUT_KINDS = ["probabilities", "logits"];
const HEAD_KINDS = ["softmax", "binary", "multilabel"];


const show = (value) => (value === undefined ? "nothing" : JSON.stringify(value));

function fail(path, value, accepted) {
  return new CardError(`model card field '${path}' is invalid: accepted ${accepted}, received ${show(value)}`);
}

function object(path, value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw fail(path, value, "a JSON object");
  }
  return value;
}

function choice(path, value, options) {
  if (!options.includes(value)) throw fail(path, value, `one of ${options.join(", ")}`);
  return value;
}

function positiveInt(path, value) {
  if (!Number.isInteger(value) || value <= 0) throw fail(path, value, "a positive integer");
  return value;
}

function text(path, value, optional = false) {
  if (optional && (value === null || value === undefined)) return null;
  if (typeof value !== "string" || value === "") {
    throw fail(path, value, `a non-empty string${optional ? " or null" : ""}`);
  }
  return value;
}

function inputSpec(data) {
  const d = object("input", data);
  for (const key of ["height", "width"]) {
    if (!(key in d)) throw new CardError(`model card field 'input' is missing ${key}`);
  }
  const spec = {
    name: text("input.name", d.name ?? "image"),
    layout: choice("input.layout", d.layout ?? "NHWC", ["NHWC"]),
    height: positiveInt("input.height", d.height),
    width: positiveInt("input.width", d.width),
    channels: d.channels ?? 3,
    color: choice("input.color", d.color ?? "RGB", COLORS),
    dtype: choice("input.dtype", d.dtype ?? "uint8", DTYPES),
    value_range: d.value_range ?? [0, 255],
  };
  const expected = spec.color === "GRAY" ? 1 : 3;
  if (spec.channels !== expected) throw fail("input.channels", spec.channels, `${expected} for color ${spec.color}`);
  return spec;
}

function resizeSpec(data) {
  const d = object("resize", data ?? {});
  return {
    mode: choice("resize.mode", d.mode ?? "stretch", RESIZE_MODES),
    interpolation: choice("resize.interpolation", d.interpolation ?? "linear", INTERPOLATIONS),
  };
}

function outputSpec(data) {
  const d = object("output", data ?? {});
  const spec = {
    name: text("output.name", d.name ?? "probabilities"),
    kind: choice("output.kind", d.kind ?? "probabilities", OUTPUT_KINDS),
    logits_name: text("output.logits_name", d.logits_name, true),
    head: choice("output.head", d.head ?? "softmax", HEAD_KINDS),
    threshold: d.threshold ?? null,
    class_maps: text("output.class_maps", d.class_maps, true),
    class_maps_note: text("output.class_maps_note", d.class_maps_note, true),
  };
  const t = spec.threshold;
  if (t !== null && !(typeof t === "number" && t > 0 && t < 1)) {
    throw fail("output.threshold", t, "a number between 0 and 1 (exclusive) or null");
  }
  if (spec.head === "multilabel" && spec.kind === "logits") {
    throw fail("output.kind", spec.kind, "probabilities for a multilabel head");
  }
  return spec;
}

function frameSpec(data) {
  if (data === null || data === undefined) return null;
  const d = object("frame", data);
  return {
    name: text("frame.name", d.name ?? "frame"),
    color: choice("frame.color", d.color ?? "BGR", FRAME_COLORS),
    layout: choice("frame.layout", d.layout ?? "NHWC", ["NHWC"]),
    dtype: choice("frame.dtype", d.dtype ?? "uint8", ["uint8"]),
  };
}

function labelList(value) {
  if (!Array.isArray(value)) throw fail("labels", value, "a list of class names");
  if (value.length < 2) throw fail("labels", value, "at least two class names");
  value.forEach((label, i) => text(`labels[${i}]`, label));
  const repeated = [...new Set(value.filter((x, i) => value.indexOf(x) !== i))].sort();
  if (repeated.length) throw fail("labels", value, `unique names (repeated: ${repeated.join(", ")})`);
  return [...value];
}

/**
 * A validated card with Python's defaults filled in; the fields this module does not use
 * (provenance, parity, variant) are kept as they were.
 *
 * @param {object|string} data the card as parsed JSON, or its JSON text
 * @returns {object}
 * @throws {CardError} naming the field that is wrong
 */
export function parseCard(data) {
  if (typeof data === "string") {
    try {
      data = JSON.parse(data);
    } catch (error) {
      throw new CardError(`model card is not valid JSON: ${error.message}`);
    }
  }
  const d = object("card", data);
  const version = d.schema_version;
  if (Number.isInteger(version) && version > SCHEMA_VERSION) {
    throw new CardError(
      `model card schema version ${version} is newer than this module reads (up to ${SCHEMA_VERSION}); upgrade cnnport's js module`,
    );
  }
  for (const required of ["labels", "input", "schema_version"]) {
    if (!(required in d)) throw new CardError(`model card is missing the required field '${required}'`);
  }
  if (!READABLE_VERSIONS.includes(version)) throw fail("schema_version", version, READABLE_VERSIONS.join(" or "));
  return {
    ...d,
    schema_version: version,
    labels: labelList(d.labels),
    input: inputSpec(d.input),
    resize: resizeSpec(d.resize),
    output: outputSpec(d.output),
    frame: frameSpec(d.frame),
  };
}

/** The name of the tensor the graph is fed: the frame for a frame model. */
export function graphInput(card) {
  return card.frame ? card.frame.name : card.input.name;
}
