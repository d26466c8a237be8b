// The cnnport live classifier page: camera or image files -> the RGBA frame model.
// The page never resizes or converts pixels itself: the frame goes into the graph as
// the canvas hands it over (ImageData, RGBA, natural size), as in every other runtime.
import { loadModel } from "./cnnport/index.js";
import { ScoreSmoother, decide, headline } from "./smoothing.js";
import { chooseBackend, threadPlan } from "./backend.js";

window.cnnportStarted = true;
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const ui = {
  status: (text) => ($("status").textContent = text),
  message(text, kind = "warn") {
    const box = $("message");
    box.hidden = !text;
    box.className = kind === "error" ? "message error" : "message";
    box.textContent = text || "";
  },
};

// What tests and the benchmark read (window.cnnport); nothing here changes the page.
const hook = { ready: false, failed: null, live: [], backend: null, threads: null, site: null };
window.cnnport = hook;
window.addEventListener("error", (e) => fail(`The page hit an error: ${e.message}`));
window.addEventListener("unhandledrejection", (e) => fail(`The page hit an error: ${e.reason?.message || e.reason}`));

function fail(text) {
  hook.failed = hook.failed || text;
  ui.message(text, "error");
  ui.status("Not running");
}

async function fetchJson(path) {
  const reply = await fetch(path);
  if (!reply.ok) throw new Error(`${path} is missing from the site (HTTP ${reply.status}); write the site again with cnnport web`);
  return reply.json();
}

function missingFeatures() {
  const missing = [];
  if (typeof WebAssembly !== "object") missing.push("WebAssembly");
  if (typeof createImageBitmap !== "function") missing.push("createImageBitmap");
  if (!document.createElement("canvas").getContext("2d")) missing.push("canvas 2D");
  return missing;
}

async function start() {
  const missing = missingFeatures();
  if (missing.length) {
    fail(`This browser lacks ${missing.join(", ")}, which the classifier needs. Use a current Chrome, Edge, Firefox or Safari.`);
    return;
  }
  const site = await fetchJson("site.json");
  hook.site = site;
  const card = await fetchJson(site.card);
  document.title = `${site.title} — cnnport`;
  $("title").textContent = site.title;
  const plan = threadPlan(params, crossOriginIsolated, navigator.hardwareConcurrency);
  ui.status("Loading the model…");
  let chosen;
  try {
    chosen = await chooseBackend({ site, card, plan, params, loadModel });
  } catch (err) {
    fail(`The model did not load (${site.model}): ${err.message || err}`);
    return;
  }
  const { model, backend, note, timings, adapter, agreement } = chosen;
  const state = {
    model, card, site, backend,
    smoother: new ScoreSmoother(site.smoothing),
    heatmap: false,
    hasMaps: Boolean(card.output && card.output.class_maps),
    multilabel: card.output && card.output.head === "multilabel",
    threshold: site.threshold,
  };
  hook.backend = backend;
  hook.backendNote = note;
  hook.timings = timings; // {wasm, webgpu}: median ms each, when the chooser timed both
  hook.adapter = adapter;
  hook.agreement = agreement ?? null; // max |dp| WebGPU vs WASM on a noise frame, where both ran
  hook.threads = plan.threads;
  hook.state = state;
  $("backend").textContent = backend === "webgpu" ? `webgpu (${adapter})` : "wasm";
  $("backend-note").hidden = !note;
  $("backend-note").textContent = note ? `Backend: ${note}.` : "";
  $("threads").textContent = String(plan.threads);
  if (plan.note) {
    $("threads-note").hidden = false;
    $("threads-note").textContent = plan.note;
  }
  $("heatmap-toggle").hidden = !state.hasMaps;
  $("heatmap").addEventListener("change", (e) => (state.heatmap = e.target.checked));
  document.addEventListener("keydown", (e) => {
    if (e.key === "h" && state.hasMaps && e.target.tagName !== "INPUT") $("heatmap").click();
  });
  $("about").textContent = `${card.labels.length} classes · input ${card.input.width}x${card.input.height} ${card.input.color} · resize ${card.resize.mode}/${card.resize.interpolation} in the graph`;
  setupFiles(state);
  hook.classifyBase64 = (b64, type) => classifyBlob(state, base64Blob(b64, type));
  hook.ready = true;
  ui.status("Ready");
  if (params.get("camera") !== "off") await startCamera(state);
  $("start").addEventListener("click", () => startCamera(state));
  $("cameras").addEventListener("change", (e) => startCamera(state, e.target.value));
}

// ---------------------------------------------------------------- camera

let stream = null;

function cameraMessage(err) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError") {
    return "Camera access was denied. Allow the camera for this site (the camera icon in the address bar), then press Start camera. Image files below still work.";
  }
  if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError") {
    return "No camera was found. Plug one in and press Start camera, or classify image files below.";
  }
  if (name === "NotReadableError" || name === "TrackStartError") {
    return "The camera is in use by another app or could not start. Close that app and press Start camera.";
  }
  return `The camera did not start: ${(err && err.message) || err}. Image files below still work.`;
}

async function startCamera(state, deviceId) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    const secure = window.isSecureContext ? "" : ` Cameras need https or localhost; this page is served from ${location.origin}.`;
    ui.message(`This browser gives the page no camera.${secure} Image files below still work.`);
    hook.camera = "unavailable";
    return;
  }
  if (stream) stream.getTracks().forEach((t) => t.stop());
  const video = $("video");
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: deviceId ? { deviceId: { exact: deviceId } } : { width: { ideal: 640 }, height: { ideal: 480 } },
      audio: false,
    });
  } catch (err) {
    stream = null;
    hook.camera = err.name || "error";
    ui.message(cameraMessage(err));
    ui.status("Camera off");
    return;
  }
  ui.message("");
  video.srcObject = stream;
  await video.play();
  hook.camera = "live";
  $("placeholder").hidden = true;
  state.smoother.reset(); // another camera: the old scene is gone
  await listCameras(stream);
  ui.status("Live");
  if (!state.looping) {
    state.looping = true;
    liveLoop(state, video);
  }
}

async function listCameras(current) {
  const select = $("cameras");
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
  const active = current.getVideoTracks()[0]?.getSettings().deviceId;
  select.replaceChildren(...devices.map((d, i) => new Option(d.label || `Camera ${i + 1}`, d.deviceId, false, d.deviceId === active)));
  select.disabled = devices.length < 2;
}

function liveLoop(state, video) {
  const view = $("view");
  const ctx = view.getContext("2d", { willReadFrequently: true });
  let busy = false;
  let last = 0;
  let fps = 0;
  const next = (fn) => (video.requestVideoFrameCallback ? video.requestVideoFrameCallback(fn) : requestAnimationFrame(fn));
  const tick = async () => {
    if (!busy && video.videoWidth > 0 && stream) {
      busy = true;
      try {
        const width = video.videoWidth, height = video.videoHeight;
        if (view.width !== width || view.height !== height) [view.width, view.height] = [width, height];
        ctx.drawImage(video, 0, 0);
        const frame = ctx.getImageData(0, 0, width, height);
        const started = performance.now();
        const p = await state.model.classify(frame, { topK: state.site.topK, heatmap: state.heatmap && state.hasMaps });
        const latency = performance.now() - started;
        const now = performance.now();
        if (last) fps = fps ? 0.9 * fps + 0.1 * (1000 / (now - last)) : 1000 / (now - last);
        last = now;
        if (p.heatmap) drawHeatmap(ctx, p.heatmap);
        showLive(state, p, latency, fps);
        record(state, p, frame, latency);
      } catch (err) {
        fail(`Classifying the camera frame failed: ${err.message || err}`);
        return;
      } finally {
        busy = false;
      }
    }
    next(tick);
  };
  next(tick);
}

function showLive(state, p, latency, fps) {
  const smoothed = state.smoother.update(p.probabilities);
  const decision = decide(smoothed, state.card.labels, state.threshold, state.multilabel);
  const [text, uncertain] = headline(decision, state.threshold, state.site.smoothing);
  const h = $("headline");
  h.textContent = text;
  h.className = uncertain ? "headline uncertain" : "headline";
  drawBars($("bars"), p.topK);
  $("speed").textContent = `${fps.toFixed(1)} FPS · ${latency.toFixed(1)} ms`;
  hook.headline = text;
}

// Per classified frame: the answer and the frame's 8x8 mean gray, so a test can tell
// which picture of its video the frame showed without trusting timing.
function record(state, p, frame, latency) {
  hook.live.push({ label: p.label, index: p.index, latency, thumb: thumbnail(frame, 8), heatmap: Boolean(p.heatmap) });
  if (hook.live.length > 2000) hook.live.shift();
}

function thumbnail(frame, n) {
  const { data, width, height } = frame;
  const out = new Array(n * n).fill(0);
  const counts = new Array(n * n).fill(0);
  for (let y = 0; y < height; y += 2) {
    const row = Math.min(n - 1, Math.floor((y * n) / height));
    for (let x = 0; x < width; x += 2) {
      const cell = row * n + Math.min(n - 1, Math.floor((x * n) / width));
      const i = (y * width + x) * 4;
      out[cell] += (data[i] + data[i + 1] + data[i + 2]) / 3;
      counts[cell] += 1;
    }
  }
  return out.map((v, i) => v / Math.max(1, counts[i]));
}

// ---------------------------------------------------------------- drawing

function drawBars(list, topK) {
  list.replaceChildren(
    ...topK.map((c) => {
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = c.label;
      const track = document.createElement("span");
      track.className = "track";
      const fill = document.createElement("span");
      fill.className = "fill";
      fill.style.display = "block";
      fill.style.width = `${Math.round(100 * Math.min(1, Math.max(0, c.score)))}%`;
      track.append(fill);
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = c.score.toFixed(2);
      li.append(name, track, score);
      return li;
    }),
  );
}

// The JET color map blended with weight 0.45 * heat, as runtime/heatmap.py blend_heatmap.
function drawHeatmap(ctx, heat) {
  const { width, height, data } = heat;
  const image = ctx.getImageData(0, 0, width, height);
  const px = image.data;
  for (let i = 0; i < width * height; i++) {
    const v = data[i];
    if (v <= 0) continue;
    const w = 0.45 * v;
    const r = clamp01(1.5 - Math.abs(4 * v - 3)) * 255;
    const g = clamp01(1.5 - Math.abs(4 * v - 2)) * 255;
    const b = clamp01(1.5 - Math.abs(4 * v - 1)) * 255;
    px[4 * i] = px[4 * i] * (1 - w) + r * w;
    px[4 * i + 1] = px[4 * i + 1] * (1 - w) + g * w;
    px[4 * i + 2] = px[4 * i + 2] * (1 - w) + b * w;
  }
  ctx.putImageData(image, 0, 0);
}

const clamp01 = (x) => Math.min(1, Math.max(0, x));

// ---------------------------------------------------------------- files

function setupFiles(state) {
  $("file").addEventListener("change", (e) => classifyFiles(state, e.target.files));
  document.addEventListener("dragover", (e) => {
    e.preventDefault();
    document.body.classList.add("dragging");
  });
  document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    document.body.classList.remove("dragging");
    classifyFiles(state, e.dataTransfer.files);
  });
}

async function classifyFiles(state, files) {
  for (const file of files) {
    const item = document.createElement("li");
    const name = document.createElement("div");
    name.className = "file-name";
    name.textContent = file.name;
    item.append(name);
    $("results").prepend(item);
    try {
      const { p, canvas } = await classifyBlob(state, file, true);
      const h = document.createElement("div");
      h.className = "headline";
      h.textContent = `${p.label}  ${p.score.toFixed(2)}`;
      const bars = document.createElement("ol");
      bars.className = "bars";
      drawBars(bars, p.topK);
      item.append(canvas, h, bars);
    } catch (err) {
      const e = document.createElement("div");
      e.className = "error";
      e.textContent = `could not classify: ${err.message || err}`;
      item.append(e);
    }
  }
  hook.filesDone = (hook.filesDone || 0) + files.length;
}

// Decoded at natural size, EXIF orientation applied, no color management: OpenCV's
// imread does the same, so the page and Python classify the same pixels.
async function classifyBlob(state, blob, keepCanvas = false) {
  const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const canvas = document.createElement("canvas");
  [canvas.width, canvas.height] = [bitmap.width, bitmap.height];
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const frame = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const started = performance.now();
  const p = await state.model.classify(frame, { topK: state.site.topK, heatmap: state.hasMaps });
  const latency = performance.now() - started;
  if (p.heatmap) drawHeatmap(ctx, p.heatmap);
  if (keepCanvas) return { p, canvas };
  return { label: p.label, index: p.index, score: p.score, probabilities: Array.from(p.probabilities), latency, width: frame.width, height: frame.height };
}

function base64Blob(b64, type) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type });
}

start().catch((err) => fail(`The page could not start: ${err.message || err}`));
