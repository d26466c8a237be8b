#!/usr/bin/env node
// Converts a raw frame between channel orders with the module's convertFrame, for tests
// that compare it with Python's to_frame_color:
//
//   node js/tools/convert.mjs IN.bin WIDTH HEIGHT FROM TO OUT.bin

import { readFileSync, writeFileSync } from "node:fs";

import { convertFrame } from "../src/frame.js";

const [input, width, height, from, to, output] = process.argv.slice(2);
const data = new Uint8Array(readFileSync(input));
writeFileSync(output, convertFrame(data, Number(width), Number(height), from, to));
