// Text decoding (src/protocol/utf8.ts decodeUtf8): the same string as Buffer#toString('utf8') for
// valid UTF-8 of every shape the decoder distinguishes (ASCII blocks of 16 bytes for SIMD, 1-4 byte
// code points, pieces of 32 KiB cut before a code point), through WebAssembly and through V8's own
// decoder where WebAssembly SIMD is unavailable; and the shipped WebAssembly bytes are exactly the
// WAT text printed beside them in the source.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';
import { decodeUtf8, utf8DecoderImplementation } from '../../src/protocol/utf8.js';

const utf8Module = fileURLToPath(new URL('../../src/protocol/utf8.ts', import.meta.url));

/** One character of each UTF-8 length: 1, 2, 3 and 4 bytes (the last a surrogate pair in UTF-16). */
const CHARS = ['a', 'é', '✓', '😀'];

describe('decodeUtf8', () => {
  test('WebAssembly SIMD decodes here', () => {
    assert.equal(utf8DecoderImplementation(), 'wasm-simd');
  });

  test('gives the string toString gives, for every character length at every offset of a 16-byte block', () => {
    for (const char of CHARS) {
      for (let before = 0; before < 40; before++) {
        for (const after of [0, 1, 15, 16, 17, 300]) {
          const text = 'x'.repeat(before) + char + 'y'.repeat(after) + char;
          const bytes = Buffer.from(text, 'utf8');
          assert.equal(decodeUtf8(bytes), text, `${JSON.stringify(char)} after ${before}, then ${after}`);
        }
      }
    }
  });

  test('a run of code points of mixed lengths, then ASCII or the end, at every offset of a 16-byte block', () => {
    // The decoder keeps a block's ASCII bytes before its first non-ASCII one, then decodes code
    // points one at a time up to the next ASCII byte: each run ends at ASCII, at the end, or at 16 bytes.
    const runs = ['é✓😀ü', 'ЖЖЖЖЖЖЖЖЖЖ', '中文字符串', '😀😀😀', 'é'.repeat(9) + '✓'];
    for (const run of runs) {
      for (let before = 0; before < 20; before++) {
        for (const after of ['', 'z', 'z'.repeat(15), 'z'.repeat(16) + run, ' ' + run + ' ']) {
          const text = 'x'.repeat(before) + run + after;
          assert.equal(decodeUtf8(Buffer.from(text.repeat(20), 'utf8')), text.repeat(20), `${JSON.stringify(run)} after ${before}, then ${JSON.stringify(after)}`);
        }
      }
    }
  });

  test('code points of 1-3 bytes eight bytes at a time: every way they cross the 8th byte, and a 4-byte one or the end after', () => {
    // The decoder takes the code points that start in 8 bytes at once; the last may end in bytes 8
    // and 9, which the next step skips, as the one-at-a-time decoding does after it leaves (a 4-byte
    // code point, or fewer than 16 bytes left).
    const ends = ['', '😀', 'z', '😀' + 'é'.repeat(12), 'é'.repeat(12), '😀😀' + '✓'.repeat(9) + '😀' + 'ж'.repeat(20)];
    for (const head of ['ab', 'é', '✓', 'éé', 'é✓', '✓é']) {
      for (let fill = 0; fill < 8; fill++) {
        for (const next of ['é', '✓', '😀', 'a']) {
          for (let after = 0; after < 24; after++) {
            for (const end of ends) {
              // `head` and `fill` 2-byte code points put `next` at each offset of the first 8 bytes
              // (after more than SMALL_TEXT_MAX bytes: shorter text is decoded by V8).
              const text = 'x'.repeat(300) + head + 'ж'.repeat(fill) + next + 'ё'.repeat(after) + end;
              assert.equal(decodeUtf8(Buffer.from(text, 'utf8')), text, JSON.stringify(text));
            }
          }
        }
      }
    }
  });

  test('text of code points of every length in random order, against toString', () => {
    // A fixed seed: the same texts every run.
    let seed = 0x2545f491;
    const random = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const alphabets = [['a', 'é'], ['é', 'ж', '✓'], ['a', 'b', 'é', '✓', '中'], ['a', 'é', '✓', '😀'], ['ж', ' ']];
    for (let i = 0; i < 4000; i++) {
      const alphabet = alphabets[i % alphabets.length]!;
      let text = '';
      const length = 260 + random(200); // over SMALL_TEXT_MAX bytes: shorter text is decoded by V8
      for (let j = 0; j < length; j++) text += alphabet[random(alphabet.length)];
      const bytes = Buffer.from(text, 'utf8');
      assert.equal(decodeUtf8(bytes), bytes.toString('utf8'), JSON.stringify(text));
    }
  });

  test('a code point straddling the 32 KiB piece boundary stays whole', () => {
    for (const char of CHARS) {
      for (let shift = 0; shift < 5; shift++) {
        // The character's bytes start at 32768 - shift: inside it for shift 1-3 (by its length).
        const text = 'a'.repeat(32 * 1024 - shift) + char + 'b'.repeat(100) + char.repeat(20_000);
        const bytes = Buffer.from(text, 'utf8');
        assert.equal(decodeUtf8(bytes), text, `${JSON.stringify(char)} at 32768 - ${shift}`);
      }
    }
  });

  test('large text of each kind: all ASCII, mixed, only multi-byte', () => {
    for (const text of [
      '{"a":1}'.repeat(150_000),
      'café ✓ 😀 plain ascii words here '.repeat(40_000),
      'Съешь же ещё этих 😀'.repeat(30_000),
    ]) {
      assert.equal(decodeUtf8(Buffer.from(text, 'utf8')), text);
    }
  });

  test('short text and the empty message', () => {
    assert.equal(decodeUtf8(Buffer.alloc(0)), '');
    assert.equal(decodeUtf8(Buffer.from('héllo')), 'héllo');
  });

  test('a view at an odd offset of a larger buffer decodes only its own bytes', () => {
    const whole = Buffer.from('#'.repeat(7) + 'ü✓'.repeat(400) + '#'.repeat(9), 'utf8');
    const view = whole.subarray(7, whole.length - 9);
    assert.equal(decodeUtf8(view), 'ü✓'.repeat(400));
  });
});

describe('decodeUtf8 without WebAssembly SIMD', () => {
  const script = `
    import { decodeUtf8, utf8DecoderImplementation } from ${JSON.stringify(utf8Module)};
    const text = 'café ✓ 😀 '.repeat(9000);
    process.stdout.write(JSON.stringify({ implementation: utf8DecoderImplementation(), same: decodeUtf8(Buffer.from(text)) === text }));
  `;
  const run = (nodeArgs: string[]): unknown =>
    JSON.parse(execFileSync(process.execPath, [...nodeArgs, '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));

  test('an engine that rejects the SIMD opcodes decodes with V8, to the same string', () => {
    const preload = `data:text/javascript,${encodeURIComponent('globalThis.WebAssembly.validate = () => false;')}`;
    assert.deepEqual(run(['--import', preload]), { implementation: 'v8', same: true });
  });

  test('an engine without WebAssembly at all (--jitless) decodes with V8, to the same string', () => {
    assert.deepEqual(run(['--jitless']), { implementation: 'v8', same: true });
  });
});

describe('the shipped decoder', () => {
  test('its bytes are the WAT text in the source, assembled by wabt', async () => {
    const source = readFileSync(utf8Module, 'utf8');
    const block = /WAT begin\n([\s\S]*?)\n \* WAT end/.exec(source);
    assert.ok(block, 'the WAT text is in the source between "WAT begin" and "WAT end"');
    const wat = block[1]!.split('\n').map((line) => line.replace(/^ \*( |$)/, '')).join('\n');
    const shipped = /const DECODER_WASM = '([A-Za-z0-9+/=]+)';/.exec(source);
    assert.ok(shipped);
    const wabt = await wabtInit();
    const module = wabt.parseWat('decoder.wat', wat, { simd: true });
    const { buffer } = module.toBinary({});
    module.destroy();
    assert.equal(Buffer.from(buffer).toString('base64'), shipped[1]);
  });
});
