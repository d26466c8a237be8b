// Backend-free parts: the protobuf reader, card validation, frame checks, the crop window
// and the bilinear resize, the browser image helper (with a stand-in canvas).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import {
  CardError,
  InputError,
  METADATA_KEY,
  ProtobufError,
  cropWindow,
  frameFromImage,
  normalizeFrame,
  parseCard,
  readMetadataProps,
  resizeLinear,
} from "../src/index.js";
import { roundHalfEven } from "../src/frame.js";
import { sidecarOf } from "../src/source.js";
import { COMMITTED } from "./cases.js";

const model = new Uint8Array(readFileSync(join(COMMITTED, "digits.frame-rgba.onnx")));
const card = JSON.parse(readMetadataProps(model)[METADATA_KEY]);

test("metadata_props: the embedded card, read without decoding the graph", () => {
  assert.equal(card.schema_version, 3);
  assert.deepEqual(card.frame, { color: "RGBA", dtype: "uint8", layout: "NHWC", name: "frame" });
  const sidecar = JSON.parse(readFileSync(join(COMMITTED, "digits-nocard.frame-bgr.card.json"), "utf-8"));
  assert.deepEqual(card.labels, sidecar.labels);
  assert.equal(readMetadataProps(new Uint8Array(readFileSync(join(COMMITTED, "digits-nocard.frame-bgr.onnx"))))[METADATA_KEY], undefined);
  assert.throws(() => readMetadataProps(model.subarray(0, model.length - 7)), ProtobufError);
  assert.throws(() => readMetadataProps(new TextEncoder().encode("<html>not a model</html>")), ProtobufError);
});

test("parseCard: defaults of older schemas, and errors that name the field", () => {
  const v1 = parseCard({ schema_version: 1, labels: ["a", "b"], input: { height: 8, width: 8 } });
  assert.equal(v1.output.head, "softmax");
  assert.equal(v1.frame, null);
  assert.equal(v1.resize.interpolation, "linear");
  const bad = (patch) => () => parseCard({ ...card, ...patch });
  assert.throws(bad({ schema_version: 4 }), /schema version 4 is newer than this module reads \(up to 3\)/);
  assert.throws(bad({ schema_version: 0 }), /'schema_version' is invalid: accepted 1 or 2 or 3, received 0/);
  assert.throws(bad({ labels: ["a", "a"] }), /'labels' is invalid: accepted unique names \(repeated: a\)/);
  assert.throws(bad({ labels: ["a"] }), /at least two class names/);
  assert.throws(bad({ input: { ...card.input, channels: 3 } }), /'input.channels' is invalid: accepted 1 for color GRAY, received 3/);
  assert.throws(bad({ frame: { ...card.frame, color: "ARGB" } }), /'frame.color' is invalid: accepted one of BGR, RGB, RGBA, BGRA, GRAY/);
  assert.throws(bad({ output: { ...card.output, threshold: 1.5 } }), /'output.threshold'/);
  assert.throws(() => parseCard("{not json"), (e) => e instanceof CardError && /not valid JSON/.test(e.message));
  const { input, ...noInput } = card;
  assert.ok(input);
  assert.throws(() => parseCard(noInput), /missing the required field 'input'/);
});

test("frames: ImageData is RGBA; sizes and lengths are checked", () => {
  const image = { data: new Uint8ClampedArray(2 * 3 * 4), width: 2, height: 3, colorSpace: "srgb" };
  assert.equal(normalizeFrame(image).format, "RGBA");
  assert.ok(normalizeFrame(image).data instanceof Uint8Array);
  assert.throws(() => normalizeFrame({ data: new Float32Array(6), width: 2, height: 1, format: "BGR" }), /Uint8Array or Uint8ClampedArray/);
  assert.throws(() => normalizeFrame({ data: new Uint8Array(6), width: 0, height: 1, format: "BGR" }), InputError);
  assert.throws(() => normalizeFrame(null), /a frame must be/);
});

test("cropWindow and rounding: Python's crop_window and round()", () => {
  const input = { height: 16, width: 16 };
  assert.deepEqual(cropWindow(480, 640, input, { mode: "center_crop" }), { top: 0, left: 80, height: 480, width: 480 });
  assert.deepEqual(cropWindow(640, 480, input, { mode: "center_crop" }), { top: 80, left: 0, height: 480, width: 480 });
  assert.deepEqual(cropWindow(480, 640, input, { mode: "stretch" }), { top: 0, left: 0, height: 480, width: 640 });
  // 3 x 5 frame, 2 x 4 input: scale min(1.5, 1.25) = 1.25 -> round(2.5) = 2 (half to even), 5
  assert.deepEqual(cropWindow(3, 5, { height: 2, width: 4 }, { mode: "center_crop" }), { top: 0, left: 0, height: 2, width: 5 });
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, 2.4].map(roundHalfEven), [0, 2, 2, -0, 2]);
});

test("resizeLinear: OpenCV's INTER_LINEAR sampling on a 2 x 2 map", () => {
  // cv2.resize(np.float32([[0, 1], [2, 3]]), (4, 4), interpolation=cv2.INTER_LINEAR)
  const expected = [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3];
  assert.deepEqual(Array.from(resizeLinear(new Float32Array([0, 1, 2, 3]), 2, 2, 4, 4)), expected);
});

test("sidecarOf: STEM.card.json beside the model (paths and URLs)", () => {
  assert.equal(sidecarOf("models/digits.frame-rgba.onnx"), "models/digits.frame-rgba.card.json");
  assert.equal(sidecarOf("models/digits.frame-rgba.ort"), "models/digits.frame-rgba.card.json");
  assert.equal(sidecarOf("https://x.test/m/digits.onnx?v=2"), "https://x.test/m/digits.card.json?v=2");
  assert.equal(sidecarOf(new Uint8Array(1)), null);
});

test("frameFromImage: drawn at natural size, never resized by the canvas", () => {
  const drawn = [];
  globalThis.OffscreenCanvas = class {
    constructor(width, height) {
      Object.assign(this, { width, height });
    }
    getContext() {
      const canvas = this;
      return {
        drawImage: (source, x, y, ...rest) => drawn.push({ source, x, y, rest, size: [canvas.width, canvas.height] }),
        getImageData: (x, y, w, h) => ({ data: new Uint8ClampedArray(w * h * 4), width: w, height: h }),
      };
    }
  };
  try {
    const img = { naturalWidth: 640, naturalHeight: 480, width: 320, height: 240 };
    const frame = frameFromImage(img);
    assert.deepEqual([frame.width, frame.height, frame.format, frame.data.length], [640, 480, "RGBA", 640 * 480 * 4]);
    assert.deepEqual(drawn[0].rest, []);
    assert.deepEqual(drawn[0].size, [640, 480]);
    assert.throws(() => frameFromImage({ naturalWidth: 0, naturalHeight: 0 }), /has no size yet/);
    assert.throws(() => frameFromImage("cat.png"), /takes an <img>, <video>, <canvas>, ImageBitmap or VideoFrame in a browser; received the string 'cat.png'/);
  } finally {
    delete globalThis.OffscreenCanvas;
  }
  // Node.js: a path said "the image has no size yet (undefined x undefined)".
  assert.throws(
    () => frameFromImage("cat.png"),
    (e) => e instanceof InputError && /received the string 'cat.png'\. In Node\.js decode the image yourself and pass classify\(\{data, width, height, format\}\)/.test(e.message),
  );
  assert.throws(() => frameFromImage({ width: 4, height: 4 }), /received a Object\. In Node\.js/);
});
