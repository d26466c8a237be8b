// Where model bytes come from: bytes given, a URL (fetch: the browser, or Node.js for
// http/https), or a file path (Node.js only; node:fs is imported only when a path is read,
// so a page never loads it).

import { InputError, ModelLoadError } from "./errors.js";

const FETCHED = /^(https?|blob|data):/i;
const isNode = typeof process !== "undefined" && typeof process.versions?.node === "string";

/** Whether a string source is fetched: any string in a page; an http(s), blob or data URL in Node.js. */
export function isFetched(source) {
  return !isNode || FETCHED.test(String(source));
}

/**
 * The bytes (or text) of `source`.
 *
 * @param {Uint8Array|ArrayBuffer|string} source
 * @param {object} [options] {text: return a string; missingOk: return null when not found}
 */
export async function readSource(source, { text = false, missingOk = false } = {}) {
  if (source instanceof Uint8Array) return text ? new TextDecoder().decode(source) : source;
  if (source instanceof ArrayBuffer) return readSource(new Uint8Array(source), { text });
  if (typeof source !== "string" && !(source instanceof URL)) {
    throw new InputError(
      `a model source must be a Uint8Array, an ArrayBuffer, a URL or a file path; received ${source?.constructor?.name ?? typeof source}`,
    );
  }
  const name = String(source);
  if (isFetched(name)) return fetchSource(name, text, missingOk);
  const { readFile } = await import("node:fs/promises");
  const path = /^file:/i.test(name) ? new URL(name) : name;
  try {
    const data = await readFile(path);
    return text ? data.toString("utf-8") : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } catch (error) {
    if (error.code === "ENOENT" && missingOk) return null;
    throw new ModelLoadError(`cannot read '${name}': ${error.code === "ENOENT" ? "no such file" : error.message}`, {
      cause: error,
    });
  }
}

async function fetchSource(url, text, missingOk) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new ModelLoadError(`cannot fetch '${url}': ${error.message}`, { cause: error });
  }
  if (!response.ok) {
    if (missingOk && response.status === 404) return null;
    throw new ModelLoadError(`cannot fetch '${url}': HTTP ${response.status} ${response.statusText}`);
  }
  return text ? response.text() : new Uint8Array(await response.arrayBuffer());
}

/** `digits.frame-rgba.onnx` -> `digits.frame-rgba.card.json` (URL query kept); null for bytes. */
export function sidecarOf(source) {
  if (typeof source !== "string" && !(source instanceof URL)) return null;
  const name = String(source);
  const match = /^(.*?)(\.onnx|\.ort)?([?#].*)?$/s.exec(name);
  return `${match[1]}.card.json${match[3] ?? ""}`;
}
