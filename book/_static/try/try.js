/* "Try the networks" (book/try.md): every chapter's trained network classifies a test image or a drawing,
 * in the browser, with onnxruntime-web (WebAssembly). The build writes next to this file:
 *   try-data.json   the networks (architecture, test accuracy, chapter page), class names, 30 test images
 *   models/*.onnx   each network: raw pixels (1 x 1 x 28 x 28, 0-255) in -> probabilities and first-layer maps out
 *   ort/            onnxruntime-web's wasm build (loaded on first use, like the networks)
 * window.cnnbookTry exposes the state for the site's browser test (tests/test_try_page.py).
 */
(function () {
  "use strict";

  const app = document.getElementById("try-app");
  if (!app) return;
  const base = new URL(app.dataset.base, document.baseURI).href;
  const $ = (id) => document.getElementById(id);
  const canvas = $("try-canvas"), seen = $("try-seen"), status = $("try-status");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const seenCtx = seen.getContext("2d", { willReadFrequently: true });
  const SIDE = 28;

  const state = {
    data: null, selected: null, sessions: {}, runtime: null,
    input: null,        // {id, kind: "sample"|"drawing", label, pixels: Float32Array(784)}
    drawnFrom: null,    // the sample a drawing started from (edited in place), or null for a blank canvas
    busy: false, pending: false, runs: 0, errors: [],
  };
  window.cnnbookTry = state;

  // --- the runtime and the networks, loaded on first use ------------------------------------------

  function loadRuntime() {
    if (!state.runtime) {
      state.runtime = new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = base + "ort/ort.wasm.min.js";
        script.onload = () => {
          const ort = window.ort;
          ort.env.wasm.numThreads = 1;  // no SharedArrayBuffer needed: works without cross-origin isolation
          ort.env.wasm.wasmPaths = base + "ort/";
          ort.env.logLevel = "error";
          resolve(ort);
        };
        script.onerror = () => reject(new Error("could not load the runtime " + script.src));
        document.head.appendChild(script);
      });
    }
    return state.runtime;
  }

  function session(key) {
    if (!state.sessions[key]) {
      state.sessions[key] = loadRuntime().then((ort) =>
        ort.InferenceSession.create(base + "models/" + key + ".onnx", { executionProviders: ["wasm"] }));
    }
    return state.sessions[key];
  }

  // --- the cards -------------------------------------------------------------------------------

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function buildCards() {
    const results = $("try-results");
    for (const net of state.data.networks) {
      const card = el("div", "cnnbook-try-card");
      card.dataset.net = net.key;
      card.tabIndex = 0;
      card.setAttribute("role", "button");
      card.setAttribute("aria-pressed", "false");
      const head = el("div", "cnnbook-try-head");
      const link = el("a", "cnnbook-try-name", net.architecture);
      link.href = new URL(net.page, document.baseURI).href;
      head.appendChild(link);
      if (typeof net.test_acc === "number") {
        head.appendChild(el("span", "cnnbook-try-acc", "test accuracy " + (100 * net.test_acc).toFixed(1) + " %"));
      }
      card.appendChild(head);
      const rows = el("div", "cnnbook-try-rows");
      rows.appendChild(el("p", "cnnbook-try-empty", "—"));
      card.appendChild(rows);
      card.addEventListener("click", (event) => { if (event.target.tagName !== "A") select(net.key, true); });
      card.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); select(net.key, true); }
      });
      results.appendChild(card);
    }
  }

  function select(key, byUser) {
    if (!state.data.networks.some((n) => n.key === key)) return;
    state.selected = key;
    for (const card of document.querySelectorAll(".cnnbook-try-card")) {
      const on = card.dataset.net === key;
      card.classList.toggle("cnnbook-try-selected", on);
      card.setAttribute("aria-pressed", String(on));
    }
    if (byUser) {
      const url = new URL(window.location.href);
      url.searchParams.set("net", key);
      history.replaceState(null, "", url);
    }
    showFeatures();
  }

  function showResult(net, probabilities) {
    const card = document.querySelector(`.cnnbook-try-card[data-net="${net.key}"]`);
    const order = Array.from(probabilities.keys()).sort((a, b) => probabilities[b] - probabilities[a]);
    const rows = card.querySelector(".cnnbook-try-rows");
    rows.replaceChildren();
    order.slice(0, 3).forEach((c, rank) => {
      const row = el("div", "cnnbook-try-row" + (rank === 0 ? " cnnbook-try-top" : ""));
      const name = el("span", "cnnbook-try-class", state.data.classes[c]);
      if (rank === 0 && state.input.label !== null) {
        const right = c === state.input.label;
        name.appendChild(el("span", right ? "cnnbook-try-right" : "cnnbook-try-wrong", right ? " ✓" : " ✗"));
      }
      const bar = el("span", "cnnbook-try-bar");
      const fill = el("span", "cnnbook-try-fill");
      fill.style.width = (100 * probabilities[c]).toFixed(1) + "%";
      bar.appendChild(fill);
      row.append(name, bar, el("span", "cnnbook-try-p", (100 * probabilities[c]).toFixed(1) + " %"));
      rows.appendChild(row);
    });
    card.dataset.input = state.input.id;
    card.dataset.probabilities = JSON.stringify(Array.from(probabilities));
  }

  // --- running the networks ------------------------------------------------------------------

  async function run() {
    if (state.busy) { state.pending = true; return; }
    state.busy = true;
    try {
      do {
        state.pending = false;
        const input = state.input;
        if (!state.runtimeReady) status.textContent = "Loading the runtime and the networks (first use only)…";
        const ort = await loadRuntime();
        const tensor = new ort.Tensor("float32", input.pixels, [1, 1, SIDE, SIDE]);
        state.features = {};
        for (const net of state.data.networks) {
          const out = await (await session(net.key)).run({ pixels: tensor });
          if (state.input !== input) break;  // a newer input arrived: start again with it
          showResult(net, out.probabilities.data);
          state.features[net.key] = { data: out.features.data, dims: out.features.dims, input: input.id };
          if (net.key === state.selected) showFeatures();
        }
        state.runtimeReady = true;
        if (state.input === input) {
          state.runs += 1;
          state.done = input.id;
          status.textContent = describe(input);
        }
      } while (state.pending);
    } catch (error) {
      state.errors.push(String(error));
      status.textContent = "Something went wrong: " + error.message;
      console.error(error);
    } finally {
      state.busy = false;
    }
  }

  function describe(input) {
    if (input.kind === "sample") {
      return `Test image ${input.index} of the test set, a ${state.data.classes[input.label]}: ` +
             "each card shows its network's three most likely classes.";
    }
    return "Your drawing: each card shows its network's three most likely classes.";
  }

  function setInput(input) {
    state.input = input;
    drawSeen(input.pixels);
    for (const thumb of document.querySelectorAll(".cnnbook-try-thumb")) {
      thumb.classList.toggle("cnnbook-try-picked", input.kind === "sample" && thumb.dataset.sample === String(input.sample));
    }
    run();
  }

  // --- the first layer's feature maps of the selected network -------------------------------------

  function showFeatures() {
    const box = $("try-features");
    const net = state.data.networks.find((n) => n.key === state.selected);
    const maps = state.features && state.features[state.selected];
    if (!net || !maps || !state.input || maps.input !== state.input.id) { box.replaceChildren(); return; }
    const [, channels, height, width] = maps.dims;
    const [kh, kw] = net.first_conv.kernel;
    box.replaceChildren(el("p", "cnnbook-try-caption",
      `${net.architecture}, first layer: the ${channels} feature maps (${height} × ${width}) of its ` +
      `${kh} × ${kw} convolution for this image.`));
    const grid = el("div", "cnnbook-try-maps");
    for (let c = 0; c < channels; c++) {
      const map = maps.data.subarray(c * height * width, (c + 1) * height * width);
      let lo = Infinity, hi = -Infinity;
      for (const v of map) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      const picture = document.createElement("canvas");
      picture.width = width; picture.height = height;
      const image = picture.getContext("2d").createImageData(width, height);
      map.forEach((v, i) => {
        const g = hi > lo ? Math.round(255 * (v - lo) / (hi - lo)) : 0;
        image.data.set([g, g, g, 255], 4 * i);
      });
      picture.getContext("2d").putImageData(image, 0, 0);
      grid.appendChild(picture);
    }
    box.appendChild(grid);
  }

  // --- the test images -----------------------------------------------------------------------

  function samplePixels(sample) {
    const bytes = Uint8Array.from(atob(sample.pixels), (ch) => ch.charCodeAt(0));
    return Float32Array.from(bytes);
  }

  function paint(target, pixels, side) {
    const image = target.getContext("2d").createImageData(side, side);
    pixels.forEach((v, i) => image.data.set([v, v, v, 255], 4 * i));
    target.getContext("2d").putImageData(image, 0, 0);
  }

  function drawSeen(pixels) { paint(seen, pixels, SIDE); }

  function buildSamples() {
    const box = $("try-samples");
    state.data.samples.forEach((sample, i) => {
      const thumb = document.createElement("canvas");
      thumb.width = thumb.height = SIDE;
      thumb.className = "cnnbook-try-thumb";
      thumb.dataset.sample = String(i);
      thumb.tabIndex = 0;
      thumb.setAttribute("role", "button");
      const name = state.data.classes[sample.label];
      thumb.title = thumb.ariaLabel = `test image ${sample.index}: ${name}`;
      const pixels = samplePixels(sample);
      paint(thumb, pixels, SIDE);
      const pick = () => {
        showOnCanvas(thumb);
        state.drawnFrom = i;
        setInput({ id: "sample-" + i, kind: "sample", sample: i, index: sample.index, label: sample.label, pixels });
      };
      thumb.addEventListener("click", pick);
      thumb.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); pick(); }
      });
      box.appendChild(thumb);
    });
  }

  // --- drawing -------------------------------------------------------------------------------

  function clearCanvas() {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  }

  function showOnCanvas(thumb) {
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(thumb, 0, 0, canvas.width, canvas.height);
  }

  // The drawing as Fashion-MNIST would hold it: from a blank canvas, cut to the bounding box, scaled so that
  // the longer side is 28 pixels, centred; over a test image, the whole canvas averaged down to 28 x 28.
  function drawingPixels() {
    const W = canvas.width, H = canvas.height;
    const rgba = ctx.getImageData(0, 0, W, H).data;
    let x0 = W, y0 = H, x1 = -1, y1 = -1;
    if (state.drawnFrom === null) {
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
        if (rgba[4 * (y * W + x)] > 0) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
      }
    }
    let sx = 0, sy = 0, size = W;
    if (x1 >= 0) {
      size = Math.max(x1 - x0 + 1, y1 - y0 + 1);
      sx = (x0 + x1 + 1) / 2 - size / 2;
      sy = (y0 + y1 + 1) / 2 - size / 2;
    }
    // area average: each of the 28 x 28 pixels is the mean of the canvas pixels it covers
    const pixels = new Float32Array(SIDE * SIDE);
    const step = size / SIDE;
    for (let j = 0; j < SIDE; j++) for (let i = 0; i < SIDE; i++) {
      let sum = 0, n = 0;
      const ya = sy + j * step, xa = sx + i * step;
      for (let y = Math.floor(ya); y < Math.ceil(ya + step); y++) for (let x = Math.floor(xa); x < Math.ceil(xa + step); x++) {
        const wy = Math.min(y + 1, ya + step) - Math.max(y, ya), wx = Math.min(x + 1, xa + step) - Math.max(x, xa);
        if (wy <= 0 || wx <= 0) continue;
        const v = (x >= 0 && y >= 0 && x < W && y < H) ? rgba[4 * (y * W + x)] : 0;
        sum += v * wx * wy; n += wx * wy;
      }
      pixels[j * SIDE + i] = Math.round(n ? sum / n : 0);  // whole grey levels, as in the data set's files
    }
    return pixels;
  }

  let drawing = null, strokes = 0;
  function point(event) {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
  }

  function stroke(from, to) {
    ctx.strokeStyle = "#fff";
    ctx.fillStyle = "#fff";
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.lineWidth = Number($("try-brush").value);
    ctx.beginPath();
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0], to[1]);
    ctx.stroke();
  }

  function drawn() {
    strokes += 1;
    setInput({ id: "drawing-" + strokes, kind: "drawing", label: null, pixels: drawingPixels() });
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (!state.data || event.button > 0) return;
    event.preventDefault();
    try { canvas.setPointerCapture(event.pointerId); } catch (error) { /* a pointer the browser no longer tracks */ }
    drawing = point(event);
    stroke(drawing, drawing);
    drawn();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    event.preventDefault();
    const next = point(event);
    stroke(drawing, next);
    drawing = next;
    drawn();
  });
  for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
    canvas.addEventListener(type, () => { drawing = null; });
  }
  $("try-clear").addEventListener("click", () => {
    clearCanvas();
    state.drawnFrom = null;
    drawSeen(new Float32Array(SIDE * SIDE));
  });

  // --- start: the list of networks and the test images only (a few kB) ----------------------------------

  clearCanvas();
  fetch(base + "try-data.json")
    .then((response) => { if (!response.ok) throw new Error(response.status + " " + response.url); return response.json(); })
    .then((data) => {
      state.data = data;
      if (!data.networks.length) {
        status.textContent = "This build of the site has no trained networks: the chapters' runs save them " +
                             "in cnnbook/weights, and the next build exports them.";
        return;
      }
      buildSamples();
      buildCards();
      const wanted = new URLSearchParams(window.location.search).get("net");
      const known = data.networks.some((n) => n.key === wanted);
      const first = data.networks.some((n) => n.key === "lenet") ? "lenet" : data.networks[0].key;
      select(known ? wanted : first, false);
      if (known) document.querySelector(".cnnbook-try-selected").scrollIntoView({ block: "nearest" });
      status.textContent = "Pick a test image or draw a garment on the black square." +
        (wanted && !known ? ` (No network called “${wanted}”.)` : "");
      state.ready = true;
    })
    .catch((error) => {
      state.errors.push(String(error));
      status.textContent = "Could not load the networks' list: " + error.message;
    });
})();
