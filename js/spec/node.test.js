import * as ort from "onnxruntime-node";

import { parity } from "./suite.js";

parity("onnxruntime-node", ort, { executionProviders: ["cpu"] });
