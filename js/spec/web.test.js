// onnxruntime-web's WASM backend, run in Node.js: the code a page runs.
import * as ort from "onnxruntime-web";

import { parity } from "./suite.js";

ort.env.wasm.numThreads = 1; // as a page without cross-origin isolation gets
parity("onnxruntime-web (wasm)", ort, { executionProviders: ["wasm"] });
