/* onnxruntime-web, wasm build, single-threaded, with nothing fetched: the WebAssembly binary and
 * its loader come from ort-binary.js (a classic script, so that file:// pages work too), and a
 * network is a file's bytes. Checks that a file is a graph made by `invlab export`. */
(function () {
  "use strict";

  // the ONNX contract of invlab.export, written once in Python and carried here by the site's build
  const CONTRACT = window.INVLAB_CATALOGUE.contract;
  const INPUT = CONTRACT.input;
  const OUTPUTS = CONTRACT.outputs;
  const TOP_K = CONTRACT.top_k_output; // present when exported with --top-k: the template rows' class indices
  const MAX_BYTES = CONTRACT.max_bytes;
  const MAX_SIDE = 128; // the largest image side the page draws (pixels)
  let ready = null;

  function varint(bytes, at) {
    let value = 0, scale = 1, b;
    do { b = bytes[at++]; value += (b & 0x7f) * scale; scale *= 128; } while (b & 0x80);
    return [value, at];
  }

  /** The ONNX file's metadata_props (ModelProto field 14: key 1, value 2), read from its protobuf
   * bytes without a protobuf library: {key: value}. Unreadable bytes give {}. */
  function metadata(bytes) {
    const out = {}, text = new TextDecoder();
    try {
      let at = 0;
      while (at < bytes.length) {
        let tag; [tag, at] = varint(bytes, at);
        const field = Math.floor(tag / 8), wire = tag % 8;
        if (wire === 0) { [, at] = varint(bytes, at); continue; }
        if (wire === 1) { at += 8; continue; }
        if (wire === 5) { at += 4; continue; }
        if (wire !== 2) return out;
        let len; [len, at] = varint(bytes, at);
        if (field === 14) {
          const end = at + len, entry = {};
          let p = at;
          while (p < end) {
            let t; [t, p] = varint(bytes, p);
            let n; [n, p] = varint(bytes, p);
            entry[t >> 3] = text.decode(bytes.subarray(p, p + n)); p += n;
          }
          if (entry[1] !== undefined) out[entry[1]] = entry[2] || "";
        }
        at += len;
      }
    } catch (err) { return out; }
    return out;
  }

  function bytesOf(base64) {
    const text = atob(base64), out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out;
  }

  async function gunzip(bytes) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  /** Set onnxruntime up once: its binary handed over in memory, one thread, no proxy worker. */
  function init() {
    if (!ready) {
      ready = (async () => {
        const bin = window.INVLAB_ORT_BINARY;
        if (!window.ort || !bin) throw new Error("onnxruntime-web did not load (ort.wasm.min.js, ort-binary.js)");
        ort.env.wasm.numThreads = 1;
        ort.env.wasm.proxy = false;
        ort.env.wasm.wasmBinary = await gunzip(bytesOf(bin.wasm_gz));
        const loader = new Blob([bytesOf(bin.mjs)], { type: "text/javascript" });
        ort.env.wasm.wasmPaths = { mjs: URL.createObjectURL(loader) };
        ort.env.logLevel = "error";
      })();
    }
    return ready;
  }

  // onnxruntime's message without its source location and C++ signature
  function reason(err) {
    let text = String(err.message || err).split("\n")[0];
    const at = text.indexOf("ERROR_MESSAGE:");
    if (at >= 0) text = text.slice(at + 14).trim();
    const sig = text.lastIndexOf(") ");
    return (sig >= 0 && /\.(cc|h|cpp):\d+/.test(text) ? text.slice(sig + 2) : text).replace(/\.$/, "");
  }

  /** A network from the bytes of an ONNX file; rejects with one sentence naming what is wrong. */
  async function load(bytes, name) {
    await init();
    name = name || "the file";
    if (bytes.byteLength > MAX_BYTES) {
      throw new Error(`${name} is ${(bytes.byteLength / 1e6).toFixed(1)} MB, more than this page takes ` +
                      `(${MAX_BYTES / 1e6} MB); export a smaller network with invlab export.`);
    }
    let session;
    try {
      session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    } catch (err) {
      throw new Error(`${name} is not an ONNX model this page can run (${reason(err)}); ` +
                      "make one with: invlab export CHECKPOINT --onnx OUT.onnx");
    }
    if (session.inputNames.length !== 1 || session.inputNames[0] !== INPUT) {
      throw new Error(`${name} takes the input(s) ${session.inputNames.join(", ")}, not one input named "x": ` +
                      "it was not made by invlab export (invlab export CHECKPOINT --onnx OUT.onnx).");
    }
    const missing = OUTPUTS.filter((o) => !session.outputNames.includes(o));
    if (missing.length) {
      throw new Error(`${name} lacks the output(s) ${missing.join(", ")}: it was not made by invlab export ` +
                      "(invlab export CHECKPOINT --onnx OUT.onnx).");
    }
    const info = (session.inputMetadata || [])[0] || {};
    const shape = info.shape;
    if (shape && shape.length === 3) {
      throw new Error(`${name} takes signals of shape (${shape.slice(1).join(", ")}); this page draws images ` +
                      "(C, H, W): explore 1-D networks in notebook 07.");
    }
    if (!shape || shape.length !== 4 || shape.some((d) => typeof d !== "number") || shape[0] !== 1) {
      throw new Error(`${name}'s input x has shape ${JSON.stringify(shape)}; this page takes one image of fixed ` +
                      "size (1, C, H, W).");
    }
    if (shape[1] !== 1 && shape[1] !== 3) {
      throw new Error(`${name} takes images of ${shape[1]} channels; this page draws grey (1) or colour (3) images.`);
    }
    if (shape[2] > MAX_SIDE || shape[3] > MAX_SIDE) {
      throw new Error(`${name} takes ${shape[2]} × ${shape[3]} images, larger than this page draws ` +
                      `(${MAX_SIDE} × ${MAX_SIDE}); export the network at a smaller input size.`);
    }
    return { session: session, shape: shape, channels: shape[1], height: shape[2], width: shape[3],
             topK: session.outputNames.includes(TOP_K), meta: metadata(bytes) };
  }

  /** Run the network on one raw image (C*H*W values in [0, 1], channel-major); every output as {data, dims}. */
  async function run(net, pixels) {
    const x = new ort.Tensor("float32", pixels, net.shape);
    const result = await net.session.run({ [INPUT]: x });
    const out = {};
    for (const k of OUTPUTS.concat(net.topK ? [TOP_K] : [])) out[k] = { data: result[k].data, dims: result[k].dims };
    return out;
  }

  window.InvlabRuntime = { init: init, load: load, run: run, bytesOf: bytesOf, metadata: metadata, OUTPUTS: OUTPUTS,
                           MAX_BYTES: MAX_BYTES, MAX_SIDE: MAX_SIDE };
})();
