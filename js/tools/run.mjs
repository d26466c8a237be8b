#!/usr/bin/env node
// Runs a cnnport model through the JS module for Python (export/jsbackends.py: the
// `ort-node` and `ort-wasm` runtimes of `cnnport check` and `cnnport bench`).
//
//   node js/tools/run.mjs MODEL.onnx [--backend node|web] [--threads N]
//
// A long-lived process talking over stdin/stdout, so a bench times inference rather than
// node's start. It first writes one JSON line: {"ready": true, "backend", "card",
// "class_maps": whether the graph gives them} or
// {"ok": false, "error"}. Then, per request:
//   in:  a JSON line {"dims": [N, H, W, C], "dtype": "uint8"|"float32", "class_maps": bool},
//        then the batch's bytes (what the graph takes: frames in the model's frame color
//        for a frame model, the card's input tensor for a tensor model);
//   out: a JSON line {"ok": true, "probabilities": [N, classes], "class_maps": dims|null,
//        "run_ms": milliseconds inside Model.run}, then the float32 probabilities (softmax
//        taken where the output holds logits) and the class maps, little-endian;
//        or {"ok": false, "error"}.
// The process ends when stdin closes.

import { parseArgs } from "node:util";

import { loadModel } from "../src/index.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { backend: { type: "string", default: "node" }, threads: { type: "string" } },
});

function reply(header, ...payloads) {
  process.stdout.write(JSON.stringify(header) + "\n");
  for (const p of payloads) process.stdout.write(Buffer.from(p.buffer, p.byteOffset, p.byteLength));
}

async function openModel() {
  const backend = values.backend;
  if (!["node", "web"].includes(backend)) throw new Error(`--backend must be node or web; received ${backend}`);
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  const ort = await import(backend === "node" ? "onnxruntime-node" : "onnxruntime-web");
  const sessionOptions = { executionProviders: [backend === "node" ? "cpu" : "wasm"] };
  if (backend === "web") ort.env.wasm.numThreads = threads ?? 1;
  else if (threads !== undefined) sessionOptions.intraOpNumThreads = threads;
  return loadModel(positionals[0], { ort, sessionOptions });
}

const ITEM = { uint8: 1, float32: 4 };

async function serve(model) {
  // Chunks are kept as they come and joined once per request (a 640x480 frame arrives in
  // many 64 KB pipe reads; joining at every read would copy it over and over).
  let chunks = [];
  let buffered = 0;
  let header = null;
  let queue = Promise.resolve();
  const take = (n) => {
    const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, buffered);
    chunks = all.length > n ? [all.subarray(n)] : [];
    buffered = all.length - n;
    return all.subarray(0, n);
  };
  process.stdin.on("data", (chunk) => {
    chunks.push(chunk);
    buffered += chunk.length;
    for (;;) {
      if (header === null) {
        const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, buffered);
        chunks = [all];
        const end = all.indexOf(10);
        if (end < 0) return;
        header = JSON.parse(take(end + 1).subarray(0, end).toString("utf-8"));
        header.bytes = header.dims.reduce((a, b) => a * b, 1) * ITEM[header.dtype];
      }
      if (buffered < header.bytes) return;
      const body = Buffer.from(take(header.bytes));
      const request = header;
      header = null;
      queue = queue.then(() => answer(model, request, body));
    }
  });
  process.stdin.on("end", () => queue.then(() => model.release()));
}

async function answer(model, request, body) {
  try {
    const data =
      request.dtype === "uint8"
        ? new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
        : new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
    const started = performance.now();
    const out = await model.run(data, request.dims, { classMaps: Boolean(request.class_maps) });
    const runMs = performance.now() - started;
    const maps = out.classMaps;
    reply(
      { ok: true, probabilities: [request.dims[0], out.classes], class_maps: maps ? maps.dims : null, run_ms: runMs },
      out.probabilities,
      ...(maps ? [maps.data] : []),
    );
  } catch (error) {
    reply({ ok: false, error: `${error.name}: ${error.message}` });
  }
}

try {
  if (positionals.length !== 1) throw new Error("usage: node run.mjs MODEL.onnx [--backend node|web] [--threads N]");
  const model = await openModel();
  reply({ ready: true, backend: values.backend, card: model.card, class_maps: model.hasClassMaps });
  await serve(model);
} catch (error) {
  reply({ ok: false, error: `${error.name}: ${error.message}` });
  process.exitCode = 1;
}
