// The ONNX file's metadata_props, read from the protobuf wire format.
//
// onnxruntime's JavaScript API (node and web) exposes no model metadata, so the model
// card embedded by `cnnport export` would be invisible to a page. This reads just the
// top level of the ModelProto: field 14 (metadata_props, repeated StringStringEntryProto
// with key = 1 and value = 2). Every other field, the graph with its weights included, is
// skipped by its length without being copied or decoded.

import { ProtobufError } from "./errors.js";

const METADATA_PROPS = 14;
const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

// A varint as a Number: exact up to 2**53, far above any length a 2 GB protobuf holds.
function readVarint(bytes, pos, end) {
  let value = 0;
  let factor = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new ProtobufError(`truncated varint at byte ${pos}`);
    const byte = bytes[pos++];
    value += (byte & 0x7f) * factor;
    if (byte < 0x80) return [value, pos];
    factor *= 128;
  }
  throw new ProtobufError(`varint longer than 10 bytes at byte ${pos}`);
}

// Calls visit(field, wireType, start, end) for each field of the message in
// bytes[begin, end); start/end delimit a length-delimited field's payload.
function forEachField(bytes, begin, end, visit) {
  let pos = begin;
  while (pos < end) {
    let key;
    [key, pos] = readVarint(bytes, pos, end);
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (field === 0) throw new ProtobufError(`field number 0 at byte ${pos}`);
    if (wireType === VARINT) {
      [, pos] = readVarint(bytes, pos, end);
    } else if (wireType === FIXED64) {
      pos += 8;
    } else if (wireType === FIXED32) {
      pos += 4;
    } else if (wireType === LENGTH_DELIMITED) {
      let length;
      [length, pos] = readVarint(bytes, pos, end);
      if (pos + length > end) {
        throw new ProtobufError(`field ${field} claims ${length} bytes at byte ${pos}, past the end (${end})`);
      }
      visit(field, wireType, pos, pos + length);
      pos += length;
    } else {
      throw new ProtobufError(`unsupported wire type ${wireType} (field ${field}) at byte ${pos}`);
    }
    if (pos > end) throw new ProtobufError(`field ${field} runs past the end of the message`);
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The metadata_props of a serialized ONNX ModelProto, as a plain object key -> value.
 *
 * @param {Uint8Array|ArrayBuffer} data the .onnx file's bytes
 * @returns {Record<string, string>}
 * @throws {ProtobufError} the bytes are not a protobuf message
 */
export function readMetadataProps(data) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  const props = {};
  forEachField(bytes, 0, bytes.length, (field, _wire, start, end) => {
    if (field !== METADATA_PROPS) return;
    let key = "";
    let value = "";
    forEachField(bytes, start, end, (entryField, _w, s, e) => {
      if (entryField === 1) key = utf8.decode(bytes.subarray(s, e));
      else if (entryField === 2) value = utf8.decode(bytes.subarray(s, e));
    });
    props[key] = value;
  });
  return props;
}
