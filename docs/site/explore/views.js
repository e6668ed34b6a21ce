/* The explorer's four figures, drawn on canvases from the notebook's own figures: their titles,
 * axis titles, sizes, colours and colour scales come from Python (invlab.viz.web.figure_spec of
 * invlab.viz.explorer.explorer_figures), the numbers from this page. */
(function () {
  "use strict";

  const FONT = "12px 'Open Sans', verdana, arial, sans-serif", INK = "#2a3f5f", GRID = "#EBF0F8";

  // torchvision's make_grid for single-channel images, as invlab.viz.plots.image_rows uses it:
  // images side by side with 1 pixel of padding; pictures min-max scaled each to 0-255 (padding
  // white), signed maps as they are (padding 0) with a symmetric scale of the row's largest |value|
  function grid(images, h, w, signed) {
    const n = images.length, gw = n * (w + 1) + 1, gh = h + 2, z = new Float32Array(gw * gh).fill(signed ? 0 : 255);
    let lim = 0;
    images.forEach((img, k) => {
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < img.length; i++) { const v = img[i]; if (v < lo) lo = v; if (v > hi) hi = v; }
      const span = Math.max(hi - lo, 1e-5);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
        const v = img[y * w + x], at = (y + 1) * gw + 1 + k * (w + 1) + x;
        if (signed) { z[at] = v; if (Math.abs(v) > lim) lim = Math.abs(v); }
        else z[at] = Math.round(((Math.min(Math.max(v, lo), hi) - lo) / span) * 255);
      }
    });
    return { z: z, width: gw, height: gh, zmin: signed ? -(lim || 1) : 0, zmax: signed ? lim || 1 : 255 };
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

  /** Rows of images (the notebook's image_rows): `grids` as grid() makes them, `captions` under each image. */
  Figure.prototype.images = function (grids, captions, w) {
    const s = this.spec, m = s.margin, n = grids.length, gap = s.captions ? 64 : 28;
    const scales = s.rows.some((r) => r.showscale) ? 56 : 0;
    const W = Math.max(200, this.div.clientWidth || 400), plotW = W - m.l - m.r - scales;
    const extra = (wrap(s.title, W * 0.9, 15).length - 1) * 19;
    const rowH = (s.height - m.t - m.b - gap * (n - 1)) / n;
    const k = Math.min(...grids.map((g) => Math.min(plotW / g.width, rowH / g.height)));
    const used = Math.max(...grids.map((g) => g.height * k));
    const height = Math.round(m.t + extra + n * used + (n - 1) * gap + m.b + (captions ? 20 : 0));
    const [c] = this.begin(height);
    this.heading(c, W, 15, 24);
    grids.forEach((g, i) => {
      const row = s.rows[i], top = m.t + extra + i * (used + gap), gw = g.width * k, x0 = m.l + (plotW - gw) / 2;
      this.title(c, row.title, x0 + gw / 2, top - 6, 13, "center");
      const table = this.tables[i], img = new ImageData(g.width, g.height);
      for (let p = 0; p < g.z.length; p++) {
        const u = Math.min(255, Math.max(0, Math.round(((g.z[p] - g.zmin) / (g.zmax - g.zmin)) * 255)));
        img.data[4 * p] = table[3 * u]; img.data[4 * p + 1] = table[3 * u + 1]; img.data[4 * p + 2] = table[3 * u + 2];
        img.data[4 * p + 3] = 255;
      }
      this.scratch.width = g.width; this.scratch.height = g.height;
      this.scratch.getContext("2d").putImageData(img, 0, 0);
      c.imageSmoothingEnabled = false;
      c.drawImage(this.scratch, x0, top, gw, g.height * k);
      if (captions) {
        c.textAlign = "center"; c.textBaseline = "top";
        captions.forEach((name, j) => c.fillText(name, x0 + (1 + j * (w + 1) + w / 2) * k, top + g.height * k + 4));
        c.textBaseline = "alphabetic";
      }
      if (row.showscale) {
        const bx = W - m.r - scales + 8, bh = g.height * k;
        for (let y = 0; y < bh; y++) {
          const u = Math.round((1 - y / Math.max(bh - 1, 1)) * 255);
          c.fillStyle = `rgb(${table[3 * u]},${table[3 * u + 1]},${table[3 * u + 2]})`;
          c.fillRect(bx, top + y, 12, 1);
        }
        c.fillStyle = INK; c.textAlign = "left"; c.textBaseline = "middle";
        [[g.zmax, 0], [0, 0.5], [g.zmin, 1]].forEach(([v, f]) => c.fillText(label(v), bx + 15, top + f * bh));
        c.textBaseline = "alphabetic";
      }
    });
  };

  /** The explorer's four figures in their <div>s. */
  function Views(divs, specs) { this.divs = divs; this.specs = specs; this.figures = null; }

  Views.prototype.reset = function (classNames, h, w) {
    this.classes = classNames; this.h = h; this.w = w; this.figures = {};
    for (const key of Object.keys(this.divs)) {
      const fig = new Figure(this.divs[key], this.specs[key]);
      if (fig.spec.kind === "images") fig.tables = fig.spec.rows.map((r) => lut(r.colorscale));
      this.figures[key] = fig;
    }
  };

  /** Redraw every figure for one result of the page (explorer.js's explain()). */
  Views.prototype.update = function (ex) {
    const f = this.figures, h = this.h, w = this.w, names = this.classes;
    f.probabilities.bars(names, Array.from(ex.probabilities));
    f.shares.bars(names, Array.from(ex.shares));
    f.images.images([grid([ex.input], h, w, false), grid([ex.reconstruction], h, w, false)], null, w);
    f.templates.images([grid(ex.templates, h, w, true), grid(ex.contributions, h, w, true)], names, w);
  };

  /** The titles drawn (for the tests: the same as the notebook's figures). */
  Views.prototype.titles = function () {
    const out = {};
    for (const [k, fig] of Object.entries(this.figures)) {
      out[k] = [fig.spec.title].concat(fig.spec.kind === "images" ? fig.spec.rows.map((r) => r.title) : [fig.spec.xtitle, fig.spec.ytitle]);
    }
    return out;
  };

  window.InvlabViews = { Views: Views, grid: grid, lut: lut };
})();
