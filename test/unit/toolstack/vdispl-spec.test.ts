/**
 * The xl.cfg `vdispl` spec parser: the examples of xl.cfg(5) and displ_be's README, xl's
 * leading-blank skipping, be-alloc spellings, every error (each message must name the device,
 * the key and the offending text), and formatVdisplSpec round-trips (property tests).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DOMID_FIRST_RESERVED,
  formatVdisplSpec,
  MAX_VDISPL_CONNECTORS,
  MAX_VDISPL_RESOLUTION,
  parseVdisplList,
  parseVdisplSpec,
  VdisplSpecError,
  type VdisplDeviceSpec,
} from '../../../src/toolstack/vdispl-spec.js';

/** The VdisplSpecError thrown by fn (fails the test if none). */
function specError(fn: () => unknown): VdisplSpecError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(VdisplSpecError);
    return e as VdisplSpecError;
  }
  throw new Error('expected a VdisplSpecError');
}

describe('parseVdisplSpec: documented examples', () => {
  it('xl.cfg(5): backend=0,be-alloc=1,connectors=id0:1920x1080;id1:800x600', () => {
    expect(parseVdisplSpec('backend=0,be-alloc=1,connectors=id0:1920x1080;id1:800x600')).toEqual({
      devid: 0,
      backend: { domid: 0 },
      beAlloc: true,
      connectors: [
        { uniqueId: 'id0', width: 1920, height: 1080 },
        { uniqueId: 'id1', width: 800, height: 600 },
      ],
    });
  });

  it('xl.cfg(5): connectors only; backend defaults to domid 0 and be-alloc to false', () => {
    expect(parseVdisplSpec('connectors=id0:1920x1080;id1:800x600;id2:640x480', 3)).toEqual({
      devid: 3,
      backend: { domid: 0 },
      beAlloc: false,
      connectors: [
        { uniqueId: 'id0', width: 1920, height: 1080 },
        { uniqueId: 'id1', width: 800, height: 600 },
        { uniqueId: 'id2', width: 640, height: 480 },
      ],
    });
  });

  it("displ_be README: a named backend and DRM connector names as ids", () => {
    expect(parseVdisplSpec('backend=DomD,be-alloc=0,connectors=HDMI-A-1:1920x1080;VGA-1:768x1024')).toEqual({
      devid: 0,
      backend: { name: 'DomD' },
      beAlloc: false,
      connectors: [
        { uniqueId: 'HDMI-A-1', width: 1920, height: 1080 },
        { uniqueId: 'VGA-1', width: 768, height: 1024 },
      ],
    });
  });

  it('skips blanks before each item, as xl does', () => {
    const d = parseVdisplSpec('  backend=1,   be-alloc=1,\tconnectors=a:1x1');
    expect(d.backend).toEqual({ domid: 1 });
    expect(d.beAlloc).toBe(true);
    expect(d.connectors).toEqual([{ uniqueId: 'a', width: 1, height: 1 }]);
  });

  it('keys in any order; the value runs from the first "="', () => {
    const d = parseVdisplSpec('connectors=a=b:640x480,backend=Domain-0');
    expect(d.connectors[0]?.uniqueId).toBe('a=b');
    expect(d.backend).toEqual({ name: 'Domain-0' });
  });

  it('a numeric backend is a domid (leading zeros allowed), anything else a name', () => {
    expect(parseVdisplSpec('backend=007,connectors=a:1x1').backend).toEqual({ domid: 7 });
    expect(parseVdisplSpec(`backend=${DOMID_FIRST_RESERVED - 1},connectors=a:1x1`).backend).toEqual({ domid: 32751 });
    expect(parseVdisplSpec('backend=0x10,connectors=a:1x1').backend).toEqual({ name: '0x10' });
    expect(parseVdisplSpec('backend=dom_d.1-x,connectors=a:1x1').backend).toEqual({ name: 'dom_d.1-x' });
  });

  it('be-alloc: strtoul-style numbers, and words xl itself does not take', () => {
    const beAlloc = (v: string) => parseVdisplSpec(`be-alloc=${v},connectors=a:1x1`).beAlloc;
    for (const v of ['1', '2', '0x1', '0X10', '010', 'true', 'TRUE', 'Yes', 'on']) expect(beAlloc(v), v).toBe(true);
    for (const v of ['0', '00', '0x0', 'false', 'No', 'OFF']) expect(beAlloc(v), v).toBe(false);
  });

  it('limits are inclusive', () => {
    const d = parseVdisplSpec(`connectors=a:${MAX_VDISPL_RESOLUTION}x${MAX_VDISPL_RESOLUTION};b:1x1`);
    expect(d.connectors[0]).toEqual({ uniqueId: 'a', width: 8192, height: 8192 });
    const many = Array.from({ length: MAX_VDISPL_CONNECTORS }, (_, i) => `c${i}:1x1`).join(';');
    expect(parseVdisplSpec(`connectors=${many}`).connectors).toHaveLength(64);
  });

  it('ids may be any printable ASCII other than , ; :', () => {
    const id = '!"#$%&\'()*+-./09<=>?@AZ[\\]^_`az{|}~';
    expect(parseVdisplSpec(`connectors=${id}:1x1`).connectors[0]?.uniqueId).toBe(id);
  });
});

describe('parseVdisplList', () => {
  it('numbers the devices by list index', () => {
    const list = parseVdisplList(['connectors=a:1x1', 'backend=2,connectors=b:2x2']);
    expect(list.map((d) => d.devid)).toEqual([0, 1]);
    expect(list[1]?.backend).toEqual({ domid: 2 });
    expect(parseVdisplList([])).toEqual([]);
  });

  it("reports the failing device's index", () => {
    const e = specError(() => parseVdisplList(['connectors=a:1x1', 'connectors=a:1x1', 'connectors=x']));
    expect(e.device).toBe(2);
    expect(e.message).toBe('vdispl[2]: connectors: "x": expected <id>:<W>x<H>');
  });
});

describe('parseVdisplSpec: errors point at the bad part', () => {
  const cases: readonly (readonly [spec: string, message: string, part: string])[] = [
    // items and keys
    ['', 'vdispl[0]: empty spec (connectors=<id>:<W>x<H>[;...] is required)', ''],
    ['   ', 'vdispl[0]: empty spec (connectors=<id>:<W>x<H>[;...] is required)', ''],
    ['connectors=a:1x1,', 'vdispl[0]: item 2 is empty (stray ",")', ''],
    ['backend=0,,connectors=a:1x1', 'vdispl[0]: item 2 is empty (stray ",")', ''],
    ['connectors', 'vdispl[0]: "connectors": expected KEY=VALUE', 'connectors'],
    [
      'connectors=a:1x1,colour=blue',
      'vdispl[0]: "colour=blue": unknown key "colour" (expected backend, be-alloc or connectors)',
      'colour=blue',
    ],
    [
      'backend =0,connectors=a:1x1',
      'vdispl[0]: "backend =0": unknown key "backend " (expected backend, be-alloc or connectors)',
      'backend =0',
    ],
    [
      'be-alloc=1,connectors=a:1x1,be-alloc=0',
      'vdispl[0]: be-alloc: "be-alloc=0": key given twice (first as "be-alloc=1")',
      'be-alloc=0',
    ],
    ['backend=0,be-alloc=1', 'vdispl[0]: "backend=0,be-alloc=1": missing connectors=<id>:<W>x<H>[;...]', 'backend=0,be-alloc=1'],
    // backend
    ['backend=,connectors=a:1x1', 'vdispl[0]: backend: expected a domid or a domain name', ''],
    ['backend=32752,connectors=a:1x1', 'vdispl[0]: backend: "32752": domid must be below 32752 (DOMID_FIRST_RESERVED)', '32752'],
    [
      'backend=Dom D,connectors=a:1x1',
      'vdispl[0]: backend: "Dom D": a domain name may only contain letters, digits, "_", "." and "-"',
      'Dom D',
    ],
    // be-alloc
    ['be-alloc=,connectors=a:1x1', 'vdispl[0]: be-alloc: expected 0 or 1 (or true/false, yes/no, on/off)', ''],
    ['be-alloc=maybe,connectors=a:1x1', 'vdispl[0]: be-alloc: "maybe": expected 0 or 1 (or true/false, yes/no, on/off)', 'maybe'],
    ['be-alloc=-1,connectors=a:1x1', 'vdispl[0]: be-alloc: "-1": expected 0 or 1 (or true/false, yes/no, on/off)', '-1'],
    ['be-alloc=08,connectors=a:1x1', 'vdispl[0]: be-alloc: "08": expected 0 or 1 (or true/false, yes/no, on/off)', '08'],
    ['be-alloc=1 ,connectors=a:1x1', 'vdispl[0]: be-alloc: "1 ": expected 0 or 1 (or true/false, yes/no, on/off)', '1 '],
    // connectors
    ['connectors=', 'vdispl[0]: connectors: at least one connector must be given as <id>:<W>x<H>', ''],
    ['connectors=a:1x1;', 'vdispl[0]: connectors: connector 2 is empty (stray ";")', ''],
    ['connectors=;a:1x1', 'vdispl[0]: connectors: connector 1 is empty (stray ";")', ''],
    ['connectors=id0', 'vdispl[0]: connectors: "id0": expected <id>:<W>x<H>', 'id0'],
    ['connectors=:800x600', 'vdispl[0]: connectors: ":800x600": empty connector id', ':800x600'],
    [
      'connectors=id0:1920x1080;id1:800y600',
      'vdispl[0]: connectors: "id1:800y600": resolution must be <W>x<H> with positive integers',
      'id1:800y600',
    ],
    ['connectors=a:800X600', 'vdispl[0]: connectors: "a:800X600": resolution must be <W>x<H> with positive integers', 'a:800X600'],
    ['connectors=a:800x600 ', 'vdispl[0]: connectors: "a:800x600 ": resolution must be <W>x<H> with positive integers', 'a:800x600 '],
    ['connectors=a:800x', 'vdispl[0]: connectors: "a:800x": resolution must be <W>x<H> with positive integers', 'a:800x'],
    ['connectors=a:-8x600', 'vdispl[0]: connectors: "a:-8x600": resolution must be <W>x<H> with positive integers', 'a:-8x600'],
    ['connectors=a:1.5x600', 'vdispl[0]: connectors: "a:1.5x600": resolution must be <W>x<H> with positive integers', 'a:1.5x600'],
    ['connectors=a:0x600', 'vdispl[0]: connectors: "a:0x600": width 0 is out of range 1..8192', 'a:0x600'],
    ['connectors=a:800x8193', 'vdispl[0]: connectors: "a:800x8193": height 8193 is out of range 1..8192', 'a:800x8193'],
    ['connectors=a:1:1x1', 'vdispl[0]: connectors: "a:1:1x1": resolution must be <W>x<H> with positive integers', 'a:1:1x1'],
    [
      'connectors=a:1x1; b:1x1',
      'vdispl[0]: connectors: " b:1x1": connector id " b" must be printable ASCII without blanks, ",", ";" or ":"',
      ' b:1x1',
    ],
    [
      'connectors=caf\u00e9:1x1',
      'vdispl[0]: connectors: "caf\u00e9:1x1": connector id "caf\u00e9" must be printable ASCII without blanks, ",", ";" or ":"',
      'caf\u00e9:1x1',
    ],
    [
      'connectors=a\tb:1x1',
      'vdispl[0]: connectors: "a\\tb:1x1": connector id "a\\tb" must be printable ASCII without blanks, ",", ";" or ":"',
      'a\tb:1x1',
    ],
    ['connectors=id0:1x1;id1:2x2;id0:3x3', 'vdispl[0]: connectors: "id0:3x3": duplicate connector id "id0"', 'id0:3x3'],
  ];

  it.each(cases)('%j', (spec, message, part) => {
    const e = specError(() => parseVdisplSpec(spec));
    expect(e.message).toBe(message);
    expect(e.part).toBe(part);
    expect(e.device).toBe(0);
  });

  it('exposes device, key, part and reason', () => {
    const e = specError(() => parseVdisplSpec('connectors=id0:1920x1080;id1:800y600', 4));
    expect(e.name).toBe('VdisplSpecError');
    expect(e.device).toBe(4);
    expect(e.key).toBe('connectors');
    expect(e.part).toBe('id1:800y600');
    expect(e.reason).toBe('resolution must be <W>x<H> with positive integers');
    expect(e.message).toBe('vdispl[4]: connectors: "id1:800y600": resolution must be <W>x<H> with positive integers');
    expect(specError(() => parseVdisplSpec('x=1')).key).toBeUndefined();
  });

  it(`more than ${MAX_VDISPL_CONNECTORS} connectors names the first one too many`, () => {
    const many = Array.from({ length: 70 }, (_, i) => `c${i}:1x1`).join(';');
    const e = specError(() => parseVdisplSpec(`connectors=${many}`));
    expect(e.message).toBe('vdispl[0]: connectors: "c64:1x1": too many connectors (70; at most 64)');
  });

  it('rejects a bad devid', () => {
    expect(() => parseVdisplSpec('connectors=a:1x1', -1)).toThrow(RangeError);
    expect(() => parseVdisplSpec('connectors=a:1x1', 0.5)).toThrow(RangeError);
  });
});

describe('formatVdisplSpec', () => {
  const device = (over: Partial<VdisplDeviceSpec>): VdisplDeviceSpec => ({
    devid: 0,
    backend: { domid: 0 },
    beAlloc: false,
    connectors: [{ uniqueId: 'a', width: 1, height: 1 }],
    ...over,
  });

  it('writes every key', () => {
    expect(formatVdisplSpec(parseVdisplSpec('backend=DomD,be-alloc=yes,connectors=HDMI-A-1:1920x1080;VGA-1:768x1024'))).toBe(
      'backend=DomD,be-alloc=1,connectors=HDMI-A-1:1920x1080;VGA-1:768x1024',
    );
    expect(formatVdisplSpec(device({}))).toBe('backend=0,be-alloc=0,connectors=a:1x1');
  });

  it('refuses devices it could not write faithfully', () => {
    const bad: readonly [Partial<VdisplDeviceSpec>, string][] = [
      [{ backend: { name: '12' } }, 'vdispl[0]: backend: "12": not a domid, or a domain name that would read as one'],
      [{ backend: { domid: -1 } }, 'vdispl[0]: backend: "-1": not a domid, or a domain name that would read as one'],
      [{ backend: { domid: 1.5 } }, 'vdispl[0]: backend: "1.5": not a domid, or a domain name that would read as one'],
      [{ backend: { domid: 40000 } }, 'vdispl[0]: backend: "40000": domid must be below 32752 (DOMID_FIRST_RESERVED)'],
      [{ backend: { name: 'a,b' } }, 'vdispl[0]: backend: "a,b": a domain name may only contain letters, digits, "_", "." and "-"'],
      [{ connectors: [] }, 'vdispl[0]: connectors: at least one connector must be given as <id>:<W>x<H>'],
      [
        { connectors: [{ uniqueId: 'a;b', width: 1, height: 1 }] },
        'vdispl[0]: connectors: "a;b:1x1": connector id "a;b" must be printable ASCII without blanks, ",", ";" or ":"',
      ],
      [
        { connectors: [{ uniqueId: 'a', width: 1, height: 1 }, { uniqueId: 'a', width: 2, height: 2 }] },
        'vdispl[0]: connectors: "a:2x2": duplicate connector id "a"',
      ],
      [
        { connectors: [{ uniqueId: 'a', width: 0.5, height: 1 }] },
        'vdispl[0]: connectors: "a:0.5x1": width 0.5 is out of range 1..8192',
      ],
      [
        { connectors: [{ uniqueId: 'a', width: 1, height: 9000 }] },
        'vdispl[0]: connectors: "a:1x9000": height 9000 is out of range 1..8192',
      ],
    ];
    for (const [over, message] of bad) expect(() => formatVdisplSpec(device(over)), message).toThrow(message);
  });
});

describe('formatVdisplSpec round-trips (property)', () => {
  const idArb = fc.stringMatching(/^[\x21-\x2b\x2d-\x39\x3c-\x7e]{1,12}$/);
  const sizeArb = fc.integer({ min: 1, max: MAX_VDISPL_RESOLUTION });
  const backendArb = fc.oneof(
    fc.integer({ min: 0, max: DOMID_FIRST_RESERVED - 1 }).map((domid) => ({ domid })),
    fc
      .stringMatching(/^[A-Za-z0-9_.-]{1,20}$/)
      .filter((name) => !/^[0-9]+$/.test(name))
      .map((name) => ({ name })),
  );
  const deviceArb: fc.Arbitrary<VdisplDeviceSpec> = fc.record({
    devid: fc.nat({ max: 15 }),
    backend: backendArb,
    beAlloc: fc.boolean(),
    connectors: fc
      .uniqueArray(idArb, { minLength: 1, maxLength: MAX_VDISPL_CONNECTORS })
      .chain((ids) =>
        fc.tuple(...ids.map((uniqueId) => fc.record({ uniqueId: fc.constant(uniqueId), width: sizeArb, height: sizeArb }))),
      ),
  });

  it('parseVdisplSpec(formatVdisplSpec(d), d.devid) equals d', () => {
    fc.assert(
      fc.property(deviceArb, (d) => {
        expect(parseVdisplSpec(formatVdisplSpec(d), d.devid)).toEqual(d);
      }),
      { numRuns: 300 },
    );
  });

  it('on near-valid text: a device whose format is a fixed point, or a VdisplSpecError', () => {
    // Specs built from plausible pieces, some of them wrong, so both outcomes are common.
    const bit = (good: readonly string[], bad: readonly string[]) =>
      fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...good) }, { weight: 1, arbitrary: fc.constantFrom(...bad) });
    const id = bit(['a', 'id0', 'id1', 'HDMI-A-1', 'x'], ['', ' a', 'a b', 'a,b']);
    const resolution = bit(['1920x1080', '1x1', '8192x8192', '800x600'], ['0x1', '1x', 'x1', '8193x1', '1 x1']);
    const entry = fc.tuple(id, resolution).map(([i, r]) => `${i}:${r}`);
    const item = fc.oneof(
      bit(['backend=0', 'backend=7', 'backend=DomD'], ['backend=', 'backend=32752', 'backend=a b']),
      bit(['be-alloc=0', 'be-alloc=1', 'be-alloc=on'], ['be-alloc=', 'be-alloc=2x']),
      fc.array(entry, { minLength: 1, maxLength: 4 }).map((es) => `connectors=${es.join(';')}`),
      fc.constantFrom('', 'foo=1', 'connectors', ' connectors=a:1x1'),
    );
    let parsed = 0;
    fc.assert(
      fc.property(fc.array(item, { minLength: 1, maxLength: 4 }).map((items) => items.join(',')), (spec) => {
        let d: VdisplDeviceSpec;
        try {
          d = parseVdisplSpec(spec);
        } catch (e) {
          expect(e).toBeInstanceOf(VdisplSpecError);
          return;
        }
        parsed++;
        const text = formatVdisplSpec(d);
        expect(parseVdisplSpec(text)).toEqual(d);
        expect(formatVdisplSpec(parseVdisplSpec(text))).toBe(text);
      }),
      { numRuns: 1000 },
    );
    // About 4-8% of these specs are valid (43 to 80 of 1000 seen): the parse branch must have been
    // exercised, with a bound far enough below that random runs never fail on it (5 sigma).
    expect(parsed).toBeGreaterThan(10);
  });
});
