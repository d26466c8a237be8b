#!/usr/bin/env node
// Latency of Model.classify on one synthetic frame, as an app calls it:
//
//   node js/tools/bench.mjs MODEL.onnx [--backend node|web] [--size 640x480]
//        [--format RGBA] [--runs 50] [--threads 1]
//
// Prints one JSON line: median and p95 milliseconds of classify() (channel conversion
// when the format is not the model's, session.run, softmax/top-k), after 5 warm-up calls.

import { parseArgs } from "node:util";

import { loadModel } from "../src/index.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    backend: { type: "string", default: "node" },
    size: { type: "string", default: "640x480" },
    format: { type: "string", default: "RGBA" },
    runs: { type: "string", default: "50" },
    threads: { type: "string", default: "1" },
  },
});
const threads = Number(values.threads);
const ort = await import(values.backend === "web" ? "onnxruntime-web" : "onnxruntime-node");
const sessionOptions = { executionProviders: [values.backend === "web" ? "wasm" : "cpu"] };
if (values.backend === "web") ort.env.wasm.numThreads = threads;
else sessionOptions.intraOpNumThreads = threads;
const started = performance.now();
const model = await loadModel(positionals[0], { ort, sessionOptions });
const loadMs = performance.now() - started;
const [width, height] = values.size.split("x").map(Number);
const channels = { GRAY: 1, RGB: 3, BGR: 3, RGBA: 4, BGRA: 4 }[values.format];
const data = new Uint8Array(width * height * channels);
for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24; // fixed noise
const frame = { data, width, height, format: values.format };
const first = performance.now();
await model.classify(frame);
const firstMs = performance.now() - first;
for (let i = 0; i < 5; i++) await model.classify(frame);
const times = [];
for (let i = 0; i < Number(values.runs); i++) {
  const t = performance.now();
  await model.classify(frame);
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
console.log(
  JSON.stringify({
    model: positionals[0],
    backend: values.backend,
    frame: `${values.size} ${values.format}`,
    threads,
    runs: times.length,
    load_ms: +loadMs.toFixed(1),
    first_ms: +firstMs.toFixed(2),
    median_ms: +at(0.5).toFixed(3),
    p95_ms: +at(0.95).toFixed(3),
  }),
);
await model.release();
