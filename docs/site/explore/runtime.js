/* onnxruntime-web, wasm build, single-threaded, with nothing fetched: the WebAssembly binary and
 * its loader come from ort-binary.js (a classic script, so that file:// pages work too), and a
 * network is a file's bytes. Checks that a file is a graph made by `invlab export`. */
(function () {
  "use strict";

  const INPUT = "x";
  const OUTPUTS = ["input", "logits", "probabilities", "templates", "bias", "reconstruction", "pattern"];
  const MAX_BYTES = 50 * 1024 * 1024;
  let ready = null;

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
    const meta = (session.inputMetadata || [])[0] || {};
    const shape = meta.shape;
    if (!shape || shape.length !== 4 || shape.some((d) => typeof d !== "number")) {
      throw new Error(`${name}'s input x has shape ${JSON.stringify(shape)}; this page draws one image of fixed ` +
                      "size (1, 1, H, W).");
    }
    if (shape[0] !== 1 || shape[1] !== 1) {
      throw new Error(`${name} takes images of shape (${shape.slice(1).join(", ")}); this page draws ` +
                      "single-channel images (1, H, W): explore colour networks in notebook 00.");
    }
    return { session: session, shape: shape, height: shape[2], width: shape[3] };
  }

  /** Run the network on one raw image (H*W values in [0, 1]); every output as {data, dims}. */
  async function run(net, pixels) {
    const x = new ort.Tensor("float32", pixels, net.shape);
    const result = await net.session.run({ [INPUT]: x });
    const out = {};
    for (const k of OUTPUTS) out[k] = { data: result[k].data, dims: result[k].dims };
    return out;
  }

  window.InvlabRuntime = { init: init, load: load, run: run, bytesOf: bytesOf, OUTPUTS: OUTPUTS };
})();
