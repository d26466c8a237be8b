// The errors this module throws, one tree (as runtime/errors.py in Python):
//
//   CnnportError
//   ├── CardError        the card is missing, not JSON, or a field is not accepted
//   ├── ModelLoadError   the model cannot be read, or its graph does not match its card
//   └── InputError       a frame or an option that cannot be used
//
// ProtobufError (bytes that are not a protobuf message) is a ModelLoadError.

export class CnnportError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class CardError extends CnnportError {}

export class ModelLoadError extends CnnportError {}

export class ProtobufError extends ModelLoadError {}

export class InputError extends CnnportError {}
