/**
 * The demo's built-in bitmap font: 5x7 glyphs for printable ASCII (0x20-0x7e) in a 6x8 cell
 * (one column and one row of spacing). Each glyph is seven row masks of five bits, bit 4 the
 * leftmost column; a character outside the set draws as a hollow box. Pure data, no drawing:
 * `Painter.drawText` (draw.ts) renders it at any integer scale.
 */

export const GLYPH_WIDTH = 5;
export const GLYPH_HEIGHT = 7;
/** The advance from one character to the next, in font pixels. */
export const CELL_WIDTH = 6;
/** The line height, in font pixels. */
export const CELL_HEIGHT = 8;

// One glyph per entry: seven rows of five columns, '#' set and '.' clear.
const SOURCE: Record<string, string> = {
  ' ': '..... ..... ..... ..... ..... ..... .....',
  '!': '..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..',
  '"': '.#.#. .#.#. .#.#. ..... ..... ..... .....',
  '#': '.#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.',
  '$': '..#.. .#### #.#.. .###. ..#.# ####. ..#..',
  '%': '##... ##..# ...#. ..#.. .#... #..## ...##',
  '&': '.##.. #..#. #.#.. .#... #.#.# #..#. .##.#',
  "'": '..#.. ..#.. .#... ..... ..... ..... .....',
  '(': '...#. ..#.. .#... .#... .#... ..#.. ...#.',
  ')': '.#... ..#.. ...#. ...#. ...#. ..#.. .#...',
  '*': '..... ..#.. #.#.# .###. #.#.# ..#.. .....',
  '+': '..... ..#.. ..#.. ##### ..#.. ..#.. .....',
  ',': '..... ..... ..... ..... .##.. ..#.. .#...',
  '-': '..... ..... ..... ##### ..... ..... .....',
  '.': '..... ..... ..... ..... ..... .##.. .##..',
  '/': '..... ....# ...#. ..#.. .#... #.... .....',
  '0': '.###. #...# #..## #.#.# ##..# #...# .###.',
  '1': '..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.',
  '2': '.###. #...# ....# ...#. ..#.. .#... #####',
  '3': '##### ...#. ..#.. ...#. ....# #...# .###.',
  '4': '...#. ..##. .#.#. #..#. ##### ...#. ...#.',
  '5': '##### #.... ####. ....# ....# #...# .###.',
  '6': '..##. .#... #.... ####. #...# #...# .###.',
  '7': '##### ....# ...#. ..#.. .#... .#... .#...',
  '8': '.###. #...# #...# .###. #...# #...# .###.',
  '9': '.###. #...# #...# .#### ....# ...#. .##..',
  ':': '..... .##.. .##.. ..... .##.. .##.. .....',
  ';': '..... .##.. .##.. ..... .##.. ..#.. .#...',
  '<': '...#. ..#.. .#... #.... .#... ..#.. ...#.',
  '=': '..... ..... ##### ..... ##### ..... .....',
  '>': '.#... ..#.. ...#. ....# ...#. ..#.. .#...',
  '?': '.###. #...# ....# ...#. ..#.. ..... ..#..',
  '@': '.###. #...# ....# .##.# #.#.# #.#.# .###.',
  A: '.###. #...# #...# #...# ##### #...# #...#',
  B: '####. #...# #...# ####. #...# #...# ####.',
  C: '.###. #...# #.... #.... #.... #...# .###.',
  D: '###.. #..#. #...# #...# #...# #..#. ###..',
  E: '##### #.... #.... ####. #.... #.... #####',
  F: '##### #.... #.... ####. #.... #.... #....',
  G: '.###. #...# #.... #.### #...# #...# .####',
  H: '#...# #...# #...# ##### #...# #...# #...#',
  I: '.###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  J: '..### ...#. ...#. ...#. ...#. #..#. .##..',
  K: '#...# #..#. #.#.. ##... #.#.. #..#. #...#',
  L: '#.... #.... #.... #.... #.... #.... #####',
  M: '#...# ##.## #.#.# #.#.# #...# #...# #...#',
  N: '#...# #...# ##..# #.#.# #..## #...# #...#',
  O: '.###. #...# #...# #...# #...# #...# .###.',
  P: '####. #...# #...# ####. #.... #.... #....',
  Q: '.###. #...# #...# #...# #.#.# #..#. .##.#',
  R: '####. #...# #...# ####. #.#.. #..#. #...#',
  S: '.#### #.... #.... .###. ....# ....# ####.',
  T: '##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  U: '#...# #...# #...# #...# #...# #...# .###.',
  V: '#...# #...# #...# #...# #...# .#.#. ..#..',
  W: '#...# #...# #...# #.#.# #.#.# #.#.# .#.#.',
  X: '#...# #...# .#.#. ..#.. .#.#. #...# #...#',
  Y: '#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..',
  Z: '##### ....# ...#. ..#.. .#... #.... #####',
  '[': '.###. .#... .#... .#... .#... .#... .###.',
  '\\': '..... #.... .#... ..#.. ...#. ....# .....',
  ']': '.###. ...#. ...#. ...#. ...#. ...#. .###.',
  '^': '..#.. .#.#. #...# ..... ..... ..... .....',
  _: '..... ..... ..... ..... ..... ..... #####',
  '`': '.#... ..#.. ...#. ..... ..... ..... .....',
  a: '..... ..... .###. ....# .#### #...# .####',
  b: '#.... #.... #.##. ##..# #...# #...# ####.',
  c: '..... ..... .###. #.... #.... #...# .###.',
  d: '....# ....# .##.# #..## #...# #...# .####',
  e: '..... ..... .###. #...# ##### #.... .###.',
  f: '..##. .#..# .#... ###.. .#... .#... .#...',
  g: '..... .#### #...# #...# .#### ....# .###.',
  h: '#.... #.... #.##. ##..# #...# #...# #...#',
  i: '..#.. ..... .##.. ..#.. ..#.. ..#.. .###.',
  j: '...#. ..... ..##. ...#. ...#. #..#. .##..',
  k: '#.... #.... #..#. #.#.. ##... #.#.. #..#.',
  l: '.##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  m: '..... ..... ##.#. #.#.# #.#.# #...# #...#',
  n: '..... ..... #.##. ##..# #...# #...# #...#',
  o: '..... ..... .###. #...# #...# #...# .###.',
  p: '..... ..... ####. #...# ####. #.... #....',
  q: '..... ..... .##.# #..## .#### ....# ....#',
  r: '..... ..... #.##. ##..# #.... #.... #....',
  s: '..... ..... .###. #.... .###. ....# ####.',
  t: '.#... .#... ###.. .#... .#... .#..# ..##.',
  u: '..... ..... #...# #...# #...# #..## .##.#',
  v: '..... ..... #...# #...# #...# .#.#. ..#..',
  w: '..... ..... #...# #...# #.#.# #.#.# .#.#.',
  x: '..... ..... #...# .#.#. ..#.. .#.#. #...#',
  y: '..... ..... #...# #...# .#### ....# .###.',
  z: '..... ..... ##### ...#. ..#.. .#... #####',
  '{': '...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.',
  '|': '..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  '}': '.#... ..#.. ..#.. ...#. ..#.. ..#.. .#...',
  '~': '..... ..... .#... #.#.# ...#. ..... .....',
};

const BOX = '##### #...# #...# #...# #...# #...# #####';

/** A glyph: its rows as 5-bit masks, and each row's runs of set pixels (for fast drawing). */
export interface Glyph {
  /** GLYPH_HEIGHT masks; bit (GLYPH_WIDTH - 1 - x) is column x. */
  readonly rows: Uint8Array;
  /** Per row: [start column, length] of each horizontal run of set pixels. */
  readonly runs: readonly (readonly (readonly [number, number])[])[];
}

function compile(src: string, ch: string): Glyph {
  const lines = src.split(' ');
  if (lines.length !== GLYPH_HEIGHT || lines.some((l) => l.length !== GLYPH_WIDTH || /[^#.]/.test(l))) {
    throw new Error(`font: glyph ${JSON.stringify(ch)} is not ${GLYPH_WIDTH}x${GLYPH_HEIGHT}`);
  }
  const rows = new Uint8Array(GLYPH_HEIGHT);
  const runs: (readonly [number, number])[][] = [];
  lines.forEach((line, y) => {
    const r: (readonly [number, number])[] = [];
    let start = -1;
    for (let x = 0; x <= GLYPH_WIDTH; x++) {
      const on = x < GLYPH_WIDTH && line[x] === '#';
      if (on) rows[y]! |= 1 << (GLYPH_WIDTH - 1 - x);
      if (on && start < 0) start = x;
      if (!on && start >= 0) {
        r.push([start, x - start]);
        start = -1;
      }
    }
    runs.push(r);
  });
  return { rows, runs };
}

const GLYPHS = new Map<string, Glyph>(Object.entries(SOURCE).map(([ch, src]) => [ch, compile(src, ch)]));
const MISSING = compile(BOX, '(missing)');

/** The characters the font draws (others draw as a box). */
export const FONT_CHARS: string = [...GLYPHS.keys()].sort().join('');

/** The glyph of `ch` (one character; a hollow box if the font has none). */
export function glyph(ch: string): Glyph {
  return GLYPHS.get(ch) ?? MISSING;
}

/** Is font pixel (x, y) of `ch`'s glyph set? (Outside the 5x7 glyph: false.) */
export function glyphPixel(ch: string, x: number, y: number): boolean {
  if (x < 0 || y < 0 || x >= GLYPH_WIDTH || y >= GLYPH_HEIGHT) return false;
  return ((glyph(ch).rows[y]! >> (GLYPH_WIDTH - 1 - x)) & 1) === 1;
}

/** Width in pixels of `text` drawn at `scale` (no spacing after the last character). */
export function textWidth(text: string, scale: number): number {
  const n = [...text].length;
  return n === 0 ? 0 : (n * CELL_WIDTH - (CELL_WIDTH - GLYPH_WIDTH)) * scale;
}

/** Height in pixels of one line of text at `scale` (the glyph height). */
export function textHeight(scale: number): number {
  return GLYPH_HEIGHT * scale;
}
