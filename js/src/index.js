// cnnport's JavaScript module: a cnnport model (.onnx with its card) on onnxruntime-node
// or onnxruntime-web, frame in, prediction out. See js/README.md.

export { COLORS, FRAME_CHANNELS, FRAME_COLORS, METADATA_KEY, SCHEMA_VERSION, graphInput, parseCard } from "./card.js";
export { CardError, CnnportError, InputError, ModelLoadError, ProtobufError } from "./errors.js";
export { convertFrame, normalizeFrame } from "./frame.js";
export { cropWindow, heatmapFor, resizeLinear } from "./heatmap.js";
export { frameFromImage, classifyImage } from "./image.js";
export { Model, loadModel } from "./model.js";
export { readMetadataProps } from "./protobuf.js";
