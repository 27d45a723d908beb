// The opening handshake (RFC 6455 §4.1-§4.4, RFC 7230, RFC 7692 §5), which Autobahn never tests:
// a valid request is accepted with a correct 101; a request that breaks §4.2.1 is refused with an
// HTTP error; subprotocol and extension answers are ones the client offered, with valid parameters.

import type { AuditCase, HandshakeCase } from '../case.js';
import type { HandshakeExpectation } from '../model.js';
import type { RequestOptions } from '../wire.js';

const ACCEPT: HandshakeExpectation = { outcome: 'accept' };
/** An offer the server must decline (answer without it), not a reason to refuse the handshake. */
const DECLINE: HandshakeExpectation = {
  outcome: 'accept',
  ifRefused: { verdict: 'NON-STRICT', reason: 'RFC 7692 §5 asks the server to decline such an offer (a 101 without the extension), not to refuse the handshake' },
};
const BAD_REQUEST: HandshakeExpectation = { outcome: 'refuse', statuses: [400] };
const VERSION: HandshakeExpectation = {
  outcome: 'refuse',
  statuses: [426, 400],
  header: { name: 'Sec-WebSocket-Version', pattern: /(^|[\s,])13($|[\s,])/, rule: '§4.2.2 step 4 and §4.4: a version refusal names the versions the server speaks' },
};

function handshake(id: string, title: string, rfc: string, request: RequestOptions | ((url: URL) => RequestOptions), expect: HandshakeExpectation, note?: string): HandshakeCase {
  return note === undefined ? { kind: 'handshake', id, title, rfc, request, expect } : { kind: 'handshake', id, title, rfc, request, expect, note };
}

export const cases: AuditCase[] = [
  handshake('handshake.valid', 'a valid request is accepted with a 101 whose Sec-WebSocket-Accept is right', 'RFC 6455 §4.2.2', {}, ACCEPT),
  handshake('handshake.upgrade-case', 'Upgrade: WebSocket and Connection: upgrade in other letter cases are accepted', 'RFC 6455 §4.2.1 items 3-4', { headers: { Upgrade: 'WebSocket', Connection: 'upgrade' } }, ACCEPT),
  handshake('handshake.connection-list', 'Connection: keep-alive, Upgrade (a list, as Firefox sends) is accepted', 'RFC 6455 §4.2.1 item 4', { headers: { Connection: 'keep-alive, Upgrade' } }, ACCEPT),
  handshake('handshake.key-whitespace', 'a key with surrounding whitespace is accepted (field values are trimmed)', 'RFC 7230 §3.2.4', { rawLines: [], headers: { 'Sec-WebSocket-Key': ' dGhlIHNhbXBsZSBub25jZQ== ' }, key: 'dGhlIHNhbXBsZSBub25jZQ==' }, ACCEPT),
  handshake('handshake.key-missing', 'a request without Sec-WebSocket-Key is refused with 400', 'RFC 6455 §4.2.1 item 5', { headers: { 'Sec-WebSocket-Key': null } }, BAD_REQUEST),
  handshake('handshake.key-short', 'a key of 15 bytes (not 16) is refused with 400', 'RFC 6455 §4.2.1 item 5', { key: Buffer.alloc(15, 7).toString('base64') }, BAD_REQUEST),
  handshake('handshake.key-long', 'a key of 17 bytes is refused with 400', 'RFC 6455 §4.2.1 item 5', { key: Buffer.alloc(17, 7).toString('base64') }, BAD_REQUEST),
  handshake('handshake.key-not-base64', 'a key that is not base64 is refused with 400', 'RFC 6455 §4.2.1 item 5', { key: 'not base64 at all!!!!!==' }, BAD_REQUEST),
  handshake('handshake.key-twice', 'two Sec-WebSocket-Key fields are refused with 400', 'RFC 6455 §4.2.1 item 5, §11.3.1', { rawLines: ['Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA=='] }, BAD_REQUEST),
  handshake('handshake.version-missing', 'a request without Sec-WebSocket-Version is refused, naming version 13', 'RFC 6455 §4.2.1 item 6, §4.4', { headers: { 'Sec-WebSocket-Version': null } }, { outcome: 'refuse', statuses: [400, 426] }),
  handshake('handshake.version-8', 'version 8 (the hybi-10 draft) is refused with 426 and Sec-WebSocket-Version: 13, unless the server speaks it', 'RFC 6455 §4.2.2, §4.4', { headers: { 'Sec-WebSocket-Version': '8' } }, {
    ...VERSION,
    ifAccepted: { verdict: 'INFORMATIONAL', reason: 'the server also speaks version 8 (the hybi-10 draft; §4.4 lets a server speak several versions)' },
  }),
  handshake('handshake.version-14', 'version 14 (unknown) is refused with 426 and Sec-WebSocket-Version: 13', 'RFC 6455 §4.2.2, §4.4', { headers: { 'Sec-WebSocket-Version': '14' } }, VERSION),
  handshake('handshake.version-garbage', 'version "thirteen" is refused, naming version 13', 'RFC 6455 §4.4', { headers: { 'Sec-WebSocket-Version': 'thirteen' } }, VERSION),
  handshake('handshake.method-post', 'a POST upgrade is refused (405 names it)', 'RFC 6455 §4.2.1 item 1', { method: 'POST', headers: { 'Content-Length': '0' } }, { outcome: 'refuse', statuses: [405, 400] }),
  handshake('handshake.method-put', 'a PUT upgrade is refused (405 names it)', 'RFC 6455 §4.2.1 item 1', { method: 'PUT', headers: { 'Content-Length': '0' } }, { outcome: 'refuse', statuses: [405, 400] }),
  handshake('handshake.http-1.0', 'an HTTP/1.0 request is refused', 'RFC 6455 §4.2.1 item 1', { httpVersion: 'HTTP/1.0' }, { outcome: 'refuse', statuses: [400, 426, 505] }),
  handshake('handshake.host-missing', 'a request without Host is refused with 400', 'RFC 6455 §4.2.1 item 2, RFC 7230 §5.4', { headers: { Host: null } }, BAD_REQUEST),
  handshake('handshake.host-twice', 'a request with two Host fields is refused with 400', 'RFC 7230 §5.4', { rawLines: ['Host: example.com'] }, BAD_REQUEST),
  handshake('handshake.upgrade-missing', 'a request without Upgrade is not upgraded', 'RFC 6455 §4.2.1 item 3', { headers: { Upgrade: null } }, { outcome: 'refuse', statuses: [400, 426] }),
  handshake('handshake.upgrade-other', 'Upgrade: h2c is not upgraded to WebSocket', 'RFC 6455 §4.2.1 item 3', { headers: { Upgrade: 'h2c' } }, { outcome: 'refuse', statuses: [400, 426] }),
  handshake('handshake.connection-missing', 'a request whose Connection lacks "Upgrade" is not upgraded', 'RFC 6455 §4.2.1 item 4', { headers: { Connection: 'keep-alive' } }, { outcome: 'refuse', statuses: [400, 426] }),
  handshake('handshake.body', 'an upgrade request with a body (Content-Length: 5) is refused with 400', 'RFC 6455 §4.1 (a GET with no body), RFC 7231 §4.3.1', { headers: { 'Content-Length': '5' }, body: Buffer.from('hello') }, BAD_REQUEST),
  handshake('handshake.expect-continue', 'Expect: 100-continue gets 100 Continue before the 101, or a refusal (417)', 'RFC 9110 §7.8, §10.1.1', { headers: { Expect: '100-continue' } }, { outcome: 'either', continueFirst: true }),
  handshake('handshake.origin-same', 'an Origin naming the server itself is accepted', 'RFC 6455 §4.2.1 item 7, §10.2', (url) => ({ headers: { Origin: `http://${url.host}` } }), ACCEPT),
  handshake('handshake.origin-foreign', 'an Origin naming another site may be refused (403) or accepted', 'RFC 6455 §10.2', { headers: { Origin: 'http://attacker.example' } }, { outcome: 'either' }),
  handshake('handshake.protocol-offered', 'with subprotocols offered, the answer is one of them or none', 'RFC 6455 §4.1 item 6, §4.2.2', { headers: { 'Sec-WebSocket-Protocol': 'chat, superchat' } }, ACCEPT),
  handshake('handshake.protocol-none', 'with no subprotocol offered, none is answered', 'RFC 6455 §4.1 item 6', {}, ACCEPT),
  handshake('handshake.extension-unknown', 'an unknown extension offered is not answered', 'RFC 6455 §4.1 item 5, §9.1', { headers: { 'Sec-WebSocket-Extensions': 'x-unknown-extension; level=3' } }, DECLINE),
  handshake('handshake.deflate-unknown-param', 'permessage-deflate with an unknown parameter is declined', 'RFC 7692 §5, §7.1', { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; bogus_param=1' } }, DECLINE),
  handshake('handshake.deflate-bad-window', 'permessage-deflate; server_max_window_bits=7 (out of range) is declined', 'RFC 7692 §7.1.2.1', { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; server_max_window_bits=7' } }, DECLINE),
  handshake('handshake.deflate-repeated-param', 'permessage-deflate with a repeated parameter is declined', 'RFC 7692 §7.1', { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; server_no_context_takeover; server_no_context_takeover' } }, DECLINE),
  handshake('handshake.deflate-two-offers', 'two permessage-deflate offers: the answer accepts one of them', 'RFC 7692 §5', { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; server_max_window_bits=10; client_max_window_bits, permessage-deflate' } }, ACCEPT),
  handshake('handshake.deflate-window', 'server_max_window_bits=9 offered: the answer carries a value of at most 9', 'RFC 7692 §7.1.2.1', { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; server_max_window_bits=9' } }, ACCEPT),
  handshake('handshake.deflate-client-window', 'client_max_window_bits without a value: an answer, if any, is 8-15', 'RFC 7692 §7.1.2.2', { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' } }, ACCEPT),
  handshake('handshake.header-folded', 'a folded header line (obsolete line folding) is refused with 400', 'RFC 7230 §3.2.4', { rawLines: ['X-Folded: first', ' second'] }, BAD_REQUEST),
];
