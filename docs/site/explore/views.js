/* The explorer's four figures, drawn on canvases from the notebook's own figures: their titles,
 * axis titles, sizes, colours and colour scales come from Python (invlab.viz.web.figure_spec of
 * invlab.viz.explorer.explorer_figures), the numbers from this page. */
(function () {
  "use strict";

  const FONT = "12px 'Open Sans', verdana, arial, sans-serif", INK = "#2a3f5f", GRID = "#EBF0F8";

  // torchvision's make_grid, as invlab.viz.plots.image_rows uses it, as RGBA tile lines of `perRow` images:
  // 1 pixel of padding; pictures min-max scaled each over all its channels (padding white); signed maps on a
  // symmetric scale of the row's largest |value|, 0 in the middle: through the colour scale `table` for grey
  // images, at grey for colour ones (each channel's sign a shift of hue), with `perChannel` each channel on
  // its own scale. Images are C*h*w values, channel-major.
  function tiles(images, C, h, w, signed, perRow, table, perChannel) {
    const D = h * w, lim = new Float64Array(C);
    if (signed) {
      for (const img of images) for (let c = 0; c < C; c++) for (let i = 0; i < D; i++) {
        const v = Math.abs(img[c * D + i]); if (v > lim[c]) lim[c] = v;
      }
      if (!perChannel) lim.fill(Math.max(...lim));
      for (let c = 0; c < C; c++) lim[c] = lim[c] || 1;
    }
    const pad = signed ? (C === 1 ? [table[384], table[385], table[386]] : [128, 128, 128]) : [255, 255, 255];
    const lines = [];
    for (let start = 0; start < images.length; start += perRow) {
      const group = images.slice(start, start + perRow), n = group.length;
      const gw = n * (w + 1) + 1, gh = h + 2, px = new Uint8ClampedArray(gw * gh * 4);
      for (let p = 0; p < gw * gh; p++) { px.set(pad, 4 * p); px[4 * p + 3] = 255; }
      group.forEach((img, k) => {
        let lo = Infinity, hi = -Infinity;
        if (!signed) for (let i = 0; i < img.length; i++) { const v = img[i]; if (v < lo) lo = v; if (v > hi) hi = v; }
        const span = Math.max(hi - lo, 1e-5);
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
          const at = 4 * ((y + 1) * gw + 1 + k * (w + 1) + x), i = y * w + x;
          if (C === 1) {
            const v = img[i];
            const u = signed ? Math.round(((v / lim[0] + 1) / 2) * 255) : Math.round(((Math.min(Math.max(v, lo), hi) - lo) / span) * 255);
            const t = 3 * Math.min(255, Math.max(0, u));
            px[at] = table[t]; px[at + 1] = table[t + 1]; px[at + 2] = table[t + 2];
          } else {
            for (let c = 0; c < 3; c++) {
              const v = img[c * D + i];
              px[at + c] = signed ? 127.5 + (127.5 * v) / lim[c] : ((Math.min(Math.max(v, lo), hi) - lo) / span) * 255;
            }
          }
        }
      });
      lines.push({ rgba: px, width: gw, height: gh, count: n });
    }
    return { lines: lines, zmin: signed ? -lim[0] : 0, zmax: signed ? lim[0] : 255 };
  }

  function parseColour(c) {
    if (c[0] === "#") return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
    return c.replace(/[^\d,.]/g, "").split(",").slice(0, 3).map(Number);
  }

  // a colour scale [[t, colour], ...] as 256 RGB entries
  function lut(scale) {
    const stops = scale.map(([t, c]) => [t, parseColour(c)]), out = new Uint8ClampedArray(256 * 3);
    for (let i = 0; i < 256; i++) {
      const t = i / 255;
      let k = 0;
      while (k < stops.length - 2 && t > stops[k + 1][0]) k++;
      const [t0, c0] = stops[k], [t1, c1] = stops[k + 1], u = t1 > t0 ? Math.min(1, Math.max(0, (t - t0) / (t1 - t0))) : 0;
      for (let j = 0; j < 3; j++) out[3 * i + j] = c0[j] + u * (c1[j] - c0[j]);
    }
    return out;
  }

  function niceTicks(lo, hi, count) {
    const raw = (hi - lo) / count, mag = Math.pow(10, Math.floor(Math.log10(raw || 1)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
    const ticks = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) ticks.push(Math.abs(v) < 1e-12 ? 0 : v);
    return ticks;
  }

  function label(v) { return Number(v.toPrecision(3)).toString(); }

  /** One figure: a canvas in `div`, drawn from `spec`. */
  function Figure(div, spec) {
    this.div = div; this.spec = spec;
    div.innerHTML = "";
    this.canvas = document.createElement("canvas");
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", spec.title);
    this.canvas.style.width = "100%";
    div.appendChild(this.canvas);
    this.scratch = document.createElement("canvas");
  }

  Figure.prototype.begin = function (height) {
    const dpr = window.devicePixelRatio || 1, width = Math.max(200, this.div.clientWidth || 400);
    if (this.canvas.width !== Math.round(width * dpr) || this.canvas.height !== Math.round(height * dpr)) {
      this.canvas.width = Math.round(width * dpr); this.canvas.height = Math.round(height * dpr);
      this.canvas.style.height = `${height}px`;
    }
    const c = this.canvas.getContext("2d");
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    c.clearRect(0, 0, width, height);
    c.fillStyle = "white"; c.fillRect(0, 0, width, height);
    c.font = FONT; c.fillStyle = INK; c.textBaseline = "alphabetic";
    return [c, width];
  };

  Figure.prototype.title = function (c, text, x, y, size, align) {
    c.save(); c.font = `${size}px 'Open Sans', verdana, arial, sans-serif`; c.textAlign = align || "left";
    c.fillText(text, x, y); c.restore();
  };

  // a figure's title in lines that fit `width` at `size` px (a phone is narrower than the notebook)
  function wrap(text, width, size) {
    const c = document.createElement("canvas").getContext("2d");
    c.font = `${size}px 'Open Sans', verdana, arial, sans-serif`;
    const lines = [];
    let line = "";
    for (const word of text.split(" ")) {
      const next = line ? `${line} ${word}` : word;
      if (line && c.measureText(next).width > width) { lines.push(line); line = word; } else line = next;
    }
    return lines.concat(line ? [line] : []);
  }

  Figure.prototype.heading = function (c, W, size, baseline) {
    const lines = wrap(this.spec.title, W * 0.9, size);
    lines.forEach((line, i) => this.title(c, line, W * 0.05, baseline + i * (size + 4), size));
    return (lines.length - 1) * (size + 4);
  };

  /** Bars of `values` named by `names` (the notebook's _bars). */
  Figure.prototype.bars = function (names, values) {
    const s = this.spec, m = s.margin, W0 = Math.max(200, this.div.clientWidth || 400);
    const extra = (wrap(s.title, W0 * 0.9, 13).length - 1) * 17, [c, W] = this.begin(s.height + extra);
    const left = m.l + 18, right = W - m.r, top = m.t + extra, bottom = s.height + extra - m.b - 18;
    let lo = Math.min(0, ...values), hi = Math.max(0, ...values);
    if (hi - lo < 1e-12) hi = lo + 1;
    const pad = 0.05 * (hi - lo);
    lo = lo < 0 ? lo - pad : lo; hi += pad;
    const y = (v) => bottom - ((v - lo) / (hi - lo)) * (bottom - top);
    this.heading(c, W, 13, 22);
    c.textAlign = "right"; c.textBaseline = "middle";
    for (const t of niceTicks(lo, hi, 4)) {
      c.strokeStyle = t === 0 ? "#c8d4e3" : GRID; c.beginPath(); c.moveTo(left, y(t)); c.lineTo(right, y(t)); c.stroke();
      c.fillText(label(t), left - 4, y(t));
    }
    const n = names.length, band = (right - left) / n;
    c.fillStyle = s.color;
    values.forEach((v, k) => {
      const x0 = left + band * (k + 0.1), y0 = y(Math.max(v, 0)), y1 = y(Math.min(v, 0));
      c.fillRect(x0, y0, band * 0.8, Math.max(y1 - y0, 0.5));
    });
    c.fillStyle = INK; c.textAlign = "center"; c.textBaseline = "top";
    names.forEach((name, k) => {
      c.save(); c.translate(left + band * (k + 0.5), bottom + 4);
      if (s.tickangle) { c.rotate((s.tickangle * Math.PI) / 180); c.textAlign = "right"; }
      c.fillText(name, 0, 0); c.restore();
    });
    c.textBaseline = "alphabetic";
    this.title(c, s.xtitle, (left + right) / 2, s.height + extra - 6, 12, "center");
    c.save(); c.translate(12, (top + bottom) / 2); c.rotate(-Math.PI / 2);
    this.title(c, s.ytitle, 0, 0, 12, "center"); c.restore();
  };

  /** Rows of images (the notebook's image_rows): `rows` as tiles() makes them, each image of a row named by
   * `captions` (or none); a row's tile lines one under the other. */
  Figure.prototype.images = function (rows, captions, w, colour) {
    const s = this.spec, m = s.margin, capH = captions ? 18 : 0, gap = s.captions ? 64 : 28;
    const scales = !colour && s.rows.some((r) => r.showscale) ? 56 : 0;
    const W = Math.max(200, this.div.clientWidth || 400), plotW = W - m.l - m.r - scales;
    const extra = (wrap(s.title, W * 0.9, 15).length - 1) * 19;
    const lines = rows.reduce((a, r) => a + r.lines.length, 0);
    const lineH = (s.height - m.t - m.b - gap * (rows.length - 1)) / lines;
    const k = Math.min(...rows.flatMap((r) => r.lines.map((l) => Math.min(plotW / l.width, lineH / l.height))));
    let height = m.t + extra + m.b + gap * (rows.length - 1);
    for (const r of rows) for (const l of r.lines) height += l.height * k + capH;
    const [c] = this.begin(Math.round(height));
    this.heading(c, W, 15, 24);
    let top = m.t + extra;
    rows.forEach((r, i) => {
      const row = s.rows[i], gw = Math.max(...r.lines.map((l) => l.width)) * k, x0 = m.l + (plotW - gw) / 2;
      this.title(c, row.title, x0 + gw / 2, top - 6, 13, "center");
      const rowTop = top;
      let named = 0;
      for (const l of r.lines) {
        this.scratch.width = l.width; this.scratch.height = l.height;
        this.scratch.getContext("2d").putImageData(new ImageData(l.rgba, l.width, l.height), 0, 0);
        c.imageSmoothingEnabled = false;
        c.drawImage(this.scratch, x0, top, l.width * k, l.height * k);
        if (captions) {
          c.textAlign = "center"; c.textBaseline = "top";
          for (let j = 0; j < l.count; j++) c.fillText(captions[named + j], x0 + (1 + j * (w + 1) + w / 2) * k, top + l.height * k + 2);
          c.textBaseline = "alphabetic";
        }
        named += l.count;
        top += l.height * k + capH;
      }
      if (row.showscale && !colour) {
        const table = this.tables[i], bx = W - m.r - scales + 8, bh = top - capH - rowTop;
        for (let y = 0; y < bh; y++) {
          const u = Math.round((1 - y / Math.max(bh - 1, 1)) * 255);
          c.fillStyle = `rgb(${table[3 * u]},${table[3 * u + 1]},${table[3 * u + 2]})`;
          c.fillRect(bx, rowTop + y, 12, 1);
        }
        c.fillStyle = INK; c.textAlign = "left"; c.textBaseline = "middle";
        [[r.zmax, 0], [0, 0.5], [r.zmin, 1]].forEach(([v, f]) => c.fillText(label(v), bx + 15, rowTop + f * bh));
        c.textBaseline = "alphabetic";
      }
      top += gap;
    });
  };

  /** The explorer's four figures in their <div>s. */
  function Views(divs, specs) { this.divs = divs; this.specs = specs; this.figures = null; }

  Views.prototype.reset = function (classNames, h, w, channels) {
    this.classes = classNames; this.h = h; this.w = w; this.channels = channels || 1; this.figures = {};
    this.perChannel = false;
    for (const key of Object.keys(this.divs)) {
      const fig = new Figure(this.divs[key], this.specs[key]);
      if (fig.spec.kind === "images") fig.tables = fig.spec.rows.map((r) => lut(r.colorscale));
      this.figures[key] = fig;
    }
  };

  /** Redraw every figure for one result of the page (explorer.js's explain()): the probabilities of every class
   * (the 20 most probable of more), the templates and contributions of the rows the graph gives (every class,
   * or the top K), five to a line on a narrow screen. */
  Views.prototype.update = function (ex) {
    const f = this.figures, h = this.h, w = this.w, C = this.channels, names = this.classes;
    let order = Array.from(ex.probabilities.keys());
    if (order.length > 20) order = order.sort((a, b) => ex.probabilities[b] - ex.probabilities[a]).slice(0, 20);
    f.probabilities.bars(order.map((c) => names[c]), order.map((c) => ex.probabilities[c]));
    const rowNames = ex.template_classes.map((c) => names[c]);
    f.shares.bars(rowNames, Array.from(ex.shares));
    const t = f.images.tables, colour = C !== 1;
    f.images.images([tiles([ex.input], C, h, w, false, 1, t[0]), tiles([ex.reconstruction], C, h, w, false, 1, t[1])],
                    null, w, colour);
    const narrow = (f.templates.div.clientWidth || 800) < 500, K = ex.templates.length;
    const perRow = narrow && K > 5 ? Math.ceil(K / 2) : K, tt = f.templates.tables;
    this.layout = { templatesPerRow: perRow, templates: K };
    f.templates.images([tiles(ex.templates, C, h, w, true, perRow, tt[0], this.perChannel),
                        tiles(ex.contributions, C, h, w, true, perRow, tt[1], this.perChannel)], rowNames, w, colour);
  };

  /** The titles drawn (for the tests: the same as the notebook's figures). */
  Views.prototype.titles = function () {
    const out = {};
    for (const [k, fig] of Object.entries(this.figures)) {
      out[k] = [fig.spec.title].concat(fig.spec.kind === "images" ? fig.spec.rows.map((r) => r.title) : [fig.spec.xtitle, fig.spec.ytitle]);
    }
    return out;
  };

  window.InvlabViews = { Views: Views, tiles: tiles, lut: lut };
})();
