// Pings and Pongs (RFC 6455 §5.5.2, §5.5.3): every Ping is answered by a Pong with its payload,
// unsolicited Pongs are ignored, a control frame carries at most 125 bytes. (Autobahn's family 2.)

import { binaryPayload, frameCase, ping, pong, type AuditCase } from '../case.js';

export const cases: AuditCase[] = [
  frameCase('ping.empty', 'a Ping without payload gets an empty Pong', 'RFC 6455 §5.5.2', [ping()]),
  frameCase('ping.text', 'a Ping with a short text payload gets a Pong with the same payload', 'RFC 6455 §5.5.2', [ping('Hello, world!')]),
  frameCase('ping.binary', 'a Ping with binary payload (bytes 00-ff) gets a Pong with the same bytes', 'RFC 6455 §5.5.2', [ping(Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]))]),
  frameCase('ping.125', 'a Ping with 125 bytes of payload (the most a control frame holds) gets its Pong', 'RFC 6455 §5.5', [ping(binaryPayload(125, 7))]),
  frameCase('ping.126', 'a Ping with 126 bytes of payload fails the connection with 1002', 'RFC 6455 §5.5', [ping(binaryPayload(126, 7))]),
  frameCase('ping.125-bytewise', 'a 125-byte Ping written one byte at a time gets its Pong', 'RFC 6455 §5.5.2', [ping(binaryPayload(125, 9))], { write: { chunkSize: 1 } }),
  frameCase('pong.unsolicited-empty', 'an unsolicited empty Pong is ignored', 'RFC 6455 §5.5.3', [pong()]),
  frameCase('pong.unsolicited', 'an unsolicited Pong with payload is ignored', 'RFC 6455 §5.5.3', [pong('unsolicited pong payload')]),
  frameCase('pong.then-ping', 'an unsolicited Pong, then a Ping: only the Ping is answered', 'RFC 6455 §5.5.3', [pong('unsolicited'), ping('solicited')]),
  frameCase('ping.ten', 'ten Pings in one write get ten Pongs with their payloads, in order', 'RFC 6455 §5.5.2, §5.5.3', Array.from({ length: 10 }, (_, i) => ping(`payload-${i}`))),
  frameCase('ping.ten-bytewise', 'ten Pings written one byte at a time get ten Pongs', 'RFC 6455 §5.5.2', Array.from({ length: 10 }, (_, i) => ping(`payload-${i}`)), { write: { chunkSize: 1 } }),
  frameCase('ping.fragmented', 'a Ping with FIN clear (a fragmented control frame) fails with 1002', 'RFC 6455 §5.5', [ping('frag', { fin: false }), ping('ment')]),
  frameCase('pong.fragmented', 'a Pong with FIN clear fails with 1002', 'RFC 6455 §5.5', [pong('frag', { fin: false }), pong('ment')]),
  frameCase('pong.126', 'a Pong with 126 bytes of payload fails with 1002', 'RFC 6455 §5.5', [pong(binaryPayload(126, 3))]),
];
