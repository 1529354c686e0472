// pixelwise serve page: plain JS, no build step, nothing loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
let models = [];
// RGB-D / RGB-HHA models take the photo's depth map too: the photo waits here until it is chosen
let pendingPhoto = null;
let depthFile = null;

// One drawing function per task kind (the API's head "kind"); each fills an <img> and returns it.
const RENDERERS = {
  semantic(head, result) {
    $("overlay").src = "data:image/png;base64," + result.images.label_png;
    const legend = $("legend");
    for (const c of result.classes) {
      const li = document.createElement("li");
      li.dataset.className = c.name;
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = `rgb(${c.color.join(",")})`;
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = c.name;
      const share = document.createElement("span");
      share.className = "share";
      share.textContent = (100 * c.share).toFixed(1) + "%";
      li.append(sw, name, share);
      legend.append(li);
    }
    return $("overlay");
  },
  // the colour map carries its own colour bar, so it is shown beside the photo, not over it
  depth(head, result) {
    showSideMap(true);
    $("side-title").textContent = "Depth";
    $("summary").textContent = `nearest ${result.min_m.toFixed(2)} m · median ${result.median_m.toFixed(2)} m · ` +
      `farthest ${result.max_m.toFixed(2)} m`;
    $("task-map").src = "data:image/png;base64," + result.images.depth_color;
    return $("task-map");
  },
  // edge probability (white = edge) over the photo, like the label colours
  boundary(head, result) {
    $("side-title").textContent = "Edges";
    $("summary").textContent = `${(100 * result.edge_share).toFixed(1)}% of pixels are edges (p ≥ ${result.threshold})`;
    $("overlay").src = "data:image/png;base64," + result.images.edge_png;
    return $("overlay");
  },
};
const IMAGE_FOR_KIND = { semantic: "label_png", depth: "depth_color", boundary: "edge_png" };

// depth: the map below the photo, no overlay or opacity slider; other kinds: the overlay
function showSideMap(on) {
  $("task-map").hidden = !on;
  $("overlay").hidden = on;
  $("opacity-label").hidden = on;
}

function setStatus(text, state) {
  $("status").textContent = text;
  $("status").dataset.state = state;
}

async function loadModels() {
  const r = await fetch("/api/models");
  const body = await r.json();
  models = body.models;
  for (const m of models) {
    const opt = document.createElement("option");
    opt.value = m.name;
    opt.textContent = `${m.name} (${m.heads.map((h) => h.kind).join(", ")})`;
    $("model").append(opt);
  }
  $("model").value = body.default;
  showModel();
}

function current() {
  return models.find((m) => m.name === $("model").value);
}

function showModel() {
  const m = current();
  if (!m) return;
  const t = m.test_time;
  const views = (t.flip ? 2 : 1) * t.scales.length;
  const head = m.heads[0];
  const what = head.kind === "semantic" ? `${head.classes.length} classes` : `${head.kind}`;
  $("model-info").textContent = `${what} · ${views} view(s) · ${m.backend}`;
  const mp = (m.input.max_pixels / 1e6).toFixed(0), mb = (m.input.max_bytes / 1048576).toFixed(0);
  $("limits").textContent = `up to ${mp} megapixels, ${mb} MB; ${m.input.formats.join(", ")}`;
  $("depth-pick").hidden = !m.input.depth_field;
  $("depth-pick").title = m.input.depth_field || "";
}

// a photo: segmented now, or (for a model that takes depth) once its depth map is chosen too
function choosePhoto(file) {
  if (current().input.depth_field && !depthFile) {
    pendingPhoto = file;
    setStatus(`${file.name}: now choose its depth map (16-bit PNG, millimetres)`, "waiting");
    return;
  }
  segment(file);
  forgetDepth();
}

// a depth map belongs to one photo: the next photo asks for its own
function forgetDepth() {
  depthFile = null;
  $("depth-name").textContent = "";
  $("depth-file").value = "";
}

function chooseDepth(file) {
  depthFile = file;
  $("depth-name").textContent = file.name;
  if (pendingPhoto) {
    const photo = pendingPhoto;
    pendingPhoto = null;
    segment(photo);
    forgetDepth();
  }
}

async function segment(file) {
  const m = current();
  const head = m.heads[0];
  const include = IMAGE_FOR_KIND[head.kind];
  if (!RENDERERS[head.kind]) {
    setStatus(`this page cannot show '${head.kind}' outputs yet`, "error");
    return;
  }
  setStatus(`segmenting ${file.name} with ${m.name}…`, "busy");
  const form = new FormData();
  form.append("file", file, file.name);
  if (m.input.depth_field && depthFile) form.append("depth", depthFile, depthFile.name);
  const t0 = performance.now();
  let r, body;
  try {
    r = await fetch(`/api/segment?model=${encodeURIComponent(m.name)}&include=${include}`, { method: "POST", body: form });
    body = await r.json();
  } catch (e) {
    setStatus(`request failed: ${e}`, "error");
    return;
  }
  const roundTrip = performance.now() - t0;
  if (!r.ok) {
    setStatus(`${r.status}: ${body.error}`, "error");
    return;
  }
  const photo = $("photo");
  if (photo.dataset.url) URL.revokeObjectURL(photo.dataset.url);
  photo.dataset.url = URL.createObjectURL(file);
  photo.src = photo.dataset.url;
  $("legend").replaceChildren();
  $("summary").textContent = "";
  $("side-title").textContent = "Legend";
  showSideMap(false);
  const result = body.heads[0];
  const img = RENDERERS[result.kind](head, result);
  await new Promise((resolve) => {
    img.onload = resolve;
    img.onerror = resolve;
    if (img.complete && img.naturalWidth) resolve();
  });
  const t = body.timings;
  $("timing").textContent = `${body.width}×${body.height} · ${roundTrip.toFixed(0)} ms round trip ` +
    `(inference ${t.inference_ms.toFixed(0)} ms, batch of ${t.batch_size}, queue ${t.queue_ms.toFixed(0)} ms)`;
  $("result").hidden = false;
  setStatus(`${file.name}: done in ${roundTrip.toFixed(0)} ms`, "done");
}

function setup() {
  $("opacity").addEventListener("input", (e) => { $("overlay").style.opacity = e.target.value / 100; });
  $("model").addEventListener("change", () => {
    pendingPhoto = null;
    forgetDepth();
    showModel();
  });
  $("file").addEventListener("change", (e) => { if (e.target.files[0]) choosePhoto(e.target.files[0]); });
  $("depth-file").addEventListener("change", (e) => { if (e.target.files[0]) chooseDepth(e.target.files[0]); });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) choosePhoto(e.dataTransfer.files[0]);
  });
  loadModels().catch((e) => setStatus(`cannot list models: ${e}`, "error"));
}

setup();
