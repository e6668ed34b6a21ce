/* The Explore page: draw (or pick a test image), and every view answers at once, computed in
 * this browser by the network's ONNX graph (invlab export). window.invlabExplorer exposes the
 * state and the last result for the tests and the benchmark. */
(function () {
  "use strict";

  const CANVAS = 280, RADIUS = 11; // invlab.viz.explain.CANVAS_SIZE and BRUSH_RADIUS
  const $ = (id) => document.getElementById(id);

  // reproducible Gaussian noise for a noise level and a seed (mulberry32 + Box-Muller)
  function noise(n, sigma, seed) {
    let a = (seed + 0x9e3779b9) >>> 0;
    const rand = () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = sigma * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    return out;
  }

  function rows(data, count, size) {
    const out = [];
    for (let c = 0; c < count; c++) out.push(data.subarray(c * size, (c + 1) * size));
    return out;
  }

  function fmt(v) { return Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(4) : v.toExponential(2); }

  /** The page's numbers from the graph's outputs (what invlab.viz.explain.explain computes). The template rows
   * are every class's, or with a graph exported with --top-k the K most probable classes' (`template_classes`). */
  function explain(out) {
    const C = out.logits.data.length, D = out.input.data.length;
    const f = out.logits.data, A = out.templates.data, b = out.bias.data, x = out.input.data;
    const K = A.length / D, classes = out.classes ? Array.from(out.classes.data, Number) : Array.from({ length: C }, (_, c) => c);
    const rec = out.reconstruction.data, contributions = new Float32Array(K * D), shares = new Float32Array(K);
    const dots = new Float64Array(C).fill(NaN);
    let norm2 = 0;
    for (let i = 0; i < D; i++) norm2 += rec[i] * rec[i];
    for (let r = 0; r < K; r++) {
      const c = classes[r];
      let dot = 0, share = 0;
      for (let i = 0; i < D; i++) {
        const a = A[r * D + i], k = f[c] * a;
        contributions[r * D + i] = k; dot += a * x[i]; share += k * rec[i];
      }
      dots[c] = dot; shares[r] = share / Math.max(norm2, 1e-12);
    }
    let prediction = 0;
    for (let c = 1; c < C; c++) if (f[c] > f[prediction]) prediction = c;
    let worst = 0;
    for (const c of classes) worst = Math.max(worst, Math.abs(dots[c] + b[c] - f[c]));
    return { classes: C, input: x, logits: f, probabilities: out.probabilities.data, bias: b,
             templates: rows(A, K, D), contributions: rows(contributions, K, D), template_classes: classes,
             reconstruction: rec, shares: shares, dots: dots, prediction: prediction, largest_difference: worst,
             pattern: out.pattern.data };
  }

  const state = {
    ready: false, network: null, net: null, source: "test image", sample: 0, noise: 0, image: null,
    raw: null, result: null, previousPattern: null, baseline: null, changedUnits: null, updates: 0, regions: null, plane: null,
    timing: { run_ms: null, total_ms: null }, error: null,
  };
  let views, ink, busy = false, pending = null, own = null;

  function showError(message) {
    state.error = message;
    const box = $("invlab-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  // the test images of the network's data set (a lesson network's, or the one an exported file records); for a
  // file that records none, a grey one, those of the same size; none for a colour network without its data set
  function samplesFor(net) {
    const cat = window.INVLAB_CATALOGUE;
    if (net.dataset) return cat.samples[net.dataset] || null;
    if (state.net.channels !== 1) return null;
    return Object.values(cat.samples).find((s) => s.shape[1] === state.net.height && s.shape[2] === state.net.width) || null;
  }

  // one grey test image as the network's input (C copies for a colour network)
  function sampleImage(s, i) {
    const n = s.shape[1] * s.shape[2], px = window.InvlabRuntime.bytesOf(s.pixels), C = state.net.channels;
    const out = new Float32Array(C * n);
    for (let k = 0; k < n; k++) for (let c = 0; c < C; c++) out[c * n + k] = px[i * n + k] / 255;
    return out;
  }

  function replicate(grey, C) {
    if (C === 1) return grey;
    const out = new Float32Array(C * grey.length);
    for (let c = 0; c < C; c++) out.set(grey, c * grey.length);
    return out;
  }

  function rawInput() {
    const net = state.net;
    if (state.source === "drawing") return replicate(ink.digit(net.height, net.width), net.channels);
    if (state.source === "image" && state.image) return picture(state.image.bitmap, net);
    const s = samplesFor(state.network);
    return s ? sampleImage(s, state.sample) : new Float32Array(net.channels * net.height * net.width);
  }

  // pixels of `bitmap` drawn on a canvas of w x h, the picture fitted whole and centred on black
  function fitted(bitmap, w, h) {
    const canvas = document.createElement("canvas");
    canvas.width = w; canvas.height = h;
    const c = canvas.getContext("2d", { willReadFrequently: true }), k = Math.min(w / bitmap.width, h / bitmap.height);
    c.fillStyle = "black"; c.fillRect(0, 0, w, h);
    c.imageSmoothingQuality = "high";
    c.drawImage(bitmap, (w - bitmap.width * k) / 2, (h - bitmap.height * k) / 2, bitmap.width * k, bitmap.height * k);
    return c.getImageData(0, 0, w, h).data;
  }

  /** A picture (PNG, JPEG) as the network's input: colour networks get its RGB fitted and centred; grey ones its
   * luminance (0.299 R + 0.587 G + 0.114 B); a 28 x 28 grey network (MNIST-like) gets it framed as a drawing is
   * (dark ink on light paper inverted first). Values in [0, 1]. */
  function picture(bitmap, net) {
    const H = net.height, W = net.width, C = net.channels;
    if (C === 3) {
      const px = fitted(bitmap, W, H), out = new Float32Array(3 * H * W);
      for (let i = 0; i < H * W; i++) for (let c = 0; c < 3; c++) out[c * H * W + i] = px[4 * i + c] / 255;
      return out;
    }
    const mnist = H === 28 && W === 28, side = mnist ? CANVAS : 0;
    const px = fitted(bitmap, side || W, side || H), n = px.length / 4, lum = new Float32Array(n);
    let mean = 0;
    for (let i = 0; i < n; i++) {
      lum[i] = (0.299 * px[4 * i] + 0.587 * px[4 * i + 1] + 0.114 * px[4 * i + 2]) / 255; mean += lum[i] / n;
    }
    if (!mnist) return lum;
    if (mean > 0.5) for (let i = 0; i < n; i++) lum[i] = 1 - lum[i];  // ink is bright on MNIST's black
    return window.InvlabInk.inkToDigit(lum, CANVAS, H, W);
  }

  /** Recompute and redraw everything for the current input; `started` is the event's time. */
  async function update(started) {
    if (busy) { pending = pending || started; return; }
    busy = true;
    try {
      const raw = rawInput(), n = raw.length;
      const x = new Float32Array(raw);
      if (state.noise > 0) {
        const e = noise(n, state.noise, state.sample);
        for (let i = 0; i < n; i++) x[i] += e[i];
      }
      const t0 = performance.now();
      const out = await window.InvlabRuntime.run(state.net, x);
      const t1 = performance.now();
      const ex = explain(out);
      // region awareness: against the pattern before the stroke being drawn (else the last update's)
      const prev = state.baseline || state.previousPattern;
      if (prev && prev.length === ex.pattern.length) {
        let changed = 0;
        for (let i = 0; i < prev.length; i++) if (prev[i] !== ex.pattern[i]) changed++;
        state.changedUnits = changed;
      } else state.changedUnits = null;
      state.previousPattern = Float32Array.from(ex.pattern);
      state.raw = x; state.result = ex;
      views.update(ex);
      describe(ex);
      if (state.source !== "drawing") ink.setBackdrop(raw, state.net.channels, state.net.height, state.net.width);
      showError(null);  // whatever failed before, this action worked
      state.timing = { run_ms: t1 - t0, total_ms: performance.now() - (started || t0) };
      state.updates++;
    } catch (err) {
      showError(`the network could not be run on this input: ${err.message || err}`);
    } finally {
      busy = false;
      if (pending !== null) { const p = pending; pending = null; update(p); }
    }
  }

  function unitsText(k, units) {
    const n = units.toLocaleString("en");
    if (k === null) return `${n} units; draw to see the region change`;
    const since = state.baseline ? "since this stroke began" : "since the last update";
    return k === 0 ? `same affine region: none of the ${n} units changed state ${since}` :
      `new affine region: ${k.toLocaleString("en")} of ${n} units changed state ${since}`;
  }

  function describe(ex) {
    const names = state.network.class_names, c = ex.prediction, s = samplesFor(state.network);
    let what = "your drawing";
    if (state.source === "image" && state.image) what = `your image ${state.image.name}`;
    else if (state.source !== "drawing" && !s) what = "a blank image (draw, or choose a picture)";
    else if (state.source !== "drawing" && s) {
      const label = s.labels[state.sample], truth = state.network.dataset ? names[label] : s.class_names[label];
      what = `test image #${state.sample} (true class <b>${truth}</b>)`;
    }
    $("invlab-status").innerHTML = `${what}: predicted <b>${names[c]}</b> (${(100 * ex.probabilities[c]).toFixed(1)} %)` +
      (state.noise ? `, noise σ = ${state.noise.toFixed(2)}` : "");
    $("invlab-decomposition").innerHTML =
      `exact decomposition, class <b>${names[c]}</b>: ⟨A[x]<sub>c</sub>, x⟩ + b[x]<sub>c</sub> = ${fmt(ex.dots[c])} + ` +
      `${fmt(ex.bias[c])} = <b>${fmt(ex.dots[c] + ex.bias[c])}</b>; f<sub>c</sub>(x) = <b>${fmt(ex.logits[c])}</b>; ` +
      `largest difference over the ${ex.classes} classes: ${ex.largest_difference.toExponential(1)}`;
    $("invlab-region").textContent = unitsText(state.changedUnits, ex.pattern.length);
  }

  async function useNetwork(entry, bytes) {
    const net = await window.InvlabRuntime.load(bytes, entry.label);
    const meta = net.meta || {};
    let names = entry.class_names && entry.class_names.length ? entry.class_names : null;
    if (!names && meta["invlab.class_names"]) {
      try { names = JSON.parse(meta["invlab.class_names"]); } catch (err) { names = null; }
    }
    if (!entry.dataset && meta["invlab.dataset"]) entry.dataset = meta["invlab.dataset"];
    state.net = net;
    const probe = await window.InvlabRuntime.run(net, new Float32Array(net.channels * net.height * net.width));
    const C = probe.logits.data.length;
    entry.class_names = names && names.length === C ? names : Array.from({ length: C }, (_, k) => String(k));
    state.network = entry; state.previousPattern = null; state.baseline = null;
    const cat = window.INVLAB_CATALOGUE;
    views.specs = cat.figures[entry.dataset] || cat.generic_figures;
    views.reset(entry.class_names, net.height, net.width, net.channels);
    views.perChannel = $("invlab-channel-scale").checked;
    $("invlab-channel-scale-box").hidden = net.channels === 1;
    if (state.source === "test image" || (state.source === "image" && !state.image)) state.source = "test image";
    fillSamples();
    await regionsFor(net);
    return net;
  }

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const el = document.createElement("script");
      el.src = src; el.onload = resolve;
      el.onerror = () => reject(new Error(`could not load ${src}`));
      document.body.appendChild(el);
    });
  }

  async function selectLesson(id) {
    const cat = window.INVLAB_CATALOGUE, entry = cat.networks.find((n) => n.id === id);
    window.INVLAB_NETWORK_FILES = window.INVLAB_NETWORK_FILES || {};
    if (!window.INVLAB_NETWORK_FILES[id]) await loadScript(`${base}${entry.file}`);
    await useNetwork({ ...entry, label: `${entry.model} on ${entry.dataset}` },
                     window.InvlabRuntime.bytesOf(window.INVLAB_NETWORK_FILES[id]));
    $("invlab-network").value = id;
    showError(null);
    update();
  }

  async function selectFile(file) {
    try {
      if (!file) return;
      const max = window.InvlabRuntime.MAX_BYTES;
      if (file.size > max) throw new Error(`${file.name} is ${(file.size / 1e6).toFixed(1)} MB, more than this page takes (${max / 1e6} MB).`);
      const bytes = new Uint8Array(await file.arrayBuffer());
      const entry = { id: "own", model: file.name, dataset: "", label: file.name, class_names: null };
      await useNetwork(entry, bytes);
      own = { entry: entry, bytes: bytes };
      const select = $("invlab-network");
      let option = select.querySelector("option[value=own]");
      if (!option) { option = document.createElement("option"); option.value = "own"; select.appendChild(option); }
      option.textContent = `your network: ${file.name}`;
      select.value = "own";
      showError(null);
      update();
    } catch (err) {
      showError(err.message || String(err));
      $("invlab-network").value = state.network ? state.network.id : "";  // the selector names the network in use
    }
  }

  function isImage(file) { return /^image\//.test(file.type) || /\.(png|jpe?g)$/i.test(file.name); }

  /** A picture of yours (PNG or JPEG, any size) as the input, fitted to the network's. */
  async function selectImage(file) {
    try {
      if (!file) return;
      let bitmap;
      try { bitmap = await createImageBitmap(file); } catch (err) {
        throw new Error(`${file.name} is not an image this page can read (a PNG or a JPEG).`);
      }
      state.image = { name: file.name, bitmap: bitmap };
      state.source = "image"; state.baseline = null; ink.clear();
      update();
    } catch (err) {
      showError(err.message || String(err));
    }
  }

  function fillSamples() {
    const select = $("invlab-sample"), s = samplesFor(state.network);
    select.innerHTML = "";
    if (!s) { select.disabled = true; return; }
    select.disabled = false;
    const names = state.network.class_names;
    s.labels.forEach((label, i) => {
      const o = document.createElement("option");
      o.value = String(i); o.textContent = `#${i}: ${names[label] !== undefined ? names[label] : label}`;
      select.appendChild(o);
    });
    state.sample = Math.min(state.sample, s.labels.length - 1);
    select.value = String(state.sample);
  }

  // the regions view: for a network whose file carries the segment-walking graph (invlab export --regions)
  async function regionsFor(net) {
    state.regions = null;
    const box = $("invlab-regions"), s = samplesFor(state.network);
    const walker = await window.InvlabRegions.prepare(net);
    box.hidden = !walker || !s;
    $("invlab-regions-status").textContent = "";
    const plot = $("invlab-regions-plot");
    plot.getContext("2d").clearRect(0, 0, plot.width, plot.height);
    if (box.hidden) return;
    const names = state.network.class_names;
    for (const [id, first] of [["invlab-regions-target", 1], ["invlab-regions-third", 2]]) {
      const select = $(id);
      select.innerHTML = "";
      s.labels.forEach((label, i) => {
        const o = document.createElement("option");
        o.value = String(i); o.textContent = `#${i}: ${names[label] !== undefined ? names[label] : label}`;
        select.appendChild(o);
      });
      select.value = String(Math.min(first, s.labels.length - 1));
    }
    $("invlab-plane-status").textContent = "";
    const map = $("invlab-plane-map");
    map.getContext("2d").clearRect(0, 0, map.width, map.height);
  }

  /** The plane through the current input, test image `target` and test image `third`, on a 64 x 64 grid. */
  async function mapPlane(target, third, resolution) {
    const s = samplesFor(state.network), net = state.net;
    if (!net.regions || !s) throw new Error("this network's file carries no segment-walking graph (invlab export --regions)");
    target = target === undefined ? Number($("invlab-regions-target").value) : target;
    third = third === undefined ? Number($("invlab-regions-third").value) : third;
    $("invlab-regions-target").value = String(target); $("invlab-regions-third").value = String(third);
    const x0 = state.raw ? Float32Array.from(state.raw) : rawInput(), x1 = sampleImage(s, target), x2 = sampleImage(s, third);
    $("invlab-plane-status").textContent = "mapping the plane…";
    const result = await window.InvlabRegions.plane(net, x0, x1, x2, resolution || 64);
    result.x0 = x0; result.x1 = x1; result.x2 = x2;
    state.plane = result;
    $("invlab-plane-status").textContent =
      `${result.count.toLocaleString("en")} regions met by the ${result.resolution} × ${result.resolution} grid ` +
      `— ${(result.ms / 1000).toFixed(2)} s in this browser, ${result.runs} runs of the graph`;
    window.InvlabRegions.drawPlane($("invlab-plane-map"), result);
    return result;
  }

  /** Walk the segment from the current input (as the network sees it now) to test image `target`. */
  async function walkRegions(target) {
    const s = samplesFor(state.network), net = state.net;
    if (!net.regions || !s) throw new Error("this network's file carries no segment-walking graph (invlab export --regions)");
    target = target === undefined ? Number($("invlab-regions-target").value) : target;
    $("invlab-regions-target").value = String(target);
    const x0 = state.raw ? Float32Array.from(state.raw) : rawInput(), x1 = sampleImage(s, target);
    $("invlab-regions-status").textContent = "walking the segment…";
    const result = await window.InvlabRegions.walk(net, x0, x1);
    const names = state.network.class_names;
    result.x0 = x0; result.x1 = x1; result.target = target;
    state.regions = result;
    const changes = result.decisions.map(([t, a, b]) => `${names[a]} → ${names[b]} at t = ${t.toFixed(4)}`);
    $("invlab-regions-status").textContent =
      `${result.pieces.length.toLocaleString("en")} affine pieces (${result.breaks.length.toLocaleString("en")} ` +
      `breaks); ${changes.length ? "the predicted class changes: " + changes.join(", ") : "one predicted class all along"}` +
      ` — ${(result.ms / 1000).toFixed(2)} s in this browser, ${result.runs} runs of the graph`;
    window.InvlabRegions.draw($("invlab-regions-plot"), result, names);
    return result;
  }

  let base = "";
  async function start() {
    const cat = window.INVLAB_CATALOGUE;
    base = document.getElementById("invlab-explorer").dataset.assets;
    views = new window.InvlabViews.Views({ probabilities: $("invlab-probabilities"), shares: $("invlab-shares"),
                                           images: $("invlab-images"), templates: $("invlab-templates") },
                                         cat.generic_figures);
    ink = new window.InvlabInk.Ink($("invlab-canvas"), CANVAS, RADIUS, (kind) => {
      if (kind === "start") state.baseline = state.previousPattern;
      state.source = "drawing";
      update(performance.now());  // a stroke's moves while a run is in flight are folded into one update
    });
    const select = $("invlab-network");
    for (const n of cat.networks) {
      const o = document.createElement("option");
      o.value = n.id; o.textContent = `${n.model} · ${n.dataset} · ${n.test_accuracy.toFixed(2)} % test accuracy`;
      select.appendChild(o);
    }
    select.addEventListener("change", () => {
      const chosen = select.value === "own" && own ?
        useNetwork(own.entry, own.bytes).then(() => { showError(null); update(); }) : selectLesson(select.value);
      chosen.catch((e) => showError(e.message || String(e)));
    });
    $("invlab-sample").addEventListener("change", (e) => {
      state.sample = Number(e.target.value); state.source = "test image"; state.image = null; state.baseline = null;
      ink.clear(); update();
    });
    $("invlab-noise").addEventListener("input", (e) => {
      state.noise = Number(e.target.value); state.baseline = null;
      $("invlab-noise-value").textContent = state.noise.toFixed(2); update();
    });
    $("invlab-undo").addEventListener("click", () => {
      ink.undo(); state.baseline = null; if (ink.empty()) state.source = state.image ? "image" : "test image"; update();
    });
    $("invlab-clear").addEventListener("click", () => {
      ink.clear(); state.source = state.image ? "image" : "test image"; state.baseline = null; update();
    });
    $("invlab-channel-scale").addEventListener("change", (e) => {
      views.perChannel = e.target.checked; if (state.result) views.update(state.result);
    });
    const file = $("invlab-file"), image = $("invlab-image"), drop = $("invlab-drop");
    file.addEventListener("change", () => selectFile(file.files[0]));
    image.addEventListener("change", () => selectImage(image.files[0]));
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("invlab-dragging"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("invlab-dragging"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault(); drop.classList.remove("invlab-dragging");
      const dropped = e.dataTransfer.files[0];
      if (dropped && isImage(dropped)) selectImage(dropped); else selectFile(dropped);
    });
    window.addEventListener("resize", () => { if (state.result) views.update(state.result); });
    $("invlab-regions-walk").addEventListener("click", () => {
      walkRegions().catch((err) => showError(`the segment could not be walked: ${err.message || err}`));
    });
    $("invlab-regions-map").addEventListener("click", () => {
      mapPlane().catch((err) => showError(`the plane could not be mapped: ${err.message || err}`));
    });
    await selectLesson(cat.networks[0].id);
    state.ready = true;
  }

  window.invlabExplorer = {
    state: state, update: update, selectLesson: selectLesson, selectFile: selectFile, selectImage: selectImage,
    walkRegions: walkRegions, mapPlane: mapPlane,
    titles: () => views.titles(),
    layout: () => views.layout,
    hint: () => { const v = $("invlab-canvas"), c = v.getContext("2d"), n = v.width;  // the "draw here" band's ink
      const band = c.getImageData(0, n - 34, n, 34).data, all = c.getImageData(0, 0, n, n - 34).data;
      let white = 0, lit = 0;
      for (let i = 0; i < band.length; i += 4) if (band[i] > 200) white++;
      for (let i = 0; i < all.length; i += 4) if (all[i] + all[i + 1] + all[i + 2] > 30) lit++;
      return { hint: white > 0, backdrop: lit > 0 }; },
    idle: () => !busy && pending === null,
  };
  window.addEventListener("load", () => {
    start().catch((err) => { showError(`the explorer could not start: ${err.message || err}`); });
  });
})();
