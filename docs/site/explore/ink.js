/* The drawing canvas: mouse, touch and pen (pointer events), undo and clear, and the drawing
 * framed the way MNIST frames its digits (a port of invlab.viz.explain.ink_to_digit). */
(function () {
  "use strict";

  // Python's round(): halves to even, so that the framing matches ink_to_digit's
  function roundHalfEven(v) {
    const r = Math.round(v);
    return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  // torch's F.interpolate(mode="area"): adaptive average pooling, bins [floor(i*n/m), ceil((i+1)*n/m))
  function areaResize(src, h, w, oh, ow) {
    const out = new Float32Array(oh * ow);
    for (let i = 0; i < oh; i++) {
      const y0 = Math.floor((i * h) / oh), y1 = Math.ceil(((i + 1) * h) / oh);
      for (let j = 0; j < ow; j++) {
        const x0 = Math.floor((j * w) / ow), x1 = Math.ceil(((j + 1) * w) / ow);
        let sum = 0;
        for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) sum += src[y * w + x];
        out[i * ow + j] = sum / ((y1 - y0) * (x1 - x0));
      }
    }
    return out;
  }

  /** ink (S*S values in [0, 1]) -> an MNIST-framed digit (H*W): the ink's bounding box scaled
   * into a box of 20/28 of the side, placed with its centre of mass at the image's centre. */
  function inkToDigit(ink, size, height, width) {
    let r0 = size, r1 = -1, c0 = size, c1 = -1;
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
      if (ink[y * size + x] > 0.05) {
        if (y < r0) r0 = y; if (y > r1) r1 = y; if (x < c0) c0 = x; if (x > c1) c1 = x;
      }
    }
    const out = new Float32Array(height * width);
    if (r1 < 0) return out;
    const h = r1 - r0 + 1, w = c1 - c0 + 1, crop = new Float32Array(h * w);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) crop[y * w + x] = ink[(r0 + y) * size + c0 + x];
    const box = (20 / 28) * Math.min(height, width), scale = box / Math.max(h, w);
    const sh = Math.max(1, roundHalfEven(h * scale)), sw = Math.max(1, roundHalfEven(w * scale));
    const small = areaResize(crop, h, w, sh, sw);
    let mass = 0, my = 0, mx = 0;
    for (let y = 0; y < sh; y++) for (let x = 0; x < sw; x++) {
      const v = Math.min(1, Math.max(0, small[y * sw + x]));
      small[y * sw + x] = v; mass += v; my += v * y; mx += v * x;
    }
    mass = Math.max(mass, 1e-6);
    let top = roundHalfEven((height - 1) / 2 - my / mass), left = roundHalfEven((width - 1) / 2 - mx / mass);
    top = Math.min(Math.max(top, 0), height - sh); left = Math.min(Math.max(left, 0), width - sw);
    for (let y = 0; y < sh; y++) for (let x = 0; x < sw; x++) out[(top + y) * width + left + x] = small[y * sw + x];
    return out;
  }

  /** A canvas of `size` pixels drawn with a round brush; onChange("start" | "move" | "end") after each change.
   * The ink lives on a canvas of its own; the visible one shows it, or, before the first stroke, the image
   * the network sees (a test image, your picture) under a "draw here" hint. */
  function Ink(canvas, size, radius, onChange) {
    this.canvas = canvas; this.size = size; this.radius = radius; this.onChange = onChange;
    this.strokes = []; this.current = null; this.backdrop = null;
    canvas.width = size; canvas.height = size;
    this.view = canvas.getContext("2d");
    this.inkCanvas = document.createElement("canvas");
    this.inkCanvas.width = size; this.inkCanvas.height = size;
    this.ctx = this.inkCanvas.getContext("2d", { willReadFrequently: true });
    this.redraw();
    const at = (e) => {
      const r = canvas.getBoundingClientRect();
      return [((e.clientX - r.left) * size) / r.width, ((e.clientY - r.top) * size) / r.height];
    };
    canvas.addEventListener("pointerdown", (e) => {
      e.preventDefault();
      canvas.setPointerCapture(e.pointerId);
      this.current = [at(e)];
      this.strokes.push(this.current);
      this.segment(this.current[0], this.current[0]);
      this.onChange("start");
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!this.current) return;
      e.preventDefault();
      const p = at(e), last = this.current[this.current.length - 1];
      this.current.push(p);
      this.segment(last, p);
      this.onChange("move");
    });
    const end = () => {
      if (!this.current) return;
      this.current = null;
      this.onChange("end");
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
  }

  Ink.prototype.segment = function (a, b) {
    const c = this.ctx;
    c.strokeStyle = "white"; c.lineWidth = 2 * this.radius; c.lineCap = "round"; c.lineJoin = "round";
    c.beginPath(); c.moveTo(a[0], a[1]); c.lineTo(b[0], b[1]); c.stroke();
    this.show();
  };

  Ink.prototype.redraw = function () {
    this.ctx.fillStyle = "black";
    this.ctx.fillRect(0, 0, this.size, this.size);
    for (const s of this.strokes) for (let i = 0; i < s.length; i++) this.segment(s[Math.max(0, i - 1)], s[i]);
    this.show();
  };

  /** What the visible canvas shows: the ink, or with no stroke yet the backdrop and the hint. */
  Ink.prototype.show = function () {
    const v = this.view, n = this.size;
    v.imageSmoothingEnabled = false;
    if (this.strokes.length || !this.backdrop) v.drawImage(this.inkCanvas, 0, 0);
    else v.drawImage(this.backdrop, 0, 0, n, n);
    if (!this.strokes.length) {
      v.save(); v.fillStyle = "rgba(0, 0, 0, 0.55)"; v.fillRect(0, n - 34, n, 34);
      v.fillStyle = "white"; v.font = "16px 'Open Sans', verdana, arial, sans-serif"; v.textAlign = "center";
      v.fillText("draw here", n / 2, n - 12); v.restore();
    }
  };

  /** The image before the first stroke: C*h*w values in [0, 1] (channel-major), or null for none. */
  Ink.prototype.setBackdrop = function (pixels, C, h, w) {
    if (!pixels) { this.backdrop = null; this.show(); return; }
    const img = new ImageData(w, h), D = h * w;
    for (let i = 0; i < D; i++) {
      for (let c = 0; c < 3; c++) img.data[4 * i + c] = 255 * Math.min(1, Math.max(0, pixels[(C === 3 ? c : 0) * D + i]));
      img.data[4 * i + 3] = 255;
    }
    this.backdrop = document.createElement("canvas");
    this.backdrop.width = w; this.backdrop.height = h;
    this.backdrop.getContext("2d").putImageData(img, 0, 0);
    this.show();
  };

  Ink.prototype.undo = function () { this.strokes.pop(); this.redraw(); };
  Ink.prototype.clear = function () { this.strokes = []; this.redraw(); };
  Ink.prototype.empty = function () { return this.strokes.length === 0; };

  /** The ink, S*S values in [0, 1] (the canvas's red channel). */
  Ink.prototype.ink = function () {
    const px = this.ctx.getImageData(0, 0, this.size, this.size).data, out = new Float32Array(this.size * this.size);
    for (let i = 0; i < out.length; i++) out[i] = px[4 * i] / 255;
    return out;
  };

  Ink.prototype.digit = function (height, width) { return inkToDigit(this.ink(), this.size, height, width); };

  window.InvlabInk = { Ink: Ink, inkToDigit: inkToDigit, areaResize: areaResize };
})();
