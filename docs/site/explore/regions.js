/* The regions view: the pieces of the segment from the current input to a chosen test image, in this browser,
 * the counterpart of invlab.regions.segment. Two ways, by what the exported file carries:
 *
 * - the sweep (invlab.export.SegmentPoints, a network whose every nonlinearity changes state where one unit's
 *   input crosses 0: ReLUs): level by level, a level's inputs are affine in t between consecutive changes of
 *   the levels below it, so its own changes lie where a unit's sign differs at two consecutive known points,
 *   at the linear interpolation's zero. One forward per break, nothing else: the first level's changes from
 *   the two ends alone, the next level's from the points of those, and so on; the logits at every break give
 *   each piece's affine logits (they are continuous).
 * - the walk (invlab.export.SegmentWalk, any network the transposed pass takes): at a point inside a piece
 *   not yet found the graph gives the piece's whole extent (how far ahead and behind the activation pattern
 *   holds) and its affine logits; what is left of the segment on either side is searched the same way, a
 *   batch of points at a time, until the pieces tile [0, 1]. float32 leaves slivers between pieces, and flips
 *   between near-tied units: pieces with the same pattern keys (two int64 sums of the pattern with random
 *   weights) are one region, met once along the line (it is convex). */
(function () {
  "use strict";

  const COLOURS = ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880",
                   "#FF97FF", "#FECB52"];  // plotly's colorway, as the notebook's figures
  const SLIVER = 1e-7;  // a gap narrower than this (in t) is not searched: below float32's resolution of t

  const SAME = 1e-9;  // sweep: two changes of state closer than this (in t) are one break (float32 cannot part them)

  async function session(base64) {
    return ort.InferenceSession.create(window.InvlabRuntime.bytesOf(base64),
                                       { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  }

  /** The segment-walking graph an exported file carries (its metadata), and its sweeping graph where the
   * network has one, or null. */
  async function prepare(net) {
    const meta = net.meta || {};
    net.regions = null;
    if (!meta["invlab.regions"]) return null;
    net.regions = { session: await session(meta["invlab.regions"]), batch: Number(meta["invlab.regions_batch"]),
                    points: null, tail: null };
    if (meta["invlab.regions_points"]) {
      net.regions.points = { session: await session(meta["invlab.regions_points"]),
                             levels: Number(meta["invlab.regions_levels"]) };
      if (meta["invlab.regions_tail"]) net.regions.tail = { session: await session(meta["invlab.regions_tail"]) };
    }
    return net.regions;
  }

  /** The pieces of the segment from the raw input x0 to x1 (Float32Arrays of C*H*W values): swept where the
   * file carries the sweeping graph, else walked. */
  async function walk(net, x0, x1) {
    return net.regions.points ? sweep(net, x0, x1) : walkPieces(net, x0, x1);
  }

  /** Sorted t's merged into one sorted list, those within SAME of one kept once (the first). */
  function mergeSorted(a, b) {
    const out = [];
    let i = 0, j = 0;
    while (i < a.length || j < b.length) {
      const v = j >= b.length || (i < a.length && a[i] <= b[j]) ? a[i++] : b[j++];
      if (!out.length || v - out[out.length - 1] > SAME) out.push(v);
    }
    return out;
  }

  /** The sweep (see the file's comment): the breaks level by level, then the pieces' logits. */
  async function sweep(net, x0, x1) {
    const started = performance.now(), graph = net.regions.points, B = net.regions.batch;
    const feeds = { x0: new ort.Tensor("float32", x0, net.shape), x1: new ort.Tensor("float32", x1, net.shape) };
    let runs = 0, C = 0;
    /* The graph at the sorted t's, a batch at a time: each point's logits (float64, C each) and, with `level`,
     * the changes of that level's states between consecutive points (their inputs' zeros, interpolated): each
     * change's t and, with `cutting`, the cut there (affine between the two points too). */
    async function evaluate(ts, level, cutting) {
      const logits = [], found = [];
      let previous = null, previousCut = null, previousT = 0;
      for (let first = 0; first < ts.length; first += B) {
        const n = Math.min(B, ts.length - first), t = new Float32Array(B);
        for (let i = 0; i < B; i++) t[i] = ts[first + Math.min(i, n - 1)];
        const out = await graph.session.run({ ...feeds, t: new ort.Tensor("float32", t, [B]) });
        runs++;
        C = out.logits.dims[1];
        for (let i = 0; i < n; i++) logits.push(Float64Array.from(out.logits.data.subarray(i * C, (i + 1) * C)));
        if (level === undefined) continue;
        const z = out[`level_${level}`], N = z.dims[1], K = out.cut.dims[1];
        for (let i = 0; i < n; i++) {
          const row = z.data.subarray(i * N, (i + 1) * N), at = ts[first + i];
          const cut = out.cut.data.subarray(i * K, (i + 1) * K);
          for (let j = 0; previous && j < N; j++) {
            const p = previous[j], q = row[j];
            if ((p > 0) === (q > 0)) continue;
            const w = p / (p - q), change = { t: previousT + w * (at - previousT), cut: null };
            if (cutting) {
              change.cut = new Float32Array(K);
              for (let k = 0; k < K; k++) change.cut[k] = previousCut[k] + w * (cut[k] - previousCut[k]);
            }
            found.push(change);
          }
          previous = row; previousCut = cut; previousT = at;
        }
      }
      return { logits: logits, found: found.sort((a, b) => a.t - b.t) };
    }
    /* The logits at the cut values given (the tail graph, a batch at a time). */
    async function tail(cuts) {
      const logits = [];
      for (let first = 0; first < cuts.length; first += B) {
        const n = Math.min(B, cuts.length - first), K = cuts[0].length, data = new Float32Array(B * K);
        for (let i = 0; i < B; i++) data.set(cuts[first + Math.min(i, n - 1)], i * K);
        const out = await net.regions.tail.session.run({ cut: new ort.Tensor("float32", data, [B, K]) });
        runs++;
        for (let i = 0; i < n; i++) logits.push(Float64Array.from(out.logits.data.subarray(i * C, (i + 1) * C)));
      }
      return logits;
    }
    let ts = [0, 1], logits = null;
    for (let level = 0; level < graph.levels; level++) {
      const last = level + 1 === graph.levels, cutting = last && net.regions.tail !== null;
      // level 0 is affine along the whole segment: its changes from the two ends alone
      const r = await evaluate(level === 0 ? [0, 1] : ts, level, cutting);
      logits = r.logits;
      const inside = r.found.filter((c) => c.t > SAME && c.t < 1 - SAME);
      const merged = mergeSorted(ts, inside.map((c) => c.t));
      if (!last) { ts = merged; continue; }
      // the last level's breaks: their logits (from the cut there, or a forward), and each point's in order
      const known = new Map(ts.map((t, i) => [t, logits[i]])), added = merged.filter((t) => !known.has(t));
      let more;
      if (cutting) {
        const cutAt = new Map(inside.map((c) => [c.t, c.cut]));
        more = await tail(added.map((t) => cutAt.get(t)));
      } else {
        more = (await evaluate(added)).logits;
      }
      let j = 0;
      logits = merged.map((t) => (known.has(t) ? known.get(t) : more[j++]));
      ts = merged;
    }
    const pieces = [];
    for (let k = 0; k + 1 < ts.length; k++) {
      const a = new Float64Array(C), b = new Float64Array(C), w = ts[k + 1] - ts[k];
      for (let c = 0; c < C; c++) {
        b[c] = (logits[k + 1][c] - logits[k][c]) / w; a[c] = logits[k][c] - ts[k] * b[c];
      }
      pieces.push({ start: ts[k], end: ts[k + 1], a: a, b: b });
    }
    return { pieces: pieces, breaks: ts.slice(1, -1), decisions: decisions(pieces), runs: runs,
             ms: performance.now() - started, method: "sweep" };
  }

  /** The walk (see the file's comment): pieces found whole, from points inside them. */
  async function walkPieces(net, x0, x1) {
    const started = performance.now(), B = net.regions.batch;
    const feeds = { x0: new ort.Tensor("float32", x0, net.shape), x1: new ort.Tensor("float32", x1, net.shape),
                    x2: new ort.Tensor("float32", x0, net.shape), u: new ort.Tensor("float32", new Float32Array(B), [B]) };
    let open = [[0, 1]], runs = 0;
    const found = [];
    while (open.length) {
      const batch = open.slice(0, B);
      open = open.slice(B);
      const t = new Float32Array(B);
      batch.forEach(([lo, hi], i) => { t[i] = (lo + hi) / 2; });
      const out = await net.regions.session.run({ ...feeds, t: new ort.Tensor("float32", t, [B]) });
      runs++;
      const C = out.logits.dims[1];
      batch.forEach(([lo, hi], i) => {
        const at = t[i], start = Math.max(lo, at - out.behind.data[i]), end = Math.min(hi, at + out.ahead.data[i]);
        const a = new Float64Array(C), b = new Float64Array(C);
        for (let c = 0; c < C; c++) {
          b[c] = out.slope.data[i * C + c]; a[c] = out.logits.data[i * C + c] - at * b[c];
        }
        found.push({ start: start, end: end, a: a, b: b,
                     key: [out.pattern_key.data[2 * i], out.pattern_key.data[2 * i + 1]] });
        if (start - lo > SLIVER) open.push([lo, start]);
        if (hi - end > SLIVER) open.push([end, hi]);
      });
    }
    found.sort((p, q) => p.start - q.start);
    // A region is convex (its pattern's inequalities are linear), so a line meets it once: a pattern met again
    // further on is float32 flipping between near-tied units, and what lies between is that one region.
    const pieces = [], seen = new Map();
    for (const p of found) {
      const key = `${p.key[0]}:${p.key[1]}`, again = seen.get(key);
      if (again !== undefined) {
        for (const q of pieces.splice(again + 1)) seen.delete(`${q.key[0]}:${q.key[1]}`);
        pieces[again].end = Math.max(pieces[again].end, p.end);
      } else {
        seen.set(key, pieces.length);
        pieces.push(p);
      }
    }
    const breaks = pieces.slice(1).map((p) => p.start);
    return { pieces: pieces, breaks: breaks, decisions: decisions(pieces), runs: runs,
             ms: performance.now() - started, method: "walk" };
  }

  function argmax(a, b, t) {
    let best = 0;
    for (let c = 1; c < a.length; c++) if (a[c] + t * b[c] > a[best] + t * b[best]) best = c;
    return best;
  }

  /** Where the predicted class changes: [t, from, to], exactly within each piece (the next class to overtake). */
  function decisions(pieces) {
    const out = [];
    let current = argmax(pieces[0].a, pieces[0].b, pieces[0].start);
    for (const p of pieces) {
      let t = p.start;
      const first = argmax(p.a, p.b, t);
      if (first !== current) { out.push([t, current, first]); current = first; }
      for (;;) {
        let next = -1, step = Infinity;
        for (let c = 0; c < p.a.length; c++) {
          const closing = p.b[c] - p.b[current];
          if (c === current || closing <= 0) continue;
          const s = -(p.a[c] - p.a[current] + t * closing) / closing;
          if (s < step) { step = s; next = c; }
        }
        if (next < 0 || t + step >= p.end) break;
        t += step; out.push([t, current, next]); current = next;
      }
    }
    return out;
  }

  /** The logits along the segment (one line per class), the breaks as ticks under them, the decision changes
   * as dashed lines. */
  function draw(canvas, result, names) {
    const ratio = window.devicePixelRatio || 1, width = canvas.clientWidth || 600, height = 260;
    canvas.width = width * ratio; canvas.height = height * ratio; canvas.style.height = `${height}px`;
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const left = 44, right = 90, top = 10, bottom = 44, w = width - left - right, h = height - top - bottom;
    const C = result.pieces[0].a.length;
    let lo = Infinity, hi = -Infinity;
    for (const p of result.pieces) {
      for (let c = 0; c < C; c++) {
        for (const t of [p.start, p.end]) { const v = p.a[c] + t * p.b[c]; lo = Math.min(lo, v); hi = Math.max(hi, v); }
      }
    }
    const X = (t) => left + t * w, Y = (v) => top + (hi - v) / Math.max(hi - lo, 1e-9) * h;
    g.strokeStyle = "#ccc"; g.strokeRect(left, top, w, h);
    g.font = "11px sans-serif"; g.fillStyle = "#444";
    g.fillText(hi.toFixed(1), 4, top + 10); g.fillText(lo.toFixed(1), 4, top + h);
    for (let c = 0; c < C; c++) {
      g.strokeStyle = COLOURS[c % COLOURS.length]; g.lineWidth = 1.2; g.beginPath();
      result.pieces.forEach((p, k) => {
        const y0 = Y(p.a[c] + p.start * p.b[c]), y1 = Y(p.a[c] + p.end * p.b[c]);
        if (k === 0) g.moveTo(X(p.start), y0); else g.lineTo(X(p.start), y0);
        g.lineTo(X(p.end), y1);
      });
      g.stroke();
      g.fillStyle = COLOURS[c % COLOURS.length];
      g.fillText(names[c] !== undefined ? names[c] : String(c), left + w + 8, top + 12 + c * 13);
    }
    g.strokeStyle = "rgba(0,0,0,0.35)"; g.lineWidth = 1;
    for (const t of result.breaks) { g.beginPath(); g.moveTo(X(t), top + h + 4); g.lineTo(X(t), top + h + 14); g.stroke(); }
    g.setLineDash([4, 3]); g.strokeStyle = "#222";
    for (const [t] of result.decisions) { g.beginPath(); g.moveTo(X(t), top); g.lineTo(X(t), top + h); g.stroke(); }
    g.setLineDash([]);
    g.fillStyle = "#444";
    g.fillText("t = 0: the current input", left, height - 8);
    const endText = "t = 1: the chosen test image";
    g.fillText(endText, left + w - g.measureText(endText).width, height - 8);
  }

  /** The plane through the raw inputs x0, x1, x2 on a `resolution` x `resolution` grid of plane coordinates
   * (a, b) in [-0.1, 1.1] (x0 at (0, 0), x1 at (1, 0), x2 at (0, 1)), as invlab.regions.plane: each point's
   * region (numbered by its pattern keys, equal exactly where the keys are) and predicted class. */
  async function plane(net, x0, x1, x2, resolution) {
    const started = performance.now(), B = net.regions.batch, n = resolution * resolution;
    let uu = 0, vv = 0, uv = 0;
    for (let i = 0; i < x0.length; i++) {
      const u = x1[i] - x0[i], v = x2[i] - x0[i];
      uu += u * u; vv += v * v; uv += u * v;
    }
    if (uu === 0 || vv === 0 || 1 - uv * uv / (uu * vv) < 1e-12) {
      throw new Error("the three inputs lie on one line (two of them are equal): they span no plane; " +
                      "choose another third test image");
    }
    const feeds = { x0: new ort.Tensor("float32", x0, net.shape), x1: new ort.Tensor("float32", x1, net.shape),
                    x2: new ort.Tensor("float32", x2, net.shape) };
    const coord = (k) => -0.1 + 1.2 * k / (resolution - 1);
    const ids = new Int32Array(n), prediction = new Int32Array(n), numbering = new Map();
    let runs = 0;
    for (let first = 0; first < n; first += B) {
      const t = new Float32Array(B), u = new Float32Array(B);
      for (let i = 0; i < B && first + i < n; i++) {
        const k = first + i;
        t[i] = coord(k % resolution); u[i] = coord(Math.floor(k / resolution));  // rows: b, columns: a
      }
      const out = await net.regions.session.run({ ...feeds, t: new ort.Tensor("float32", t, [B]),
                                                  u: new ort.Tensor("float32", u, [B]) });
      runs++;
      const C = out.logits.dims[1];
      for (let i = 0; i < B && first + i < n; i++) {
        const key = `${out.pattern_key.data[2 * i]}:${out.pattern_key.data[2 * i + 1]}`;
        if (!numbering.has(key)) numbering.set(key, numbering.size);
        ids[first + i] = numbering.get(key);
        let best = 0;
        for (let c = 1; c < C; c++) if (out.logits.data[i * C + c] > out.logits.data[i * C + best]) best = c;
        prediction[first + i] = best;
      }
    }
    return { resolution: resolution, ids: ids, prediction: prediction, count: numbering.size, runs: runs,
             ms: performance.now() - started };
  }

  /** Two maps side by side: the predicted class, and the regions (a colour each), class boundaries in black;
   * the three inputs marked. */
  function drawPlane(canvas, result) {
    const R = result.resolution, cell = Math.max(2, Math.floor(240 / R)), side = R * cell, gap = 24;
    const ratio = window.devicePixelRatio || 1, width = 2 * side + gap, height = side + 22;
    canvas.width = width * ratio; canvas.height = height * ratio;
    canvas.style.width = `${width}px`; canvas.style.height = `${height}px`;
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const hue = (id) => { let h = Math.imul(id + 1, 2654435761) >>> 0; return `hsl(${h % 360}, ${55 + (h >> 9) % 30}%, ${55 + (h >> 17) % 25}%)`; };
    for (let i = 0; i < R; i++) {
      for (let j = 0; j < R; j++) {
        const k = i * R + j, y = (R - 1 - i) * cell;  // b grows upwards
        g.fillStyle = COLOURS[result.prediction[k] % COLOURS.length]; g.fillRect(j * cell, y, cell, cell);
        g.fillStyle = hue(result.ids[k]); g.fillRect(side + gap + j * cell, y, cell, cell);
      }
    }
    g.fillStyle = "#000";
    for (let i = 0; i < R; i++) {
      for (let j = 0; j < R; j++) {
        const k = i * R + j, y = (R - 1 - i) * cell;
        const right = j + 1 < R && result.prediction[k + 1] !== result.prediction[k];
        const up = i + 1 < R && result.prediction[k + R] !== result.prediction[k];
        for (const x0 of [0, side + gap]) {
          if (right) g.fillRect(x0 + (j + 1) * cell - 1, y, 1, cell);
          if (up) g.fillRect(x0 + j * cell, y - 1, cell, 1);
        }
      }
    }
    const at = (a, b) => [(a + 0.1) / 1.2 * (side - cell) + cell / 2, (1.1 - b) / 1.2 * (side - cell) + cell / 2];
    g.font = "11px sans-serif";
    for (const x0 of [0, side + gap]) {
      [[0, 0, "x0"], [1, 0, "x1"], [0, 1, "x2"]].forEach(([a, b, name]) => {
        const [x, y] = at(a, b);
        g.strokeStyle = "#fff"; g.lineWidth = 2; g.beginPath(); g.arc(x0 + x, y, 4, 0, 2 * Math.PI); g.stroke();
        g.fillStyle = "#fff"; g.fillText(name, x0 + x + 6, y + 4);
      });
    }
    g.fillStyle = "#444";
    g.fillText("predicted class", 0, side + 16);
    g.fillText(`${result.count.toLocaleString("en")} regions met`, side + gap, side + 16);
  }

  window.InvlabRegions = { prepare: prepare, walk: walk, sweep: sweep, walkPieces: walkPieces, draw: draw, decisions: decisions, plane: plane,
                           drawPlane: drawPlane };
})();
