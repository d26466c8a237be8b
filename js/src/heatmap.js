// Where the model looks, as cnnport.runtime.heatmap.heatmap_for computes it: the chosen
// class' activation map, ReLU, divided by its maximum (when > 0), resized bilinearly onto
// the part of the frame the model saw (the whole frame for stretch, the central window
// for center_crop), zeros outside, clipped to [0, 1].
//
// The bilinear resize follows OpenCV's INTER_LINEAR on float32 (resize.cpp): source
// position (d + 0.5) * scale - 0.5, taps clamped at the borders, float32 weights and
// sums. OpenCV may fuse multiply-adds in its SIMD path, so values can differ from
// Python's in the last bits of float32 (about 1e-7), never more.

import { roundHalfEven } from "./frame.js";

const f32 = Math.fround;

/**
 * The window of a height x width frame that becomes the model input, as
 * runtime/preprocess.py crop_window: {top, left, height, width}.
 */
export function cropWindow(height, width, input, resize) {
  if (resize.mode !== "center_crop" || (height === input.height && width === input.width)) {
    return { top: 0, left: 0, height, width };
  }
  const scale = Math.min(height / input.height, width / input.width);
  // Python's round() rounds half to even.
  const cropH = roundHalfEven(input.height * scale);
  const cropW = roundHalfEven(input.width * scale);
  return { top: Math.floor((height - cropH) / 2), left: Math.floor((width - cropW) / 2), height: cropH, width: cropW };
}

// Source index and the two weights of each output position along one axis.
function taps(source, target) {
  const scale = 1 / (target / source);
  const index = new Int32Array(target);
  const next = new Int32Array(target);
  const weight = new Float32Array(target);
  for (let d = 0; d < target; d++) {
    let f = f32((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = f32(f - s);
    if (s < 0) {
      s = 0;
      f = 0;
    }
    if (s >= source - 1) {
      s = source - 1;
      f = 0;
    }
    index[d] = s;
    next[d] = Math.min(s + 1, source - 1);
    weight[d] = f;
  }
  return { index, next, weight };
}

/** OpenCV-like INTER_LINEAR resize of a float32 (h, w) map to (height, width). */
export function resizeLinear(map, h, w, height, width) {
  if (h === height && w === width) return Float32Array.from(map);
  const xs = taps(w, width);
  const ys = taps(h, height);
  // Horizontal pass over each source row, then the vertical blend, as OpenCV does.
  const rows = new Float32Array(h * width);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < width; x++) {
      const a1 = xs.weight[x];
      const a0 = f32(1 - a1);
      rows[y * width + x] = f32(f32(map[y * w + xs.index[x]] * a0) + f32(map[y * w + xs.next[x]] * a1));
    }
  }
  const out = new Float32Array(height * width);
  for (let y = 0; y < height; y++) {
    const b1 = ys.weight[y];
    const b0 = f32(1 - b1);
    const r0 = ys.index[y] * width;
    const r1 = ys.next[y] * width;
    for (let x = 0; x < width; x++) {
      out[y * width + x] = f32(f32(rows[r0 + x] * b0) + f32(rows[r1 + x] * b1));
    }
  }
  return out;
}

/**
 * The heatmap {data: Float32Array, width, height} of one class over a frame.
 *
 * @param {Float32Array} maps the class_maps output of one image, (h, w, classes) flattened
 * @param {number[]} dims [h, w, classes]
 * @param {number} index the class
 */
export function heatmapFor(maps, dims, index, frameHeight, frameWidth, input, resize) {
  const [h, w, classes] = dims;
  const map = new Float32Array(h * w);
  let peak = 0;
  for (let i = 0; i < h * w; i++) {
    const v = Math.max(maps[i * classes + index], 0);
    map[i] = v;
    if (v > peak) peak = v;
  }
  if (peak > 0) for (let i = 0; i < map.length; i++) map[i] = f32(map[i] / peak);
  const win = cropWindow(frameHeight, frameWidth, input, resize);
  const inner = resizeLinear(map, h, w, win.height, win.width);
  const data = new Float32Array(frameHeight * frameWidth);
  for (let y = 0; y < win.height; y++) {
    const row = (win.top + y) * frameWidth + win.left;
    for (let x = 0; x < win.width; x++) data[row + x] = Math.min(Math.max(inner[y * win.width + x], 0), 1);
  }
  return { data, width: frameWidth, height: frameHeight };
}
