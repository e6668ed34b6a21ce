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

  /** The page's numbers from the graph's outputs (what invlab.viz.explain.explain computes). */
  function explain(out) {
    const C = out.logits.data.length, D = out.input.data.length;
    const f = out.logits.data, A = out.templates.data, b = out.bias.data, x = out.input.data;
    const rec = out.reconstruction.data, contributions = new Float32Array(C * D), shares = new Float32Array(C);
    const dots = new Float64Array(C);
    let norm2 = 0;
    for (let i = 0; i < D; i++) norm2 += rec[i] * rec[i];
    for (let c = 0; c < C; c++) {
      let dot = 0, share = 0;
      for (let i = 0; i < D; i++) {
        const a = A[c * D + i], k = f[c] * a;
        contributions[c * D + i] = k; dot += a * x[i]; share += k * rec[i];
      }
      dots[c] = dot; shares[c] = share / Math.max(norm2, 1e-12);
    }
    let prediction = 0;
    for (let c = 1; c < C; c++) if (f[c] > f[prediction]) prediction = c;
    let worst = 0;
    for (let c = 0; c < C; c++) worst = Math.max(worst, Math.abs(dots[c] + b[c] - f[c]));
    return { classes: C, input: x, logits: f, probabilities: out.probabilities.data, bias: b,
             templates: rows(A, C, D), contributions: rows(contributions, C, D), reconstruction: rec,
             shares: shares, dots: dots, prediction: prediction, largest_difference: worst, pattern: out.pattern.data };
  }

  const state = {
    ready: false, network: null, net: null, source: "test image", sample: 0, noise: 0,
    raw: null, result: null, previousPattern: null, baseline: null, changedUnits: null, updates: 0,
    timing: { run_ms: null, total_ms: null }, error: null,
  };
  let views, ink, busy = false, pending = null;

  function showError(message) {
    state.error = message;
    const box = $("invlab-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  // a lesson network's own data set's test images; for your own network, any of the same size
  function samplesFor(net) {
    const cat = window.INVLAB_CATALOGUE;
    if (net.dataset) return cat.samples[net.dataset] || null;
    return Object.values(cat.samples).find((s) => s.shape[1] === state.net.height && s.shape[2] === state.net.width) || null;
  }

  function sampleImage(s, i) {
    const n = s.shape[1] * s.shape[2], px = window.InvlabRuntime.bytesOf(s.pixels), out = new Float32Array(n);
    for (let k = 0; k < n; k++) out[k] = px[i * n + k] / 255;
    return out;
  }

  function rawInput() {
    const net = state.net;
    if (state.source === "drawing") return ink.digit(net.height, net.width);
    const s = samplesFor(state.network);
    return s ? sampleImage(s, state.sample) : new Float32Array(net.height * net.width);
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
    if (state.source !== "drawing" && s) {
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
    const names = entry.class_names && entry.class_names.length ? entry.class_names : null;
    state.net = net;
    const probe = await window.InvlabRuntime.run(net, new Float32Array(net.height * net.width));
    const C = probe.logits.data.length;
    entry.class_names = names && names.length === C ? names : Array.from({ length: C }, (_, k) => String(k));
    state.network = entry; state.previousPattern = null; state.baseline = null;
    const cat = window.INVLAB_CATALOGUE;
    views.specs = cat.figures[entry.dataset] || cat.generic_figures;
    views.reset(entry.class_names, net.height, net.width);
    fillSamples();
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
    showError(null);
    update();
  }

  async function selectFile(file) {
    try {
      if (!file) return;
      if (file.size > 50 * 1024 * 1024) throw new Error(`${file.name} is ${(file.size / 1e6).toFixed(1)} MB, more than this page takes (50 MB).`);
      const bytes = new Uint8Array(await file.arrayBuffer());
      await useNetwork({ id: "own", model: file.name, dataset: "", label: file.name, class_names: null }, bytes);
      const select = $("invlab-network");
      let option = select.querySelector("option[value=own]");
      if (!option) { option = document.createElement("option"); option.value = "own"; select.appendChild(option); }
      option.textContent = `your network: ${file.name}`;
      select.value = "own";
      showError(null);
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
      if (select.value !== "own") selectLesson(select.value).catch((e) => showError(e.message || String(e)));
    });
    $("invlab-sample").addEventListener("change", (e) => {
      state.sample = Number(e.target.value); state.source = "test image"; state.baseline = null; ink.clear(); update();
    });
    $("invlab-noise").addEventListener("input", (e) => {
      state.noise = Number(e.target.value); state.baseline = null;
      $("invlab-noise-value").textContent = state.noise.toFixed(2); update();
    });
    $("invlab-undo").addEventListener("click", () => {
      ink.undo(); state.baseline = null; if (ink.empty()) state.source = "test image"; update();
    });
    $("invlab-clear").addEventListener("click", () => {
      ink.clear(); state.source = "test image"; state.baseline = null; update();
    });
    const file = $("invlab-file"), drop = $("invlab-drop");
    file.addEventListener("change", () => selectFile(file.files[0]));
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("invlab-dragging"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("invlab-dragging"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault(); drop.classList.remove("invlab-dragging");
      selectFile(e.dataTransfer.files[0]);
    });
    window.addEventListener("resize", () => { if (state.result) views.update(state.result); });
    await selectLesson(cat.networks[0].id);
    state.ready = true;
  }

  window.invlabExplorer = {
    state: state, update: update, selectLesson: selectLesson, selectFile: selectFile,
    titles: () => views.titles(),
    idle: () => !busy && pending === null,
  };
  window.addEventListener("load", () => {
    start().catch((err) => { showError(`the explorer could not start: ${err.message || err}`); });
  });
})();
