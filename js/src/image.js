// Browser helpers: an <img>, <video>, <canvas>, ImageBitmap or VideoFrame as a frame.
//
// The source is drawn onto a canvas at its own (natural) size, never resized: resizing
// is done by the frame model's graph with OpenCV's filter, not by the canvas' filter,
// which differs between browsers. getImageData gives unpremultiplied RGBA in sRGB.

import { InputError } from "./errors.js";

function naturalSize(source) {
  const width = source.naturalWidth || source.videoWidth || source.displayWidth || source.width;
  const height = source.naturalHeight || source.videoHeight || source.displayHeight || source.height;
  if (!(width > 0 && height > 0)) {
    throw new InputError(
      `the image has no size yet (${width} x ${height}); wait for it to load (img.decode(), video 'loadeddata')`,
    );
  }
  return { width, height };
}

function describeSource(source) {
  if (typeof source === "string") return `the string '${source}'`;
  if (source === null || typeof source !== "object") return String(source);
  return `a ${source.constructor?.name ?? "object"}`;
}

function canvasOf(width, height) {
  if (typeof OffscreenCanvas !== "undefined") return new OffscreenCanvas(width, height);
  if (typeof document !== "undefined") {
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    return canvas;
  }
  throw new InputError("frameFromImage needs a canvas (a browser page or worker); in Node.js pass {data, width, height, format}");
}

/**
 * The pixels of an image source as an RGBA frame {data, width, height, format}.
 *
 * @param {CanvasImageSource} source an <img>, <video>, <canvas>, ImageBitmap or VideoFrame
 */
export function frameFromImage(source) {
  if (typeof source !== "object" || source === null || (typeof OffscreenCanvas === "undefined" && typeof document === "undefined")) {
    // A path or a URL, or any call outside a browser: there is no canvas to draw on here.
    throw new InputError(
      `classifyImage takes an <img>, <video>, <canvas>, ImageBitmap or VideoFrame in a browser; received ${describeSource(source)}. ` +
        "In Node.js decode the image yourself and pass classify({data, width, height, format})",
    );
  }
  const { width, height } = naturalSize(source);
  const canvas = canvasOf(width, height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(source, 0, 0);
  const image = context.getImageData(0, 0, width, height);
  return { data: image.data, width, height, format: "RGBA" };
}

/**
 * Classifies an image source with `model` (see Model.classify for the options).
 *
 * @example
 * const p = await classifyImage(model, document.querySelector("video"), { heatmap: true });
 */
export function classifyImage(model, source, options) {
  return model.classify(frameFromImage(source), options);
}
