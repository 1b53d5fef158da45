/**
 * `vdispl abi decode|encode <kind>`: hex packets <-> JSON lines, for debugging and conformance.
 * Pure functions over text so they can be tested without processes; main.ts wires them to stdio.
 */
import { AbiError, fromHex, toHex } from '../abi/bytes.js';
import { ABI_KINDS, type AbiKindName, isAbiKindName } from '../abi/json.js';

/** Result of a run: lines for stdout, and at most one error line for stderr (exit status 2). */
export interface AbiRunResult {
  readonly out: string[];
  readonly error?: string;
}

export function parseKind(kind: string): { kind: AbiKindName } | { error: string } {
  if (isAbiKindName(kind)) return { kind };
  return { error: `unknown kind ${JSON.stringify(kind)} (kinds: ${Object.keys(ABI_KINDS).join(', ')})` };
}

/** Decodes a stream of packets given as hex (whitespace ignored), one JSON object per packet. */
export function abiDecode(kindName: AbiKindName, hexText: string): AbiRunResult {
  const kind = ABI_KINDS[kindName];
  const bytes = fromHex(hexText);
  if (!bytes.ok) return { out: [], error: bytes.error.message };
  const out: string[] = [];
  let pos = 0;
  let n = 1;
  while (pos < bytes.value.length) {
    const rest = bytes.value.subarray(pos);
    const size = kind.packetSize(rest);
    if (!size.ok) return { out, error: `packet ${n} at byte ${pos}: ${size.error.message}` };
    if (rest.length < size.value) {
      return {
        out,
        error: `packet ${n} at byte ${pos}: short packet: need ${size.value} bytes, got ${rest.length}`,
      };
    }
    const d = kind.decode(rest.subarray(0, size.value));
    if (!d.ok) return { out, error: `packet ${n} at byte ${pos}: ${d.error.message}` };
    out.push(JSON.stringify(d.value));
    pos += size.value;
    n++;
  }
  return { out };
}

/** Encodes JSON objects (one per line; blank lines skipped) to one hex packet per line. */
export function abiEncode(kindName: AbiKindName, jsonText: string): AbiRunResult {
  const kind = ABI_KINDS[kindName];
  const out: string[] = [];
  const lines = jsonText.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (e) {
      return { out, error: `line ${i + 1}: malformed JSON: ${(e as Error).message}` };
    }
    try {
      out.push(toHex(kind.encode(json)));
    } catch (e) {
      if (e instanceof AbiError) return { out, error: `line ${i + 1}: ${e.message}` };
      throw e;
    }
  }
  return { out };
}
