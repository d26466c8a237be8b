// The same tests on every backend: node.test.js and web.test.js call parity() with their
// own onnxruntime namespace (each test file runs in its own process, so the two
// onnxruntime packages never share one registry of backends).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { test } from "node:test";

import { CardError, InputError, ModelLoadError, loadModel } from "../src/index.js";
import { COMMITTED, frameOf, heatmapOf, maxAbsDiff, readCases } from "./cases.js";

const TOLERANCE = 1e-5; // |probability - Python's|, fp32 (issue 20)
const HEATMAP_TOLERANCE = 1e-5;

async function modelsOf(cases, ort, sessionOptions) {
  const models = {};
  for (const [name, { file, card }] of Object.entries(cases.models)) {
    models[name] = await loadModel(join(cases.folder, file), { ort, sessionOptions, card: card ?? undefined });
  }
  return models;
}

/** Every case of the folder: probabilities, top-k, present and heatmaps against Python's. */
async function checkCases(t, cases, ort, sessionOptions) {
  const models = await modelsOf(cases, ort, sessionOptions);
  let worst = 0;
  let worstHeat = 0;
  let agree = 0;
  let correct = 0;
  let heatmaps = 0;
  let labelled = 0;
  for (const c of cases.cases) {
    const model = models[c.model];
    const p = await model.classify(frameOf(cases.folder, c), { heatmap: c.heatmap !== null });
    const where = `${c.model} ${c.frame}`;
    const dp = maxAbsDiff(p.probabilities, c.probabilities);
    worst = Math.max(worst, dp);
    assert.ok(dp <= TOLERANCE, `${where}: max |dp| ${dp} > ${TOLERANCE}`);
    assert.equal(p.index, c.index, `${where}: top-1`);
    assert.equal(p.label, model.labels[c.index]);
    assert.deepEqual(
      p.topK.map((x) => x.index),
      c.top_k.map((x) => x.index),
      `${where}: top-k order`,
    );
    assert.deepEqual(
      p.present.map((x) => x.index),
      c.present.map((x) => x.index),
      `${where}: present`,
    );
    agree += p.index === c.index ? 1 : 0;
    if (c.label !== null) {
      labelled++;
      correct += p.index === c.label ? 1 : 0;
    }
    if (c.heatmap !== null) {
      const expected = heatmapOf(cases.folder, c);
      assert.ok(Math.max(...expected) > 0.99, `${where}: Python's heatmap peaks at 1`);
      assert.equal(p.heatmap.width, c.width);
      assert.equal(p.heatmap.height, c.height);
      const dh = maxAbsDiff(p.heatmap.data, expected);
      worstHeat = Math.max(worstHeat, dh);
      assert.ok(dh <= HEATMAP_TOLERANCE, `${where}: heatmap max |diff| ${dh}`);
      heatmaps++;
    }
  }
  for (const model of Object.values(models)) await model.release();
  t.diagnostic(
    `${cases.cases.length} frames: max |dp| ${worst.toExponential(2)}, top-1 agreement ${agree}/${cases.cases.length}, ` +
      `correct digit ${correct}/${labelled}, ${heatmaps} heatmaps max |diff| ${worstHeat.toExponential(2)}`,
  );
  return { worst, agree, total: cases.cases.length };
}

export function parity(backend, ort, sessionOptions = {}) {
  const committed = readCases(COMMITTED);

  test(`${backend}: committed frames equal Python's Engine (frame models, sidecar card, logits card)`, async (t) => {
    await checkCases(t, committed, ort, sessionOptions);
  });

  test(`${backend}: a tensor model takes frames at its own size and color`, async () => {
    const model = await loadModel(join(COMMITTED, "digits.onnx"), { ort, sessionOptions });
    assert.equal(model.isFrameModel, false);
    for (const c of committed.tensor_cases) {
      const p = await model.classify(frameOf(COMMITTED, c));
      assert.ok(maxAbsDiff(p.probabilities, c.probabilities) <= TOLERANCE);
      assert.equal(p.index, c.index);
    }
    const wrong = { data: new Uint8Array(64 * 48 * 4), width: 64, height: 48, format: "RGBA" };
    await assert.rejects(model.classify(wrong), (e) => e instanceof InputError && /--frame RGBA/.test(e.message));
    await model.release();
  });

  test(`${backend}: the card comes from metadata_props, or from STEM.card.json beside the file`, async () => {
    const bytes = new Uint8Array(readFileSync(join(COMMITTED, "digits.frame-rgba.onnx")));
    const fromBytes = await loadModel(bytes, { ort, sessionOptions });
    assert.equal(fromBytes.frameColor, "RGBA");
    assert.deepEqual(fromBytes.labels, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    assert.equal(fromBytes.card.resize.mode, "center_crop");
    await fromBytes.release();
    const sidecar = await loadModel(join(COMMITTED, "digits-nocard.frame-bgr.onnx"), { ort, sessionOptions });
    assert.equal(sidecar.frameColor, "BGR");
    await sidecar.release();
    const noCard = new Uint8Array(readFileSync(join(COMMITTED, "digits-nocard.frame-bgr.onnx")));
    await assert.rejects(loadModel(noCard, { ort, sessionOptions }), (e) => e instanceof CardError && /no model card/.test(e.message));
  });

  test(`${backend}: clear errors for a bad frame, option or heatmap request`, async () => {
    const model = await loadModel(join(COMMITTED, "digits.frame-rgba.onnx"), { ort, sessionOptions });
    const frame = { data: new Uint8Array(10), width: 4, height: 4, format: "RGBA" };
    await assert.rejects(model.classify(frame), (e) => e instanceof InputError && /has 10 bytes; a 4 x 4 RGBA frame has 64/.test(e.message));
    await assert.rejects(model.classify({ ...frame, format: "ARGB" }), /frame.format must be one of BGR, RGB, RGBA, BGRA, GRAY/);
    const ok = { data: new Uint8Array(64), width: 4, height: 4, format: "RGBA" };
    await assert.rejects(model.classify(ok, { topK: 0 }), /topK must be a positive integer/);
    await model.release();
    const noMaps = { ...model.card, output: { ...model.card.output, class_maps: null, class_maps_note: "flatten head" } };
    const plain = await loadModel(join(COMMITTED, "digits.frame-rgba.onnx"), { ort, sessionOptions, card: noMaps });
    await assert.rejects(plain.classify(ok, { heatmap: true }), /needs a model with a class_maps output; this model has none \(flatten head\)/);
    await plain.release();
    await assert.rejects(loadModel(join(COMMITTED, "digits.frame-rgba.onnx"), {}), /needs the onnxruntime namespace/);
  });

  test(`${backend}: runs on one model never overlap; a released or empty model says so`, async () => {
    // A page's file classified while the camera's frame ran hung onnxruntime-web's WebGPU
    // session for good: two runs were on it at once.
    const model = await loadModel(join(COMMITTED, "digits.frame-rgba.onnx"), { ort, sessionOptions });
    const proto = Object.getPrototypeOf(model.session);
    const original = proto.run;
    let active = 0;
    let most = 0;
    proto.run = async function (...args) {
      active++;
      most = Math.max(most, active);
      try {
        return await original.apply(this, args);
      } finally {
        active--;
      }
    };
    const cases = committed.cases.filter((c) => c.model === "rgba").slice(0, 4);
    try {
      const order = [...cases, ...cases, ...cases];
      const answers = await Promise.all(order.map((c) => model.classify(frameOf(COMMITTED, c))));
      answers.forEach((p, i) => assert.ok(maxAbsDiff(p.probabilities, order[i].probabilities) <= TOLERANCE, `call ${i}`));
    } finally {
      proto.run = original;
    }
    assert.equal(most, 1, "runs overlapped on one model");
    const pending = model.classify(frameOf(COMMITTED, cases[0]));
    await model.release();
    assert.ok(maxAbsDiff((await pending).probabilities, cases[0].probabilities) <= TOLERANCE, "the run under way ends first");
    await assert.rejects(model.classify(frameOf(COMMITTED, cases[0])), (e) => e instanceof ModelLoadError && /was released \(model.release\(\)\)/.test(e.message));
    await assert.rejects(loadModel(new Uint8Array(0), { ort }), (e) => e instanceof ModelLoadError && /the model's bytes \(0 bytes\) is empty/.test(e.message));
  });

  test(`${backend}: a URL is fetched, and so is STEM.card.json beside it`, async () => {
    const server = createServer((request, response) => {
      try {
        response.end(readFileSync(join(COMMITTED, decodeURIComponent(new URL(request.url, "http://x").pathname))));
      } catch {
        response.statusCode = 404;
        response.end();
      }
    });
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${server.address().port}`;
    try {
      const model = await loadModel(`${base}/digits-nocard.frame-bgr.onnx`, { ort, sessionOptions });
      assert.equal(model.frameColor, "BGR");
      const c = committed.cases.find((x) => x.model === "bgr-sidecar");
      const p = await model.classify(frameOf(COMMITTED, c));
      assert.ok(maxAbsDiff(p.probabilities, c.probabilities) <= TOLERANCE);
      await model.release();
      await assert.rejects(loadModel(`${base}/missing.onnx`, { ort, sessionOptions }), /cannot fetch .*missing.onnx.*HTTP 404/);
    } finally {
      server.close();
    }
  });

  test(`${backend}: run() takes a batch of frames of one size; threshold overrides the card's`, async () => {
    const model = await loadModel(join(COMMITTED, "multilabel.frame-rgb.onnx"), { ort, sessionOptions });
    assert.equal(model.threshold, 0.4);
    const chosen = committed.cases.filter((c) => c.model === "multilabel-rgb" && c.width === 64 && c.format === "BGR");
    const frames = chosen.map((c) => frameOf(COMMITTED, c));
    // BGR frames to an RGB model: swap channels here, as the batch goes in as the graph takes it
    const batch = new Uint8Array(frames.reduce((n, f) => n + f.data.length, 0));
    frames.forEach((f, i) => {
      for (let j = 0; j < f.data.length; j += 3) {
        batch.set([f.data[j + 2], f.data[j + 1], f.data[j]], i * f.data.length + j);
      }
    });
    const out = await model.run(batch, [frames.length, frames[0].height, frames[0].width, 3]);
    assert.equal(out.probabilities.length, frames.length * out.classes);
    chosen.forEach((c, i) => {
      const row = out.probabilities.subarray(i * out.classes, (i + 1) * out.classes);
      assert.ok(maxAbsDiff(row, c.probabilities) <= TOLERANCE);
    });
    let dropped = 0;
    for (const c of chosen) {
      const strict = await model.classify(frameOf(COMMITTED, c), { threshold: 0.55 });
      const expected = c.top_k.filter((x) => x.score >= 0.55).map((x) => x.index); // top_k lists all 4 classes, best first
      assert.deepEqual(strict.present.map((x) => x.index), expected);
      dropped += c.present.length - expected.length;
    }
    assert.ok(dropped > 0, "a higher threshold drops classes the card's threshold keeps");
    await assert.rejects(model.classify(frames[0], { threshold: 1 }), /threshold must be a number between 0 and 1/);
    await model.release();
  });

  test(`${backend}: frames of one size, seen twice, run on a session with that size fixed`, async () => {
    const model = await loadModel(join(COMMITTED, "digits.frame-rgba.onnx"), { ort, sessionOptions });
    const cases = committed.cases.filter((c) => c.model === "rgba");
    const [a, b] = [cases[0], cases.find((c) => c.width !== cases[0].width || c.height !== cases[0].height)];
    assert.ok(a && b, "two committed RGBA frames of different sizes");
    const sizeOf = (c) => `1x${c.height}x${c.width}`;
    const seen = [];
    for (const c of [a, a, a, b, a, b, b]) {
      const p = await model.classify(frameOf(COMMITTED, c));
      assert.ok(maxAbsDiff(p.probabilities, c.probabilities) <= TOLERANCE, `${sizeOf(c)} after ${seen.join(", ")}`);
      seen.push(model.sizedFor);
    }
    if (ort.env.versions.web) {
      // The second frame of a size in a row opens its session; one in between does not.
      assert.deepEqual(seen, [null, sizeOf(a), sizeOf(a), sizeOf(a), sizeOf(a), sizeOf(a), sizeOf(b)]);
    } else {
      // onnxruntime-node 1.30 does not take freeDimensionOverrides: no second session.
      assert.deepEqual(seen, Array(seen.length).fill(null));
    }
    // Calls that overlap: each gets its answer; one session is opened for the size.
    const many = await Promise.all([a, a, a, b, b, b, a].map((c) => model.classify(frameOf(COMMITTED, c))));
    many.forEach((p, i) => {
      const c = [a, a, a, b, b, b, a][i];
      assert.ok(maxAbsDiff(p.probabilities, c.probabilities) <= TOLERANCE, `overlapping call ${i}`);
    });
    await model.release();
    assert.equal(model.sizedFor, null);
  });

  const external = process.env.CNNPORT_JS_CASES;
  test(`${backend}: frames written by pytest (CNNPORT_JS_CASES) equal Python's Engine`, { skip: external ? false : "CNNPORT_JS_CASES is not set (tests/export/test_js.py sets it)" }, async (t) => {
    const { worst, agree, total } = await checkCases(t, readCases(external), ort, sessionOptions);
    console.log(JSON.stringify({ backend, frames: total, max_abs_diff: worst, top1_agreement: agree / total }));
  });
}
