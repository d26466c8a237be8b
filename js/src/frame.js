// Frames: what classify() accepts, and the channel-order conversion to the model's order.
//
// Only the channel order is changed here; resizing is the graph's job (a frame model
// resizes with OpenCV's filter inside the graph). The conversions are the ones
// cnnport.runtime.preprocess.to_input_color makes, computed the same way, so a frame
// converted here gives the graph the pixels Python would give it:
//   - alpha is composited over white in float32, rounded half to even (np.rint):
//     round(color * (a / 255) + 255 * (1 - a / 255));
//   - gray is OpenCV's 8-bit BGR2GRAY as OpenCV 5 computes it:
//     (B*3735 + G*19235 + R*9798 + 16384) >> 15 (equal to cv2.cvtColor 5.0 on all 2**24
//     colors; OpenCV 4's 14-bit weights 1868/9617/4899 differ by one level on 0.26% of them);
//   - gray to color repeats the gray value; a color without alpha gets alpha 255.
// A 4-channel frame going to a 4-channel model keeps its alpha (the graph composites it).

import { FRAME_CHANNELS, FRAME_COLORS } from "./card.js";
import { InputError } from "./errors.js";


const f32 = Math.fround;

/** Rounds half to even, as numpy's rint and ONNX Round do. */
export function roundHalfEven(x) {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The frame as {data: Uint8Array, width, height, format}, checked.
 *
 * @param {object} frame {data, width, height, format}, or an ImageData (format RGBA)
 */
export function normalizeFrame(frame) {
  if (frame === null || typeof frame !== "object" || !("data" in frame)) {
    throw new InputError(
      `a frame must be {data, width, height, format} or an ImageData; received ${frame === null ? "null" : typeof frame}`,
    );
  }
  const { width, height } = frame;
  const format = frame.format ?? (isImageData(frame) ? "RGBA" : undefined);
  if (!FRAME_COLORS.includes(format)) {
    throw new InputError(`frame.format must be one of ${FRAME_COLORS.join(", ")}; received ${JSON.stringify(format)}`);
  }
  if (!Number.isInteger(width) || width <= 0 || !Number.isInteger(height) || height <= 0) {
    throw new InputError(`frame width and height must be positive integers; received ${width} x ${height}`);
  }
  let data = frame.data;
  if (data instanceof Uint8ClampedArray || (typeof Buffer !== "undefined" && data instanceof Buffer)) {
    data = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  if (!(data instanceof Uint8Array)) {
    throw new InputError(
      `frame.data must be a Uint8Array or Uint8ClampedArray of pixels; received ${data?.constructor?.name ?? typeof data}`,
    );
  }
  const expected = width * height * FRAME_CHANNELS[format];
  if (data.length !== expected) {
    throw new InputError(
      `frame.data has ${data.length} bytes; a ${width} x ${height} ${format} frame has ${expected} (width * height * ${FRAME_CHANNELS[format]})`,
    );
  }
  return { data, width, height, format };
}

function isImageData(frame) {
  return (
    (typeof ImageData !== "undefined" && frame instanceof ImageData) ||
    (frame.data instanceof Uint8ClampedArray && "colorSpace" in frame)
  );
}

// Where R, G, B, A sit in each format (-1: absent).
const LAYOUT = {
  RGB: [0, 1, 2, -1],
  BGR: [2, 1, 0, -1],
  RGBA: [0, 1, 2, 3],
  BGRA: [2, 1, 0, 3],
};

function composite(value, alpha) {
  // float32 as numpy computes it: alpha = a / 255; color * alpha + 255 * (1 - alpha).
  const a = f32(alpha / 255);
  return roundHalfEven(f32(f32(value * a) + f32(255 * f32(1 - a))));
}

function grayOf(r, g, b) {
  return (b * 3735 + g * 19235 + r * 9798 + 16384) >> 15;
}

/**
 * The frame's pixels in channel order `target`: the same array when it already is.
 *
 * @returns {Uint8Array}
 */
export function convertFrame(data, width, height, source, target) {
  if (source === target) return data;
  const n = width * height;
  const out = new Uint8Array(n * FRAME_CHANNELS[target]);
  if (source === "GRAY") {
    fromGray(data, out, n, target);
    return out;
  }
  const [r, g, b, a] = LAYOUT[source];
  const step = FRAME_CHANNELS[source];
  const keepAlpha = a >= 0 && FRAME_CHANNELS[target] === 4;
  const [tr, tg, tb, ta] = LAYOUT[target] ?? [];
  const tstep = FRAME_CHANNELS[target];
  for (let i = 0, s = 0, t = 0; i < n; i++, s += step, t += tstep) {
    let R = data[s + r];
    let G = data[s + g];
    let B = data[s + b];
    const A = a >= 0 ? data[s + a] : 255;
    if (a >= 0 && !keepAlpha && A !== 255) {
      R = composite(R, A);
      G = composite(G, A);
      B = composite(B, A);
    }
    if (target === "GRAY") {
      out[t] = grayOf(R, G, B);
      continue;
    }
    out[t + tr] = R;
    out[t + tg] = G;
    out[t + tb] = B;
    if (ta >= 0) out[t + ta] = A;
  }
  return out;
}

function fromGray(data, out, n, target) {
  const step = FRAME_CHANNELS[target];
  const alpha = step === 4 ? 3 : -1;
  for (let i = 0, t = 0; i < n; i++, t += step) {
    const v = data[i];
    out[t] = v;
    out[t + 1] = v;
    out[t + 2] = v;
    if (alpha >= 0) out[t + alpha] = 255;
  }
}
