// Types shared by the Node binding and the framework above it.

/** The type of a message: text arrives as a string, binary as a Buffer. */
export type MessageType = 'text' | 'binary';

/** What a hook may return: nothing, or a promise of nothing (its rejection is caught). */
export type MaybePromise<T> = T | Promise<T>;

/** Data `send` accepts: a string, a Buffer or any byte view, or an ArrayBuffer. */
export type SendData = string | Uint8Array | ArrayBuffer | ArrayBufferView;

/** The hooks of one connection, PEF::Front::WebSocket's on_open, on_message, ... Every one is optional. */
export interface WebSocketHooks {
  /** The 101 response has been flushed: the connection is open. */
  onOpen?(): MaybePromise<void>;
  /** A whole message, in arrival order: `string` for text, `Buffer` for binary. */
  onMessage?(message: string | Buffer, type: MessageType): MaybePromise<void>;
  /** Everything sent so far has been handed to the kernel (once per time the buffer empties). */
  onDrain?(): MaybePromise<void>;
  /** A protocol error (ProtocolError), a socket error, or an exception from another hook. */
  onError?(error: Error): MaybePromise<void>;
  /** The connection is over; called exactly once. 1005: the peer's Close had no code; 1006: no Close at all. */
  onClose?(code: number, reason: string): MaybePromise<void>;
}

/** Where errors that no hook can take (thrown by onError or onClose themselves) are reported. */
export interface Logger {
  /** Receives a message and the error, as console.error does. */
  error(...args: unknown[]): void;
  /** Receives warnings (a refused Origin, skipped handler files); `error` takes them when absent. */
  warn?(...args: unknown[]): void;
}
