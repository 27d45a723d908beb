// The Sec-WebSocket-Extensions header of RFC 6455 §9.1: a list of extension offers, each a token
// with parameters that have no value, a token value or a quoted-string value. Parsed by one linear
// scan (no backtracking pattern); a header that breaks the grammar is reported as null, never thrown.

/** One extension offer: its name and its parameters in order (`true` for a parameter without a value). */
export interface ExtensionOffer {
  /** The extension token, in lower case. */
  readonly name: string;
  /** The parameters in order; names in lower case, values as sent (a quoted value unquoted). */
  readonly params: readonly (readonly [name: string, value: string | true])[];
}

/** RFC 7230 §3.2.6 tchar. */
function isTokenChar(code: number): boolean {
  // ! # $ % & ' * + - . ^ _ ` | ~ DIGIT ALPHA
  return (
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0x21 ||
    (code >= 0x23 && code <= 0x27) ||
    code === 0x2a ||
    code === 0x2b ||
    code === 0x2d ||
    code === 0x2e ||
    code === 0x5e ||
    code === 0x5f ||
    code === 0x60 ||
    code === 0x7c ||
    code === 0x7e
  );
}

const SPACE = 0x20;
const TAB = 0x09;
const COMMA = 0x2c;
const SEMICOLON = 0x3b;
const EQUALS = 0x3d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Parses a Sec-WebSocket-Extensions value into its offers, in the client's order of preference
 * (§9.1). Empty list elements are skipped (RFC 7230 §7). Returns null when the header breaks the
 * grammar: a missing token, a stray character, an unterminated quoted string, or a quoted value that
 * is not a token once unquoted (§9.1 requires it to be one).
 */
export function parseExtensionsHeader(header: string): ExtensionOffer[] | null {
  const offers: ExtensionOffer[] = [];
  const length = header.length;
  let i = 0;

  const skipSpace = (): void => {
    while (i < length) {
      const c = header.charCodeAt(i);
      if (c !== SPACE && c !== TAB) break;
      i++;
    }
  };
  const token = (): string | null => {
    const start = i;
    while (i < length && isTokenChar(header.charCodeAt(i))) i++;
    return i === start ? null : header.slice(start, i);
  };
  const quoted = (): string | null => {
    // At the opening quote. quoted-pair (`\x`) stands for x.
    i++;
    let value = '';
    while (i < length) {
      const c = header.charCodeAt(i);
      if (c === QUOTE) {
        i++;
        return value;
      }
      if (c === BACKSLASH) {
        i++;
        if (i >= length) return null;
      }
      value += header[i];
      i++;
    }
    return null;
  };

  for (;;) {
    skipSpace();
    if (i >= length) break;
    if (header.charCodeAt(i) === COMMA) {
      i++;
      continue;
    }
    const name = token();
    if (name === null) return null;
    const params: [string, string | true][] = [];
    skipSpace();
    while (i < length && header.charCodeAt(i) === SEMICOLON) {
      i++;
      skipSpace();
      const param = token();
      if (param === null) return null;
      skipSpace();
      let value: string | true = true;
      if (i < length && header.charCodeAt(i) === EQUALS) {
        i++;
        skipSpace();
        let raw: string | null;
        if (i < length && header.charCodeAt(i) === QUOTE) {
          raw = quoted();
          // §9.1: "the value after quoted-string unescaping MUST conform to the 'token' ABNF".
          if (raw === null || !isToken(raw)) return null;
        } else {
          raw = token();
          if (raw === null) return null;
        }
        value = raw;
        skipSpace();
      }
      params.push([param.toLowerCase(), value]);
    }
    if (i < length && header.charCodeAt(i) !== COMMA) return null;
    offers.push({ name: name.toLowerCase(), params });
  }
  return offers;
}

/** Whether `value` is an RFC 7230 token (one or more tchar): extension and subprotocol names (RFC 6455 §4.1, §9.1). */
export function isToken(value: string): boolean {
  if (value.length === 0) return false;
  for (let j = 0; j < value.length; j++) if (!isTokenChar(value.charCodeAt(j))) return false;
  return true;
}
