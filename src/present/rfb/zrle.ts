/**
 * ZRLE (RFC 6143 7.7.6) before compression: a rectangle cut into 64x64 tiles in row order, each
 * tile sent in the smallest of the subencodings: solid (1), packed palette (2..16 colours, 1/2/4
 * bits per index, rows padded to a byte), palette RLE (up to 127 colours), plain RLE (128), or
 * raw (0). Pixels are CPIXELs (pixel-format.ts). Runs continue across the rows of a tile.
 */
import type { PixelWriter } from './pixel-format.js';

export const ZRLE_TILE = 64;

const SUB_RAW = 0;
const SUB_SOLID = 1;
const SUB_PLAIN_RLE = 128;
/** Palette RLE: 128 + palette size. */
const SUB_PALETTE_RLE = 128;
const MAX_PALETTE = 127;

const runLengthBytes = (n: number): number => Math.floor((n - 1) / 255) + 1;

function putRunLength(out: Uint8Array, o: number, n: number): number {
  let rest = n - 1;
  while (rest >= 255) {
    out[o++] = 255;
    rest -= 255;
  }
  out[o++] = rest;
  return o;
}

/** Reusable per-call scratch for one tile. */
class TileScratch {
  readonly px = new Uint32Array(ZRLE_TILE * ZRLE_TILE);
  readonly palette = new Map<number, number>();
  readonly colours: number[] = [];
}

/** Encodes one tile of `n` pixels (`px`, tw x th) at `o`; returns the new offset. */
function encodeTile(px: Uint32Array, tw: number, th: number, w: PixelWriter, out: Uint8Array, o: number, s: TileScratch): number {
  const n = tw * th;
  const cp = w.cpp;
  const { palette, colours } = s;
  palette.clear();
  colours.length = 0;
  let overflow = false;
  let plainRle = 0;
  let paletteRle = 0;
  let i = 0;
  while (i < n) {
    const v = px[i]!;
    let j = i + 1;
    while (j < n && px[j] === v) j++;
    const len = j - i;
    if (!overflow && !palette.has(v)) {
      if (colours.length === MAX_PALETTE) overflow = true;
      else {
        palette.set(v, colours.length);
        colours.push(v);
      }
    }
    const lb = runLengthBytes(len);
    plainRle += cp + lb;
    paletteRle += len === 1 ? 1 : 1 + lb;
    i = j;
  }
  const ps = colours.length;
  if (!overflow && ps === 1) {
    out[o++] = SUB_SOLID;
    return w.put(out, o, colours[0]!);
  }
  const raw = n * cp;
  let best = raw;
  let kind: 'raw' | 'plain' | 'packed' | 'palette' = 'raw';
  if (plainRle < best) {
    best = plainRle;
    kind = 'plain';
  }
  if (!overflow) {
    if (ps * cp + paletteRle < best) {
      best = ps * cp + paletteRle;
      kind = 'palette';
    }
    if (ps <= 16) {
      const bits = ps <= 2 ? 1 : ps <= 4 ? 2 : 4;
      const packed = ps * cp + th * Math.ceil((tw * bits) / 8);
      if (packed <= best) {
        best = packed;
        kind = 'packed';
      }
    }
  }
  switch (kind) {
    case 'raw':
      out[o++] = SUB_RAW;
      for (let k = 0; k < n; k++) o = w.put(out, o, px[k]!);
      return o;
    case 'plain': {
      out[o++] = SUB_PLAIN_RLE;
      let k = 0;
      while (k < n) {
        const v = px[k]!;
        let j = k + 1;
        while (j < n && px[j] === v) j++;
        o = w.put(out, o, v);
        o = putRunLength(out, o, j - k);
        k = j;
      }
      return o;
    }
    case 'palette': {
      out[o++] = SUB_PALETTE_RLE + ps;
      for (const c of colours) o = w.put(out, o, c);
      let k = 0;
      while (k < n) {
        const v = px[k]!;
        let j = k + 1;
        while (j < n && px[j] === v) j++;
        const idx = palette.get(v)!;
        if (j - k === 1) out[o++] = idx;
        else {
          out[o++] = idx | 128;
          o = putRunLength(out, o, j - k);
        }
        k = j;
      }
      return o;
    }
    case 'packed': {
      out[o++] = ps;
      for (const c of colours) o = w.put(out, o, c);
      const bits = ps <= 2 ? 1 : ps <= 4 ? 2 : 4;
      for (let y = 0; y < th; y++) {
        let acc = 0;
        let have = 0;
        for (let x = 0; x < tw; x++) {
          acc = (acc << bits) | palette.get(px[y * tw + x]!)!;
          have += bits;
          if (have === 8) {
            out[o++] = acc;
            acc = 0;
            have = 0;
          }
        }
        if (have > 0) out[o++] = acc << (8 - have);
      }
      return o;
    }
  }
}

/**
 * The ZRLE data of a `w` x `h` rectangle whose client pixel values are `values` (row by row),
 * before zlib. `writer` must write CPIXELs.
 */
export function zrleData(values: Uint32Array, w: number, h: number, writer: PixelWriter): Uint8Array {
  const tiles = Math.ceil(w / ZRLE_TILE) * Math.ceil(h / ZRLE_TILE);
  const out = new Uint8Array(tiles + w * h * writer.cpp);
  const s = new TileScratch();
  let o = 0;
  for (let ty = 0; ty < h; ty += ZRLE_TILE) {
    const th = Math.min(ZRLE_TILE, h - ty);
    for (let tx = 0; tx < w; tx += ZRLE_TILE) {
      const tw = Math.min(ZRLE_TILE, w - tx);
      const px = s.px;
      let k = 0;
      for (let y = 0; y < th; y++) {
        const row = (ty + y) * w + tx;
        for (let x = 0; x < tw; x++) px[k++] = values[row + x]!;
      }
      o = encodeTile(px, tw, th, writer, out, o, s);
    }
  }
  return out.subarray(0, o);
}
