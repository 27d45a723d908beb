// Instantiating the small WebAssembly SIMD modules the protocol core ships as bytes (masking in
// mask.ts, UTF-8 decoding in utf8.ts), with one answer for every engine that cannot run them.

/** The part of the WebAssembly API used here (the project's TypeScript libs do not declare it). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}

/**
 * Compiles and instantiates `bytes` and returns the module's exports; null where this engine cannot
 * run it: no WebAssembly at all (as under --jitless), no SIMD (the module does not validate), or an
 * embedder that forbids compiling code at run time.
 */
export function instantiateWasm<Exports>(bytes: Uint8Array): Exports | null {
  try {
    const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
    if (wasm === undefined || !wasm.validate(bytes)) return null;
    return new wasm.Instance(new wasm.Module(bytes)).exports as Exports;
  } catch {
    return null;
  }
}
