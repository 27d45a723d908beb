// Named numbers of RFC 6455: opcodes (§5.2, §11.8), close codes (§7.4, §11.7), the handshake GUID (§1.3)
// and the defaults every layer shares. No logic compares against a bare literal: it names one of these.

/** Frame opcodes, RFC 6455 §5.2. */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** Close status codes, RFC 6455 §7.4.1 and the IANA registry (§11.7). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  /** Reserved: never sent; reported when a Close frame carried no code (§7.1.5). */
  NoStatusReceived: 1005,
  /** Reserved: never sent; reported when the connection dropped without a Close frame (§7.1.5). */
  Abnormal: 1006,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  MandatoryExtension: 1010,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
  BadGateway: 1014,
  /** Reserved: never sent (TLS handshake failure). */
  TlsHandshake: 1015,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** The GUID appended to Sec-WebSocket-Key before hashing, RFC 6455 §1.3 and §4.2.2. */
export const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The only protocol version this implementation speaks, RFC 6455 §4.1 and §4.4. */
export const WEBSOCKET_VERSION = '13';

/** The longest payload a control frame may have, RFC 6455 §5.5. */
export const MAX_CONTROL_PAYLOAD = 125;

/** The longest close reason: a control payload less the two bytes of the code (§5.5.1). */
export const MAX_CLOSE_REASON_BYTES = MAX_CONTROL_PAYLOAD - 2;

/** Default size limit of one message, reassembled: 1 MiB, python-websockets' choice. */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/** RSV bits of the first header byte, RFC 6455 §5.2. */
export const RSV1 = 0x40;
/** RSV2, unused by any registered extension. */
export const RSV2 = 0x20;
/** RSV3, unused by any registered extension. */
export const RSV3 = 0x10;

/**
 * Whether `code` may be sent in (or accepted from) a Close frame, RFC 6455 §7.4.
 * 1000-1003 and 1007-1014 are the defined codes; 1004 is reserved, 1005, 1006 and 1015 are for
 * reporting only and never go on the wire; 3000-3999 are registered, 4000-4999 private use.
 */
export function isValidCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1003) ||
    (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999)
  );
}

/** Whether an opcode is a control opcode (§5.5): its high bit is set. */
export function isControlOpcode(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}
