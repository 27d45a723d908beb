// The upgrade request as an open connection keeps it (`connection.request`, `this.request` in a
// handler; PEF's `$self->{_request}`): its request line, its header fields and its socket, and not
// node:http's IncomingMessage, whose stream state, raw header list and listeners an open
// WebSocket never needs (about 0.6 KB a connection, docs/benchmarks.md "Memory per connection").

import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/**
 * What stays of an upgrade request once the connection is open. On a server it comes from
 * node:http's IncomingMessage (the upgrade hook, `selectProtocol` and `origins` get that one, whole);
 * on a client it is the request as sent.
 */
export class UpgradeRequest {
  /** The method: always `'GET'` (RFC 6455 §4.1). */
  readonly method: string;
  /** The request target: path and query string, as received (`/wsChat?room=a`). */
  readonly url: string;
  /** The HTTP version, `'1.1'` (RFC 6455 §4.1 asks for at least 1.1). */
  readonly httpVersion: string;
  /** The header fields, names in lower case, as node:http joins them (IncomingMessage's `headers`). */
  readonly headers: IncomingHttpHeaders;
  /** The connection's socket (a TLSSocket over TLS): `remoteAddress`, `remotePort`, `encrypted`. */
  readonly socket: Socket;

  constructor(method: string, url: string, httpVersion: string, headers: IncomingHttpHeaders, socket: Socket) {
    this.method = method;
    this.url = url;
    // The common version as one shared string, not one per connection.
    this.httpVersion = httpVersion === '1.1' ? '1.1' : httpVersion;
    this.headers = headers;
    this.socket = socket;
  }

  /** What a connection keeps of node:http's request: the same `headers` object and socket. */
  static from(request: IncomingMessage): UpgradeRequest {
    return new UpgradeRequest(request.method ?? 'GET', request.url ?? '/', request.httpVersion, request.headers, request.socket);
  }
}
