// The Sans-I/O protocol core, for those who bind it to their own I/O.
export * from './constants.js';
export * from './errors.js';
export { applyMask } from './mask.js';
export { Utf8Validator, isValidUtf8 } from './utf8.js';
export * from './frame.js';
export { FrameParser, type FrameSink, type FrameParserOptions } from './parser.js';
export * from './connection.js';
export * from './handshake.js';
export * from './extensions.js';
export * from './deflate.js';
export * from './http.js';
export * from './client-handshake.js';
