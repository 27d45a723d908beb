// RFC 6455 §5.3 masking: the WebAssembly SIMD path and the JS word loop give the same bytes as the
// definition (octet i XOR mask[(phase + i) % 4]) at every length, memory alignment and mask phase,
// and the JS loop takes over where WebAssembly SIMD is unavailable.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { applyMask, applyMaskSimd, maskImplementation, maskInto, maskJs } from '../../src/protocol/mask.js';

const MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
const maskModule = fileURLToPath(new URL('../../src/protocol/mask.ts', import.meta.url));

/** The definition of §5.3, a byte at a time. */
function reference(data: Uint8Array, mask: Uint8Array, phase: number): Buffer {
  const out = Buffer.from(data);
  for (let i = 0; i < out.length; i++) out[i] ^= mask[(phase + i) & 3]!;
  return out;
}

/** Bytes 0, 1, 2, ... 250, 0, 1, ... (a period prime to 4, so a wrong phase shows). */
function pattern(length: number): Buffer {
  const data = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) data[i] = i % 251;
  return data;
}

/** `length` pattern bytes placed `alignment` bytes past the start of a fresh ArrayBuffer, guarded by 0xee on both sides. */
function placed(length: number, alignment: number): { whole: Buffer; view: Buffer } {
  const whole = Buffer.from(new ArrayBuffer(length + alignment + 8));
  whole.fill(0xee);
  const view = whole.subarray(alignment, alignment + length);
  pattern(length).copy(view);
  return { whole, view };
}

type Masker = (data: Uint8Array, mask: Uint8Array, phase?: number) => number;

function checkAll(name: string, masker: Masker, lengths: number[]): void {
  for (const length of lengths) {
    for (let alignment = 0; alignment < 4; alignment++) {
      for (let phase = 0; phase < 4; phase++) {
        const { whole, view } = placed(length, alignment);
        const expected = reference(pattern(length), MASK, phase);
        const next = masker(view, MASK, phase);
        const where = `${name}: length ${length}, alignment ${alignment}, phase ${phase}`;
        assert.equal(next, (phase + length) & 3, where);
        assert.deepEqual(view, expected, where);
        // Nothing outside the view was touched.
        assert.ok(whole.subarray(0, alignment).every((b) => b === 0xee), where);
        assert.ok(whole.subarray(alignment + length).every((b) => b === 0xee), where);
      }
    }
  }
}

const SHORT = Array.from({ length: 301 }, (_, i) => i);
// Around the 16 KiB piece the SIMD path works in, and a payload of many pieces with a tail.
const LONG = [16383, 16384, 16385, 16384 * 3 + 61, 100_003];

describe('5.3 Masking', () => {
  test('this Node runs the WebAssembly SIMD path', () => {
    assert.equal(maskImplementation(), 'wasm-simd');
  });

  test('the SIMD path gives the bytes of the definition at every length 0..300, alignment and phase', () => {
    checkAll('simd', applyMaskSimd, SHORT);
  });

  test('the JS word loop gives the bytes of the definition at every length 0..300, alignment and phase', () => {
    checkAll('js', maskJs, SHORT);
  });

  test('SIMD and JS agree on payloads spanning several 16 KiB pieces', () => {
    checkAll('simd', applyMaskSimd, LONG);
    checkAll('js', maskJs, LONG);
  });

  test('applyMask (whichever path it picks by length) gives the bytes of the definition', () => {
    checkAll('applyMask', applyMask, [...SHORT, ...LONG]);
  });

  test('a payload masked piece by piece, carrying the phase, equals it masked whole', () => {
    const whole = pattern(5000);
    const expected = reference(whole, MASK, 0);
    const pieces = Buffer.from(whole);
    let phase = 0;
    for (const [start, end] of [[0, 3], [3, 200], [200, 201], [201, 4097], [4097, 5000]] as const) {
      phase = applyMask(pieces.subarray(start, end), MASK, phase);
    }
    assert.equal(phase, 5000 & 3);
    assert.deepEqual(pieces, expected);
  });

  test('masking twice restores the payload', () => {
    const data = pattern(1 << 20);
    applyMask(data, MASK, 2);
    applyMask(data, MASK, 2);
    assert.deepEqual(data, pattern(1 << 20));
  });
});

describe('fallback without WebAssembly SIMD', () => {
  // Each case runs in a fresh process, since the module decides once which path it has.
  const script = `
    import { applyMask, maskImplementation } from ${JSON.stringify(maskModule)};
    const data = Buffer.alloc(70000, 0x5a);
    const next = applyMask(data.subarray(1), Buffer.from([1, 2, 3, 4]), 3);
    const ok = data[0] === 0x5a && data.subarray(1).every((b, i) => b === (0x5a ^ [4, 1, 2, 3][i & 3]));
    process.stdout.write(JSON.stringify({ implementation: maskImplementation(), next, ok }));
  `;

  function run(nodeArgs: string[]): unknown {
    const out = execFileSync(process.execPath, [...nodeArgs, '--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return JSON.parse(out);
  }

  test('an engine that rejects the SIMD opcodes gets the JS loop, with the same bytes', () => {
    // What WebAssembly.validate answers on an engine without SIMD: the module does not validate.
    const preload = `data:text/javascript,${encodeURIComponent('globalThis.WebAssembly.validate = () => false;')}`;
    assert.deepEqual(run(['--import', preload]), { implementation: 'js', next: (3 + 69999) & 3, ok: true });
  });

  test('an engine without WebAssembly at all (--jitless) gets the JS loop, with the same bytes', () => {
    assert.deepEqual(run(['--jitless']), { implementation: 'js', next: (3 + 69999) & 3, ok: true });
  });

  test('the SIMD path refuses to run where it is unavailable', () => {
    const refuse = `
      import { applyMaskSimd } from ${JSON.stringify(maskModule)};
      try { applyMaskSimd(new Uint8Array(8), new Uint8Array(4)); process.stdout.write('ran'); }
      catch (error) { process.stdout.write(error.message); }
    `;
    const out = execFileSync(process.execPath, ['--jitless', '--import', 'tsx', '--input-type=module', '-e', refuse], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    assert.equal(out, 'WebAssembly SIMD is not available here');
  });
});

describe('maskInto: unmasking one buffer into another', () => {
  test('gives the definition\'s bytes at every length, offset and phase, and leaves the source as it was', () => {
    // Below 96 bytes the JS loop, from there WebAssembly SIMD, in chunks of 16 KiB.
    for (const length of [0, 1, 3, 95, 96, 97, 1000, 16 * 1024, 16 * 1024 + 5, 40_001]) {
      for (const offset of [0, 1, 7]) {
        for (const phase of [0, 1, 2, 3]) {
          const source = pattern(length);
          const target = Buffer.alloc(offset + length + 3, 0xee);
          const next = maskInto(target, offset, source, MASK, phase);
          const where = `length ${length}, offset ${offset}, phase ${phase}`;
          assert.equal(next, (phase + length) & 3, where);
          assert.ok(source.equals(pattern(length)), `source untouched: ${where}`);
          assert.ok(target.subarray(offset, offset + length).equals(reference(pattern(length), MASK, phase)), where);
          assert.ok(target.subarray(0, offset).every((b) => b === 0xee) && target.subarray(offset + length).every((b) => b === 0xee), `guards: ${where}`);
        }
      }
    }
  });

  test('a source that does not fit is a RangeError, and nothing is written', () => {
    const target = Buffer.alloc(10, 0xee);
    assert.throws(() => maskInto(target, 4, pattern(7), MASK), { name: 'RangeError', message: 'maskInto: 7 bytes do not fit at 4 of 10' });
    assert.ok(target.every((b) => b === 0xee));
  });
});
