/**
 * C-made packets (gen/abi-vectors/gen.c fills the real Xen structs with random values, u64s
 * with the top bit set, u32 extremes, statuses down to INT32_MIN, dirty reserved bytes and
 * unknown operations) decoded and re-encoded by the TypeScript layer, byte for byte.
 */
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../../src/abi/bytes.js';
import { ABI_KIND_NAMES, ABI_KINDS } from '../../../src/abi/json.js';
import { loadPackets } from '../../support/abi-fixtures.js';

describe.each(ABI_KIND_NAMES)('%s packets from C', (kindName) => {
  const kind = ABI_KINDS[kindName];
  const packets = loadPackets(kindName);

  it('has a meaningful number of vectors', () => {
    expect(packets.length).toBeGreaterThanOrEqual(kindName === 'pgdir' ? 200 : 250);
  });

  it('decodes the C bytes to the C field values', () => {
    for (const p of packets) {
      const bytes = fromHex(p.hex);
      if (!bytes.ok) throw bytes.error;
      const size = kind.packetSize(bytes.value);
      expect(size.ok && size.value).toBe(bytes.value.length);
      const d = kind.decode(bytes.value);
      expect(d.ok ? d.value : d.error.message, p.hex).toEqual(p.fields);
    }
  });

  it('encodes the C field values to the C bytes (reserved bytes zeroed)', () => {
    let exact = 0;
    for (const p of packets) {
      const bytes = kind.encode(p.fields);
      if (p.fields.reserved_nonzero) {
        // The encoder writes reserved bytes as zero: same fields, clean packet.
        const again = kind.decode(bytes);
        const { reserved_nonzero: _, ...clean } = p.fields;
        expect(again.ok && again.value).toEqual(clean);
      } else {
        expect(toHex(bytes), JSON.stringify(p.fields)).toBe(p.hex);
        exact++;
      }
    }
    expect(exact).toBeGreaterThan(packets.length / 2);
  });
});
