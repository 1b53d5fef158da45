/**
 * The viewer page: every connector in a canvas at native size with its name and figures. Frames
 * arrive as tiles of RGBA (raw or run-length encoded, decoded synchronously) and are drawn as
 * they arrive; the page acknowledges them on the next animation frame with the time they were
 * painted (the server's flow control counts on those acknowledgements). The page reconnects
 * when the server goes away. `window.vdispl` exposes what was painted (for tests): `painted[id]`
 * = last painted seq, `canvas(id)`; and `drawMs` / `drawn`: the time spent decoding and drawing
 * tiles, and the frames drawn (for the benchmarks).
 */
export const VIEWER_PAGE = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>vdispl viewer</title>
<style>
  body { background: #202124; color: #e8eaed; font: 14px system-ui, sans-serif; margin: 16px; }
  h1 { font-size: 16px; font-weight: 600; margin: 0 0 12px; }
  #status { color: #9aa0a6; margin-left: 8px; font-weight: 400; }
  .conn { display: inline-block; vertical-align: top; margin: 0 16px 16px 0; }
  .conn header { margin-bottom: 4px; }
  .conn .figures { color: #9aa0a6; margin-left: 8px; font-variant-numeric: tabular-nums; }
  canvas { display: block; background: #000; image-rendering: pixelated; }
</style>
</head>
<body>
<h1>vdispl <span id="status">connecting…</span></h1>
<div id="screens"></div>
<script>
(() => {
  const screens = document.getElementById('screens');
  const status = document.getElementById('status');
  const conns = new Map();
  const state = { painted: {}, canvas: (id) => conns.get(id)?.canvas, connected: false, frames: 0, drawMs: 0, drawn: 0 };
  window.vdispl = state;

  function ensure(info) {
    let c = conns.get(info.id);
    if (!c) {
      const el = document.createElement('div');
      el.className = 'conn';
      const header = document.createElement('header');
      const name = document.createElement('span');
      const figures = document.createElement('span');
      figures.className = 'figures';
      header.append(name, figures);
      const canvas = document.createElement('canvas');
      canvas.dataset.id = String(info.id);
      el.append(header, canvas);
      screens.append(el);
      c = { el, name, figures, canvas, ctx: canvas.getContext('2d', { willReadFrequently: true }), times: [], lat: [] };
      conns.set(info.id, c);
    }
    c.name.textContent = info.name + ' — ' + info.width + 'x' + info.height + (info.format ? ' ' + info.format : '');
    if (c.canvas.width !== info.width || c.canvas.height !== info.height) {
      c.canvas.width = info.width;
      c.canvas.height = info.height;
    }
    return c;
  }

  // RLE: repeated (u16 count, u32 RGBA pixel), little-endian: the page's copy of unrle() in
  // tiles.ts (the Chromium test checks pages decode it exactly).
  function unrle(bytes, n) {
    const out = new Uint32Array(n);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let k = 0;
    for (let o = 0; o + 6 <= bytes.length && k < n; o += 6) {
      const count = dv.getUint16(o, true);
      out.fill(dv.getUint32(o + 2, true), k, Math.min(n, k + count));
      k += count;
    }
    return new Uint8Array(out.buffer);
  }

  function frame(ws, buf) {
    const dv = new DataView(buf);
    const id = dv.getUint16(2, true);
    const seq = dv.getUint32(4, true);
    const flipAt = dv.getFloat64(8, true);
    const width = dv.getUint16(16, true);
    const height = dv.getUint16(18, true);
    const n = dv.getUint32(20, true);
    const c = conns.get(id) || ensure({ id, name: 'connector ' + id, width, height, format: '' });
    if (c.canvas.width !== width || c.canvas.height !== height) { c.canvas.width = width; c.canvas.height = height; }
    const tiles = [];
    let o = 24;
    for (let i = 0; i < n; i++) {
      const x = dv.getUint16(o, true), y = dv.getUint16(o + 2, true), w = dv.getUint16(o + 4, true), h = dv.getUint16(o + 6, true);
      const enc = dv.getUint8(o + 8), len = dv.getUint32(o + 9, true);
      tiles.push({ x, y, w, h, enc, data: new Uint8Array(buf, o + 13, len) });
      o += 13 + len;
    }
    // Drawn at once (in arrival order); acknowledged with the time of the next animation frame,
    // when what was drawn is presented: frames that arrive within one display refresh are
    // painted together.
    const t0 = performance.now();
    for (const t of tiles) {
      const rgba = t.enc === 1 ? unrle(t.data, t.w * t.h) : t.data;
      c.ctx.putImageData(new ImageData(new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, t.w * t.h * 4), t.w, t.h), t.x, t.y);
    }
    state.drawMs += performance.now() - t0;
    state.drawn++;
    unacked.push({ ws, c, id, seq, flipAt });
    if (!rafPending) {
      rafPending = true;
      requestAnimationFrame(presented);
    }
  }

  let unacked = [];
  let rafPending = false;
  function presented() {
    rafPending = false;
    const paintedAt = performance.timeOrigin + performance.now();
    const t = performance.now();
    const done = unacked;
    unacked = [];
    const touched = new Set();
    for (const f of done) {
      // Frames of a connection that has gone belong to the session before a reconnect.
      if (f.ws.readyState !== 1) continue;
      state.painted[f.id] = f.seq;
      state.frames++;
      f.ws.send(JSON.stringify({ type: 'ack', id: f.id, seq: f.seq, t: paintedAt }));
      f.c.times.push(t);
      f.c.lat.push(paintedAt - f.flipAt);
      if (f.c.lat.length > 120) f.c.lat.shift();
      touched.add(f.c);
    }
    for (const c of touched) {
      while (c.times.length && c.times[0] < t - 1000) c.times.shift();
      const sorted = c.lat.slice().sort((a, b) => a - b);
      const p50 = sorted[Math.floor(sorted.length / 2)] || 0;
      c.figures.textContent = c.times.length + ' fps · flip→paint ' + p50.toFixed(1) + ' ms';
    }
  }

  function connect() {
    const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      status.textContent = 'live';
      state.connected = true;
      // A new connection may be a new session: what was painted before does not count.
      state.painted = {};
    };
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') {
        const m = JSON.parse(e.data);
        if (m.type === 'connectors') {
          const ids = new Set(m.connectors.map((c) => c.id));
          for (const [id, c] of conns) if (!ids.has(id)) { c.el.remove(); conns.delete(id); }
          for (const info of m.connectors) ensure(info);
          if (m.connectors.length === 0) status.textContent = 'live — no displays yet';
          else status.textContent = 'live';
        }
      } else frame(ws, e.data);
    };
    ws.onclose = () => {
      state.connected = false;
      status.textContent = 'disconnected — reconnecting…';
      setTimeout(connect, 500);
    };
  }
  connect();
})();
</script>
</body>
</html>
`;
