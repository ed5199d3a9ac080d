// CloudEvents attribute values in HTTP headers (binary mode), as the HTTP protocol binding 1.0.2
// (section 3.1.3.2) writes and reads them. The SDK does neither: it sends a value as it is (Node then
// refuses any character above U+00FF in a header, and sends others as Latin-1) and reads the header text
// as it is, so an id sent as `caf%C3%A9` stayed `caf%C3%A9`, and raw UTF-8 bytes arrived as Latin-1
// (`cafÃ©`). Every `ce-*` header is decoded here before the SDK sees it, and encoded after it built one.
// Knative's own hops (the Go SDK, sdk-go v2.16.1 protocol/http) copy header values byte for byte, neither
// encoding nor decoding, so what a sender wrote is what arrives here, to be decoded exactly once.
import type { Headers } from 'cloudevents';
import type { Validated } from './validation.js';

/** Header names that carry CloudEvents attributes and extensions in binary mode. */
function isAttributeHeader(name: string): boolean {
  return name.toLowerCase().startsWith('ce-');
}

// fatal: invalid or overlong sequences throw; ignoreBOM: a leading U+FEFF is part of the value, kept.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The `ce-*` headers' values decoded as the binding says: a double-quoted value unquoted (RFC 7230
 * 3.2.6), then one round of percent-decoding whose bytes must be valid UTF-8 (an overlong `%C0%A0`
 * is refused, as the binding requires). Node reads header bytes as Latin-1, so raw bytes above 0x7F,
 * which a conforming sender never sends, are read back as the UTF-8 they were (as Go's servers,
 * Knative's among them, read them) or refused when they are not UTF-8; never kept as Latin-1 text.
 * Other headers are returned as they are. Every problem names its header.
 */
export function decodeAttributeHeaders(headers: Headers): Validated<Headers> {
  const out: Headers = {};
  const problems: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || !isAttributeHeader(name)) {
      out[name] = value;
      continue;
    }
    const decoded = (Array.isArray(value) ? value : [value]).map((v) => decodeValue(String(v)));
    const failed = decoded.find((d): d is { problem: string } => 'problem' in d);
    if (failed) {
      problems.push(`header ${name.toLowerCase()}: ${failed.problem}`);
      continue;
    }
    const texts = decoded.map((d) => (d as { text: string }).text);
    out[name] = Array.isArray(value) ? texts : texts[0]!;
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: out };
}

/** The `ce-*` headers' values percent-encoded as the binding says; other headers as they are. */
export function encodeAttributeHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const text = Array.isArray(value) ? value.join(', ') : String(value);
    out[name] = isAttributeHeader(name) ? percentEncode(text) : text;
  }
  return out;
}

/**
 * One value percent-encoded: space, double quote, percent, and everything outside printable ASCII
 * (U+0021 to U+007E) as the %XY of each of its UTF-8 bytes, upper-case; a surrogate pair is one
 * character.
 */
export function percentEncode(text: string): string {
  let out = '';
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (code >= 0x21 && code <= 0x7e && char !== '"' && char !== '%') {
      out += char;
      continue;
    }
    for (const byte of Buffer.from(char, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function decodeValue(raw: string): { text: string } | { problem: string } {
  // The bytes as they came: Node gives each header byte as one Latin-1 character.
  const bytes = Buffer.from(raw, 'latin1');
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { problem: 'holds bytes that are not UTF-8 (percent-encode them, CloudEvents HTTP binding 3.1.3.2)' };
  }
  if (text.startsWith('"')) {
    const unquoted = unquote(text);
    if (unquoted === undefined) return { problem: 'starts with a double quote but is not a quoted string (RFC 7230 3.2.6)' };
    text = unquoted;
  }
  return percentDecode(text);
}

/** RFC 7230 quoted-string: the text between the quotes, each backslash escape taken literally. */
function unquote(text: string): string | undefined {
  let out = '';
  for (let i = 1; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\') {
      if (i + 1 >= text.length) return undefined;
      out += text[++i];
    } else if (c === '"') {
      return i === text.length - 1 ? out : undefined;
    } else {
      out += c;
    }
  }
  return undefined;
}

/** One round of percent-decoding; the decoded bytes must be valid UTF-8. */
function percentDecode(text: string): { text: string } | { problem: string } {
  if (!text.includes('%')) return { text };
  const bytes: number[] = [];
  for (let i = 0; i < text.length;) {
    if (text[i] === '%') {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) {
        return { problem: `has "%" at character ${i + 1} not followed by two hexadecimal digits (a literal "%" is sent as %25)` };
      }
      bytes.push(Number.parseInt(hex, 16));
      i += 3;
      continue;
    }
    const char = String.fromCodePoint(text.codePointAt(i)!);
    bytes.push(...Buffer.from(char, 'utf8'));
    i += char.length;
  }
  try {
    return { text: utf8.decode(Uint8Array.from(bytes)) };
  } catch {
    return { problem: 'percent-encodes bytes that are not valid UTF-8' };
  }
}
