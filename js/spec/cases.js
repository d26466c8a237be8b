// Reading a cases folder (cases.json and the frames, models and heatmaps it names), as
// tests/export/jsfixtures.py writes it, and comparing answers with Python's.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const COMMITTED = fileURLToPath(new URL("./fixtures/", import.meta.url));

export function readCases(folder) {
  const manifest = JSON.parse(readFileSync(join(folder, "cases.json"), "utf-8"));
  return { folder, ...manifest };
}

export function frameOf(folder, c) {
  return { data: new Uint8Array(readFileSync(join(folder, c.frame))), width: c.width, height: c.height, format: c.format };
}

export function heatmapOf(folder, c) {
  const bytes = readFileSync(join(folder, c.heatmap));
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

export function maxAbsDiff(a, b) {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} and ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}
