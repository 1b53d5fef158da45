/**
 * The demo's 5x7 bitmap font: every printable ASCII character has its own well-formed glyph,
 * known glyphs have the expected pixels, and drawText renders exactly the glyph bitmaps at any
 * scale, in every demo format (text pixels in the text colour, the rest in the box colour).
 */
import { describe, expect, it } from 'vitest';
import { DEMO_FORMATS } from '../../../src/demo/demo-program.js';
import { createSurface, Painter } from '../../../src/demo/draw.js';
import { CELL_WIDTH, FONT_CHARS, GLYPH_HEIGHT, GLYPH_WIDTH, glyph, glyphPixel, textHeight, textWidth } from '../../../src/demo/font.js';
import { rgbAt, shown } from './helpers.js';

const PRINTABLE = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i));

/** A glyph as text rows, for readable expectations. */
const picture = (ch: string): string[] =>
  Array.from({ length: GLYPH_HEIGHT }, (_, y) => Array.from({ length: GLYPH_WIDTH }, (_, x) => (glyphPixel(ch, x, y) ? '#' : '.')).join(''));

describe('font', () => {
  it('covers printable ASCII with 95 distinct glyphs; only the space is blank; others draw as a box', () => {
    expect([...FONT_CHARS].sort()).toEqual([...PRINTABLE].sort());
    const seen = new Map<string, string>();
    for (const ch of PRINTABLE) {
      const key = picture(ch).join('/');
      expect(seen.get(key), `${ch} looks like ${seen.get(key)}`).toBeUndefined();
      seen.set(key, ch);
      expect(glyph(ch).rows.some((r) => r !== 0)).toBe(ch !== ' ');
    }
    expect(picture('\u00e9')).toEqual(['#####', '#...#', '#...#', '#...#', '#...#', '#...#', '#####']);
    expect(glyphPixel('A', -1, 0)).toBe(false);
    expect(glyphPixel('A', 0, GLYPH_HEIGHT)).toBe(false);
  });

  it('known glyphs', () => {
    expect(picture('A')).toEqual(['.###.', '#...#', '#...#', '#...#', '#####', '#...#', '#...#']);
    expect(picture('0')).toEqual(['.###.', '#...#', '#..##', '#.#.#', '##..#', '#...#', '.###.']);
    expect(picture('x')).toEqual(['.....', '.....', '#...#', '.#.#.', '..#..', '.#.#.', '#...#']);
  });

  it('runs describe the rows exactly', () => {
    for (const ch of PRINTABLE) {
      const g = glyph(ch);
      for (let y = 0; y < GLYPH_HEIGHT; y++) {
        const fromRuns = new Array<string>(GLYPH_WIDTH).fill('.');
        for (const [start, len] of g.runs[y]!) for (let x = start; x < start + len; x++) fromRuns[x] = '#';
        expect(fromRuns.join(''), `${ch} row ${y}`).toBe(picture(ch)[y]);
      }
    }
  });

  it('text metrics', () => {
    expect(textWidth('', 3)).toBe(0);
    expect(textWidth('A', 1)).toBe(5);
    expect(textWidth('AB', 2)).toBe(22);
    expect(textWidth('\u00e9\u00e9', 1)).toBe(11);
    expect(textHeight(4)).toBe(28);
  });

  describe.each(DEMO_FORMATS.map((f) => [f.name, f] as const))('drawText in %s', (_name, format) => {
    // YUYV draws whole pixel pairs: even positions and scales render exactly.
    const scales = format.layout.kind === 'yuv422' ? [2, 4] : [1, 2, 3];
    it.each(scales)('scale %i: every pixel of "Hi 42!" is the glyph bitmap', (scale) => {
      const text = 'Hi 42!';
      const x0 = 6;
      const y0 = 5;
      const s = createSurface(x0 + textWidth(text, scale) + 10, y0 + textHeight(scale) + 9, format);
      const p = new Painter(s);
      const fg = [255, 255, 0] as const;
      const bg = [0, 0, 128] as const;
      const r = p.drawText(x0, y0, text, { scale, fg: p.color(...fg), bg: p.color(...bg), pad: 2 });
      expect(r).toEqual({ x: x0 - 2, y: y0 - 2, w: textWidth(text, scale) + 4, h: textHeight(scale) + 4 });
      const want = { fg: shown(format, fg), bg: shown(format, bg), none: rgbAt(createSurface(2, 1, format), 0, 0) }; // untouched (zero) memory
      for (let y = 0; y < s.height; y++) {
        for (let x = 0; x < s.width; x++) {
          const inBox = x >= r!.x && x < r!.x + r!.w && y >= r!.y && y < r!.y + r!.h;
          const tx = Math.floor((x - x0) / scale);
          const ty = Math.floor((y - y0) / scale);
          const ch = x >= x0 && y >= y0 ? text[Math.floor(tx / CELL_WIDTH)] : undefined;
          const on = ch !== undefined && glyphPixel(ch, tx % CELL_WIDTH, ty);
          expect(rgbAt(s, x, y), `(${x}, ${y})`).toEqual(on ? want.fg : inBox ? want.bg : want.none);
        }
      }
    });
  });
});
