/**
 * The xl.cfg file parser and the vdispl devices of a file: a realistic guest config (comments,
 * multi-line lists, both quote kinds, escapes, ";" separators, CRLF), every syntax error with
 * its file:line:column, and vdispl errors positioned at the offending list element.
 */
import { describe, expect, it } from 'vitest';
import { VdisplSpecError } from '../../../src/toolstack/vdispl-spec.js';
import { parseXlConfig, vdisplDevicesFromConfig, XlConfigError, type XlValue } from '../../../src/toolstack/xl-config.js';

/** The XlConfigError thrown by fn (fails the test if none). */
function configError(fn: () => unknown): XlConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(XlConfigError);
    return e as XlConfigError;
  }
  throw new Error('expected an XlConfigError');
}

const GUEST = `# guest.cfg: a PV guest with two displays
name = "guest1"          # the domain name
type = 'pvh'
memory = 0x400
vcpus = 2; maxvcpus = 4
kernel = "/boot/vmlinuz # not a comment"

vdispl = [
    # first device: two connectors on dom0
    'backend=0,be-alloc=1,connectors=id0:1920x1080;id1:800x600',
    "backend=DomD,be-alloc=0,connectors=HDMI-A-1:1920x1080;VGA-1:768x1024",   # DRM names
]
extra = "console=hvc0 \\"quiet\\"\\tx"
empty = []
`;

describe('parseXlConfig', () => {
  it('reads a realistic guest config', () => {
    const cfg = parseXlConfig(GUEST, 'guest.cfg');
    expect(Object.fromEntries(cfg)).toEqual({
      name: 'guest1',
      type: 'pvh',
      memory: 1024,
      vcpus: 2,
      maxvcpus: 4,
      kernel: '/boot/vmlinuz # not a comment',
      vdispl: [
        'backend=0,be-alloc=1,connectors=id0:1920x1080;id1:800x600',
        'backend=DomD,be-alloc=0,connectors=HDMI-A-1:1920x1080;VGA-1:768x1024',
      ],
      extra: 'console=hvc0 "quiet"\tx',
      empty: [],
    });
  });

  it('takes an empty file, blank lines, comment-only lines, a missing final newline and CRLF', () => {
    expect(parseXlConfig('').size).toBe(0);
    expect(parseXlConfig('\n\n# only a comment\n   \n;;\n').size).toBe(0);
    expect(parseXlConfig('a = 1').get('a')).toBe(1);
    expect(parseXlConfig('a = 1 # end').get('a')).toBe(1);
    expect(Object.fromEntries(parseXlConfig('a = "x"\r\nb = [ 1,\r\n 2 ]\r\n'))).toEqual({ a: 'x', b: [1, 2] });
  });

  it('lists: one line or many, mixed atoms, trailing comma, newlines around commas', () => {
    const get = (text: string): XlValue | undefined => parseXlConfig(`v = ${text}`).get('v');
    expect(get('[]')).toEqual([]);
    expect(get('[\n]')).toEqual([]);
    expect(get('[ "a" ]')).toEqual(['a']);
    expect(get("[ 'a', 0x10, 3, ]")).toEqual(['a', 16, 3]);
    expect(get('[\n  "a"\n  ,\n  "b"  # comment\n  ,\n]')).toEqual(['a', 'b']);
  });

  it('numbers: decimal and hex, as JS numbers', () => {
    const get = (text: string): XlValue | undefined => parseXlConfig(`v = ${text}`).get('v');
    expect(get('0')).toBe(0);
    expect(get('4096')).toBe(4096);
    expect(get('0xFFff')).toBe(0xffff);
    expect(get('0X1f')).toBe(31);
    expect(get(String(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('strings: C escapes in both quote kinds, the other quote unescaped', () => {
    const get = (text: string): XlValue | undefined => parseXlConfig(`v = ${text}`).get('v');
    expect(get(String.raw`"a\nb\tc\\d\"e\'f"`)).toBe('a\nb\tc\\d"e\'f');
    expect(get(String.raw`'a\nb\tc\\d\"e\'f'`)).toBe('a\nb\tc\\d"e\'f');
    expect(get(String.raw`"\a\b\f\r\v"`)).toBe('\x07\b\f\r\v');
    expect(get(String.raw`"\x41\x7e\x0a"`)).toBe('A~\n');
    expect(get(String.raw`"\101\0\7\377\1234"`)).toBe('A\0\x07\xff\x534');
    expect(get(`"it's"`)).toBe("it's");
    expect(get(`'say "hi"'`)).toBe('say "hi"');
    expect(get(`"# [ ] , ; = "`)).toBe('# [ ] , ; = ');
    expect(get(`""`)).toBe('');
    expect(get(`"caf\u00e9"`)).toBe('caf\u00e9');
  });

  it('identifiers: letters, digits, underscores; capitals allowed', () => {
    expect([...parseXlConfig('on_crash = "destroy"\n_x = 1\nVNC2 = 0').keys()]).toEqual(['on_crash', '_x', 'VNC2']);
  });

  it('a later setting of a key replaces the earlier one, as in xl', () => {
    const cfg = parseXlConfig('memory = 512\nname = "a"\nmemory = 1024\n');
    expect(cfg.get('memory')).toBe(1024);
    expect([...cfg.keys()]).toEqual(['memory', 'name']);
  });
});

describe('parseXlConfig errors: file:line:column', () => {
  const cases: readonly (readonly [text: string, message: string])[] = [
    ['name = "guest1\n', 'guest.cfg:1:8: unterminated string'],
    ["a = 1\nb = 2\nkernel = 'abc", 'guest.cfg:3:10: unterminated string'],
    ['a = "abc\\', 'guest.cfg:1:5: unterminated string'],
    ['a = "abc\\\ndef"', 'guest.cfg:1:5: unterminated string'],
    ['a = "ab\\qc"', 'guest.cfg:1:8: unknown escape \\q'],
    ['a = "ab\\x4"', 'guest.cfg:1:8: escape \\x needs two hex digits'],
    ['a = "ab\\xg0"', 'guest.cfg:1:8: escape \\x needs two hex digits'],
    ['a = "\\400"', 'guest.cfg:1:6: octal escape \\400 is above \\377'],
    ['name = guest1', 'guest.cfg:1:8: bare word guest1 is not a value (quote it: "guest1")'],
    ['v = [ "a", pvh ]', 'guest.cfg:1:12: bare word pvh is not a value (quote it: "pvh")'],
    ['a = ', 'guest.cfg:1:5: expected a value after "="'],
    ['a =\nb = 1', 'guest.cfg:1:4: expected a value after "="'],
    ['a 1', 'guest.cfg:1:3: expected "=" after a'],
    ['a += "x"', 'guest.cfg:1:3: unexpected character "+"'],
    ['= 1', 'guest.cfg:1:1: expected a setting name'],
    ['"a" = 1', 'guest.cfg:1:1: expected a setting name'],
    ['1a = 1', 'guest.cfg:1:1: bad number "1a"'],
    ['a = 1 2', 'guest.cfg:1:7: expected the end of the line after the value of a'],
    ['a = "x" b = 2', 'guest.cfg:1:9: expected the end of the line after the value of a'],
    ['a = -1', 'guest.cfg:1:5: unexpected character "-"'],
    ['a = 1.5', 'guest.cfg:1:6: unexpected character "."'],
    ['a = 0x', 'guest.cfg:1:5: bad number "0x"'],
    ['a = 12ab', 'guest.cfg:1:5: bad number "12ab"'],
    ['a = 010', 'guest.cfg:1:5: number 010 has a leading zero (xl would read it as octal)'],
    ['a = 99999999999999999999', 'guest.cfg:1:5: number 99999999999999999999 is too large'],
    ['v = [ "a" "b" ]', 'guest.cfg:1:11: expected "," or "]" in the list'],
    ['v = [ "a",, "b" ]', 'guest.cfg:1:11: expected a string or a number in the list'],
    ['v = [ , ]', 'guest.cfg:1:7: expected a string or a number in the list'],
    ['v = [ [ "a" ] ]', 'guest.cfg:1:7: lists cannot be nested'],
    ['x = 1\nv = [\n  "a",\n  "b"\n', 'guest.cfg:2:5: unterminated list'],
    ['v = [ "a",', 'guest.cfg:1:5: unterminated list'],
    ['a = 1 ]', 'guest.cfg:1:7: expected the end of the line after the value of a'],
    ['a = [ 1 ] ]', 'guest.cfg:1:11: expected the end of the line after the value of a'],
    ['\n\n   \tmemory = 512 @', 'guest.cfg:3:18: unexpected character "@"'],
  ];

  it.each(cases)('%j', (text, message) => {
    const e = configError(() => parseXlConfig(text, 'guest.cfg'));
    expect(e.message).toBe(message);
    const [, line, column] = /^guest\.cfg:(\d+):(\d+): /.exec(message) ?? [];
    expect([e.line, e.column]).toEqual([Number(line), Number(column)]);
    expect(e.fileName).toBe('guest.cfg');
    expect(e.name).toBe('XlConfigError');
  });

  it('names the file "config" by default', () => {
    expect(configError(() => parseXlConfig('a = b')).message).toBe('config:1:5: bare word b is not a value (quote it: "b")');
  });
});

describe('vdisplDevicesFromConfig', () => {
  it('the devices of a real config, devid = list index', () => {
    const devices = vdisplDevicesFromConfig(parseXlConfig(GUEST, 'guest.cfg'), 'guest.cfg');
    expect(devices).toEqual([
      {
        devid: 0,
        backend: { domid: 0 },
        beAlloc: true,
        connectors: [
          { uniqueId: 'id0', width: 1920, height: 1080 },
          { uniqueId: 'id1', width: 800, height: 600 },
        ],
      },
      {
        devid: 1,
        backend: { name: 'DomD' },
        beAlloc: false,
        connectors: [
          { uniqueId: 'HDMI-A-1', width: 1920, height: 1080 },
          { uniqueId: 'VGA-1', width: 768, height: 1024 },
        ],
      },
    ]);
  });

  it('no vdispl setting, or an empty list: no devices', () => {
    expect(vdisplDevicesFromConfig(parseXlConfig('name = "a"'))).toEqual([]);
    expect(vdisplDevicesFromConfig(parseXlConfig('vdispl = []'))).toEqual([]);
  });

  it('a bad spec: positioned at its string, with the VdisplSpecError as cause', () => {
    const text = 'name = "g"\nvdispl = [\n  "connectors=a:1x1",\n    "connectors=id0:1920x1080;id1:800y600",\n]\n';
    const e = configError(() => vdisplDevicesFromConfig(parseXlConfig(text, 'guest.cfg'), 'guest.cfg'));
    expect(e.message).toBe('guest.cfg:4:5: vdispl[1]: connectors: "id1:800y600": resolution must be <W>x<H> with positive integers');
    expect([e.line, e.column]).toEqual([4, 5]);
    expect(e.cause).toBeInstanceOf(VdisplSpecError);
    expect((e.cause as VdisplSpecError).device).toBe(1);
    expect((e.cause as VdisplSpecError).part).toBe('id1:800y600');
  });

  it('vdispl must be a list of strings', () => {
    const notList = configError(() => vdisplDevicesFromConfig(parseXlConfig('\nvdispl = "connectors=a:1x1"', 'g.cfg'), 'g.cfg'));
    expect(notList.message).toBe('g.cfg:2:10: vdispl must be a list of strings, e.g. vdispl = [ "connectors=id0:1920x1080" ]');
    const number = configError(() => vdisplDevicesFromConfig(parseXlConfig('vdispl = [ "connectors=a:1x1", 7 ]', 'g.cfg'), 'g.cfg'));
    expect(number.message).toBe('g.cfg:1:32: vdispl[1]: must be a string, not the number 7');
  });

  it('a map not made by parseXlConfig: the file name without a position', () => {
    const cfg = new Map<string, XlValue>([['vdispl', ['connectors=a:1x1', 'connectors=']]]);
    const e = configError(() => vdisplDevicesFromConfig(cfg, 'hand-made'));
    expect(e.message).toBe('hand-made: vdispl[1]: connectors: at least one connector must be given as <id>:<W>x<H>');
    expect([e.line, e.column]).toEqual([0, 0]);
    // A parsed map whose vdispl was replaced afterwards: the old position no longer applies.
    const parsed = parseXlConfig('vdispl = [ "connectors=a:1x1" ]', 'g.cfg');
    parsed.set('vdispl', ['connectors=']);
    expect(configError(() => vdisplDevicesFromConfig(parsed, 'g.cfg')).message).toMatch(/^g\.cfg: vdispl\[0\]: /);
    expect(vdisplDevicesFromConfig(new Map([['vdispl', ['connectors=a:2x2']]]))[0]?.connectors).toEqual([
      { uniqueId: 'a', width: 2, height: 2 },
    ]);
  });
});
