// pef-front-websocket: the public API.
export { acceptWebSocket, rejectUpgrade } from './node/upgrade.js';
export { WebSocketConnection } from './node/transport.js';
export type { SendOptions } from './node/transport.js';
export { permessageDeflate, deflateMemory, DEFAULT_DEFLATE_OPTIONS } from './protocol/deflate.js';
export type { PerMessageDeflateOptions } from './protocol/deflate.js';
export type { WebSocketOptions } from './node/options.js';
export type { OriginPolicy } from './node/origin.js';
export type { TraceOption, OpenMessage, CloseMessage, ErrorMessage, FrameMessage, BackpressureMessage } from './node/trace.js';
export type { MessageType, MaybePromise, SendData, WebSocketHooks, Logger } from './node/types.js';
export { CloseCode, Opcode } from './protocol/constants.js';
export { ProtocolError, HandshakeError } from './protocol/errors.js';
export type { ProtocolErrorCode, HandshakeErrorCode } from './protocol/errors.js';
export { WebSocketHandler } from './framework/handler.js';
export type { HandlerClass } from './framework/handler.js';
export { WebSocketRouter } from './framework/router.js';
export type { UpgradeServer } from './framework/router.js';
export { HandlerLoadError } from './framework/discover.js';
