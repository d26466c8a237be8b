// Which onnxruntime-web backend runs, and on how many threads.
//
// WASM on several threads needs SharedArrayBuffer, which browsers give only to a
// cross-origin isolated page (the COOP/COEP headers `cnnport web --serve` sends). WebGPU
// is tried where the browser offers an adapter, and kept only when it is faster on this
// machine, measured on this model: a small CNN often runs faster on the CPU than the
// GPU round trip takes, and a software adapter (SwiftShader) is always slower.

const siteUrl = (path) => new URL(path, location.href).href;

// The session options of each backend. Measured in benchmarks/web_latency.py (docs/web.md):
// graph optimizations "all" as native onnxruntime does by default.
export const SESSION_OPTIONS = {
  wasm: { executionProviders: ["wasm"], graphOptimizationLevel: "all" },
  // Severity 3 (errors): its warning that shape ops run on the CPU is by design.
  webgpu: { executionProviders: ["webgpu"], graphOptimizationLevel: "all", logSeverityLevel: 3 },
};
// The chooser's timing, on a 640x480 frame (what a camera gives): WARMUP runs each (the
// first WebGPU run compiles its shaders), then up to RUNS each, interleaved. It stops early
// once both have MIN_RUNS and one median is twice the other, or after BUDGET_MS of timed
// runs: a software or slow adapter must not hold the page for half a minute.
export const TIMING = { runs: 7, minRuns: 3, warmup: 2, budgetMs: 3000, width: 640, height: 480 };

// {threads, note}: ?threads=N asks for N (1 when the page is not isolated). By default half
// the cores, at most 4 (onnxruntime-web's own default): the browser's main and compositor
// threads need a core too, and on a 2-core machine 2 WASM threads were measured slower
// than 1 (MobileNetV2 224: 112 ms against 57; docs/web.md).
export function threadPlan(params, isolated, cores) {
  const asked = Number.parseInt(params.get("threads") || "", 10);
  if (!isolated) {
    const note =
      "One thread: this server does not send the cross-origin isolation headers (COOP/COEP), " +
      "so the browser gives the page no shared memory. cnnport web SITE --serve (this site's folder) sends them.";
    return { threads: 1, note };
  }
  const threads = asked > 0 ? asked : Math.max(1, Math.min(4, Math.ceil((cores || 1) / 2)));
  return { threads, note: "" };
}

async function loadOrt(entry, threads) {
  const ort = await import(siteUrl(entry));
  ort.env.wasm.wasmPaths = siteUrl(entry.slice(0, entry.lastIndexOf("/") + 1));
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = "error";
  return ort;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const message = (err) => (err && err.message) || String(err);

// Opaque, as a camera frame drawn on a canvas is (a translucent one takes the frame
// model's slower compositing path).
const grayFrame = (width = TIMING.width, height = TIMING.height) => {
  const data = new Uint8ClampedArray(width * height * 4).fill(128);
  for (let i = 3; i < data.length; i += 4) data[i] = 255;
  return { data, width, height, format: "RGBA" };
};

// Median ms of classify on a mid-gray 640x480 frame, after warm-up runs.
export async function timeModel(model, runs = TIMING.runs, warmup = TIMING.warmup) {
  const timing = { ...TIMING, runs, warmup, budgetMs: Infinity };
  return (await timeModels({ model }, timing)).timings.model;
}

// {timings: {name: median ms}, runs}: several models timed with their runs interleaved
// (a, b, a, b, ...), so a busy moment of the machine falls on all of them alike.
export async function timeModels(models, timing = TIMING) {
  const frame = grayFrame(timing.width, timing.height);
  const names = Object.keys(models);
  const times = Object.fromEntries(names.map((name) => [name, []]));
  const medians = () => Object.fromEntries(names.map((name) => [name, median(times[name])]));
  const once = async (name) => {
    const t = performance.now();
    await models[name].classify(frame, { topK: 1 });
    return performance.now() - t;
  };
  for (let i = 0; i < timing.warmup; i++) for (const name of names) await once(name);
  const started = performance.now();
  for (let run = 1; run <= timing.runs; run++) {
    for (const name of names) times[name].push(await once(name));
    const m = Object.values(medians());
    const clear = run >= timing.minRuns && Math.max(...m) >= 2 * Math.min(...m);
    if (clear || performance.now() - started > timing.budgetMs) return { timings: medians(), runs: run };
  }
  return { timings: medians(), runs: timing.runs };
}

// WebGPU is kept only where its answer equals WASM's within this (max |dp| on a noise
// frame): the export's parity tolerance. A GPU's float32 differs from the CPU's by about
// 1e-6; onnxruntime-web 1.30's C++ WebGPU EP was measured 6e-3 off on SwiftShader.
export const AGREEMENT = 1e-4;

// A 640x480 RGBA frame of deterministic noise: a model answers it unlike a flat frame.
function noiseFrame(width = TIMING.width, height = TIMING.height) {
  const data = new Uint8ClampedArray(width * height * 4);
  let seed = 12345;
  for (let i = 0; i < data.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    data[i] = (i & 3) === 3 ? 255 : seed >>> 24;
  }
  return { data, width, height, format: "RGBA" };
}

// max |dp| between two models' probabilities on the noise frame.
export async function disagreement(a, b) {
  const frame = noiseFrame();
  const [pa, pb] = [await a.classify(frame, { topK: 1 }), await b.classify(frame, { topK: 1 })];
  let worst = 0;
  for (let i = 0; i < pa.probabilities.length; i++) worst = Math.max(worst, Math.abs(pa.probabilities[i] - pb.probabilities[i]));
  return worst;
}

// The backend with the lowest time; a tie goes to WASM (no GPU round trip, one runtime).
export function fastest(timings) {
  const names = Object.keys(timings).sort((a, b) => timings[a] - timings[b] || (a === "wasm" ? -1 : b === "wasm" ? 1 : 0));
  return names[0];
}

// [adapter, its name, why not]: the browser's WebGPU adapter, if it offers one.
export async function webgpuAdapter() {
  if (!navigator.gpu) return [null, "", "WebGPU: not in this browser"];
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return [null, "", "WebGPU: the browser offers no adapter"];
    const info = adapter.info || {};
    const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "unnamed adapter";
    return [adapter, name, ""];
  } catch (err) {
    return [null, "", `WebGPU: requestAdapter failed: ${message(err)}`];
  }
}

function measuredNote(timings, runs, chosen, adapterName) {
  const order = Object.keys(timings).sort((a, b) => (a === chosen ? -1 : b === chosen ? 1 : 0));
  const figures = order.map((name) => `${name} ${timings[name].toFixed(1)} ms`).join(" vs ");
  return `the faster here: ${figures} per ${TIMING.width}x${TIMING.height} frame (median of ${runs}; WebGPU adapter: ${adapterName})`;
}

/**
 * Opens the model on the backend to use. ?backend=wasm or ?backend=webgpu forces one;
 * otherwise WASM, and WebGPU beside it where the site ships its build and the browser
 * offers an adapter: both timed on this model, the faster kept. Any WebGPU failure
 * (no adapter, the build does not load, the model does not run, its answer is not WASM's
 * within AGREEMENT) leaves WASM, and says why.
 *
 * @returns {Promise<{model, backend, note, timings, adapter, agreement}>} timings: {backend:
 *   median ms}, empty unless both were timed; agreement: max |dp| WebGPU vs WASM, where measured
 */
export async function chooseBackend({ site, card, plan, params, loadModel }) {
  const want = params.get("backend") || "auto";
  const open = async (kind) =>
    loadModel(siteUrl(site.model), {
      ort: await loadOrt(site.ort[kind], plan.threads),
      card,
      sessionOptions: SESSION_OPTIONS[kind],
    });
  const only = (model, backend, note, adapter = "") => ({ model, backend, note, timings: {}, adapter });
  if (want === "wasm") return only(await open("wasm"), "wasm", "asked for with ?backend=wasm");
  if (want === "webgpu") {
    if (!site.ort.webgpu) throw new Error("this site has no WebGPU build (written with --no-webgpu)");
    const [adapter, name, why] = await webgpuAdapter();
    if (!adapter) throw new Error(why);
    return only(await open("webgpu"), "webgpu", "asked for with ?backend=webgpu", name);
  }
  const wasm = await open("wasm");
  if (!site.ort.webgpu) return only(wasm, "wasm", "WebGPU: its build is not in this site (written with --no-webgpu)");
  const [adapter, name, why] = await webgpuAdapter();
  if (!adapter) return only(wasm, "wasm", why);
  let gpu;
  try {
    gpu = await open("webgpu");
  } catch (err) {
    return only(wasm, "wasm", `WebGPU did not load, WASM runs: ${message(err)}`, name);
  }
  let timings, runs, dp;
  try {
    dp = await disagreement(gpu, wasm);
    if (dp <= AGREEMENT) ({ timings, runs } = await timeModels({ webgpu: gpu, wasm }));
  } catch (err) {
    // The reason shown is the run's failure; a failed release only goes to the console.
    await gpu.release().catch((e) => console.warn(`releasing the WebGPU session failed: ${message(e)}`));
    return only(wasm, "wasm", `WebGPU failed on this model, WASM runs: ${message(err)}`, name);
  }
  if (!(dp <= AGREEMENT)) {
    await gpu.release();
    const why = `WebGPU's answer differs from WASM's on this model (max |dp| ${dp.toExponential(1)} > ${AGREEMENT}), WASM runs`;
    return { ...only(wasm, "wasm", why, name), agreement: dp };
  }
  const backend = fastest(timings);
  await (backend === "webgpu" ? wasm : gpu).release();
  const model = backend === "webgpu" ? gpu : wasm;
  return { model, backend, note: measuredNote(timings, runs, backend, name), timings, adapter: name, agreement: dp };
}
