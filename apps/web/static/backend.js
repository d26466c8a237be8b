// Which onnxruntime-web backend runs, and on how many threads.
//
// WASM on several threads needs SharedArrayBuffer, which browsers give only to a
// cross-origin isolated page (the COOP/COEP headers `cnnport web --serve` sends). WebGPU
// is tried where the browser offers an adapter, and kept only when it is faster on this
// machine, measured on this model: a small CNN often runs faster on the CPU than the
// GPU round trip takes.

const siteUrl = (path) => new URL(path, location.href).href;

// {threads, note}: ?threads=N asks for N (1 when the page is not isolated).
export function threadPlan(params, isolated, cores) {
  const asked = Number.parseInt(params.get("threads") || "", 10);
  if (!isolated) {
    const note =
      "One thread: this server does not send the cross-origin isolation headers (COOP/COEP), " +
      "so the browser gives the page no shared memory. `cnnport web MODEL.onnx --serve` sends them.";
    return { threads: 1, note };
  }
  const threads = asked > 0 ? asked : Math.max(1, Math.min(4, cores || 1));
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

// Median ms of classify on a mid-gray 640x480 frame, after warm-up runs.
export async function timeModel(model, runs = 7, warmup = 3) {
  const frame = { data: new Uint8ClampedArray(640 * 480 * 4).fill(128), width: 640, height: 480, format: "RGBA" };
  const times = [];
  for (let i = 0; i < warmup + runs; i++) {
    const t = performance.now();
    await model.classify(frame, { topK: 1 });
    if (i >= warmup) times.push(performance.now() - t);
  }
  return median(times);
}

async function webgpuAdapter() {
  if (!navigator.gpu) return [null, "WebGPU: not in this browser"];
  try {
    const adapter = await navigator.gpu.requestAdapter();
    return adapter ? [adapter, ""] : [null, "WebGPU: no adapter offered"];
  } catch (err) {
    return [null, `WebGPU: ${err.message || err}`];
  }
}

// {model, backend, note}. ?backend=wasm or ?backend=webgpu forces one.
export async function chooseBackend({ site, card, plan, params, loadModel }) {
  const want = params.get("backend") || "auto";
  const open = async (entry, ep) =>
    loadModel(siteUrl(site.model), {
      ort: await loadOrt(entry, plan.threads),
      card,
      sessionOptions: { executionProviders: [ep], graphOptimizationLevel: "all" },
    });
  const wasm = want === "webgpu" ? null : await open(site.ort.wasm, "wasm");
  if (want === "wasm") return { model: wasm, backend: "wasm", note: "" };
  if (!site.ort.webgpu) return { model: wasm, backend: "wasm", note: "WebGPU files not in this site" };
  const [adapter, why] = await webgpuAdapter();
  if (!adapter) {
    if (want === "webgpu") throw new Error(why);
    return { model: wasm, backend: "wasm", note: why };
  }
  let gpu;
  try {
    gpu = await open(site.ort.webgpu, "webgpu");
  } catch (err) {
    if (want === "webgpu") throw err;
    return { model: wasm, backend: "wasm", note: `WebGPU did not load: ${err.message || err}` };
  }
  if (want === "webgpu") return { model: gpu, backend: "webgpu", note: "" };
  const [g, w] = [await timeModel(gpu), await timeModel(wasm)];
  const note = `webgpu ${g.toFixed(1)} ms vs wasm ${w.toFixed(1)} ms`;
  if (g < w) {
    await wasm.release();
    return { model: gpu, backend: "webgpu", note };
  }
  await gpu.release();
  return { model: wasm, backend: "wasm", note };
}
