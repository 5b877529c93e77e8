// seggpt-vos page: a thin client of the HTTP API (see /docs). No build step, no dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  session: null,      // GET /api/sessions/{id}
  index: 0,           // frame shown
  wanted: 0,          // frame asked for last (steps add up before the frame arrives)
  labels: null,       // Uint8Array(H*W): object ids of the frame shown (what the server holds for it)
  maskSource: "empty",
  objectId: null,     // selected object
  history: [],        // label snapshots of the frame shown, for undo
  polygon: [],        // corners of the polygon being drawn
  stroke: null,       // {last: [x, y]} while painting
  playing: null,      // interval id while playing
  job: null,          // running job status
  events: null,       // EventSource of the running job
  images: new Map(),  // frame index -> HTMLImageElement (loaded)
  showToken: 0,
};

// ---------------------------------------------------------------------------------------------------- HTTP
async function api(method, path, body, headers) {
  const init = { method, headers: headers || {} };
  if (body !== undefined) {
    if (body instanceof Blob || body instanceof ArrayBuffer) init.body = body;
    else { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(detail);
  }
  return response;
}
const json = async (method, path, body, headers) => (await api(method, path, body, headers)).json();
const sessionPath = (rest) => `/api/sessions/${state.session.id}${rest}`;

function say(text, kind) {
  const box = $("message");
  box.textContent = text;
  box.className = kind === "info" ? "info" : "";
  box.hidden = !text;
}
function guard(fn) {
  return async (...args) => {
    try { await fn(...args); } catch (error) { say(error.message); }
  };
}

// ---------------------------------------------------------------------------------------------------- opening
async function loadVideoList() {
  const [info, videos] = await Promise.all([json("GET", "/api/info"), json("GET", "/api/videos")]);
  const list = $("video-list");
  list.innerHTML = "";
  for (const v of videos) {
    const option = document.createElement("option");
    option.value = v.path;
    option.textContent = v.kind === "frames" ? `${v.path}/ (${v.frames} frames)` : v.path;
    list.appendChild(option);
  }
  if (!videos.length) list.innerHTML = "<option value=''>(no videos under the root)</option>";
  const formats = $("format");
  formats.innerHTML = "";
  for (const [name, description] of Object.entries(info.formats)) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name;
    option.title = description;
    formats.appendChild(option);
  }
}

async function openVideo() {
  const path = $("video-list").value;
  if (!path) throw new Error("no video selected; put videos or frame folders under the app's root folder");
  say("Opening " + path + " ...", "info");
  await setSession(await json("POST", "/api/sessions", { path }));
}

async function uploadVideo() {
  const file = $("upload").files[0];
  if (!file) return;
  say(`Uploading ${file.name} (${(file.size / 1048576).toFixed(1)} MiB) ...`, "info");
  const info = await json("POST", `/api/uploads?filename=${encodeURIComponent(file.name)}`, file);
  $("upload").value = "";
  await setSession(info);
}

async function setSession(info) {
  stopPlaying();
  if (state.events) state.events.close();
  state.session = info;
  state.images = new Map();
  state.job = null;
  for (const id of ["frame", "overlay", "cursor"]) {
    $(id).width = info.width;
    $(id).height = info.height;
  }
  $("empty-hint").hidden = true;
  $("scrub").max = info.num_frames - 1;
  $("scrub").disabled = false;
  $("video-name").textContent = `${info.name}: ${info.num_frames} frames, ${info.width}x${info.height}` +
    (info.fps ? `, ${Number(info.fps_float).toFixed(3)} fps` : "");
  if (!info.objects.length) state.session.objects = [await json("POST", sessionPath("/objects"), {})];
  state.objectId = state.session.objects[0].id;
  renderObjects();
  say("");
  await showFrame(0);
}

async function refreshSession() {
  state.session = await json("GET", sessionPath(""));
  if (!state.session.objects.some((o) => o.id === state.objectId)) {
    state.objectId = state.session.objects.length ? state.session.objects[0].id : null;
  }
  renderObjects();
  renderCoverage();
}

// ---------------------------------------------------------------------------------------------------- frames
function frameImage(index) {
  const cached = state.images.get(index);
  if (cached) return Promise.resolve(cached);
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => {
      if (state.images.size > 300) state.images.delete(state.images.keys().next().value);
      state.images.set(index, image);
      resolve(image);
    };
    image.onerror = () => reject(new Error(`frame ${index} could not be loaded`));
    image.src = sessionPath(`/frames/${index}.jpg`);
  });
}

async function fetchLabels(index) {
  const response = await api("GET", sessionPath(`/masks/${index}.raw`));
  return { labels: new Uint8Array(await response.arrayBuffer()), source: response.headers.get("X-Mask") };
}

async function showFrame(index) {
  if (!state.session) return;
  index = Math.max(0, Math.min(state.session.num_frames - 1, index));
  state.wanted = index;
  const token = ++state.showToken;
  const [image, mask] = await Promise.all([frameImage(index), fetchLabels(index)]);
  if (token !== state.showToken) return; // a later request won
  if (index !== state.index) { state.history = []; state.polygon = []; }
  state.index = index;
  state.labels = mask.labels;
  state.maskSource = mask.source;
  $("frame").getContext("2d").drawImage(image, 0, 0);
  renderOverlay();
  drawCursor();
  $("scrub").value = index;
  renderFrameLabel();
  renderCoverage();
}

// "frame i / n (keyframe)" and the button that removes the keyframe of the frame shown.
function renderFrameLabel() {
  const source = state.maskSource;
  $("frame-label").textContent = `frame ${state.index} / ${state.session.num_frames - 1}` +
    (source === "keyframe" ? " (keyframe)" : source === "result" ? " (propagated)" : "");
  $("remove-keyframe").disabled = source !== "keyframe" || Boolean(state.job);
}

function colourOf(id) {
  const object = state.session.objects.find((o) => o.id === id);
  const hex = object ? object.colour : "#ffffff";
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

function renderOverlay() {
  const { width, height } = state.session;
  const context = $("overlay").getContext("2d");
  const image = context.createImageData(width, height);
  const colours = new Map();
  const labels = state.labels;
  for (let i = 0; i < labels.length; i++) {
    const id = labels[i];
    if (!id) continue;
    let colour = colours.get(id);
    if (!colour) { colour = colourOf(id); colours.set(id, colour); }
    const o = i * 4;
    image.data[o] = colour[0]; image.data[o + 1] = colour[1]; image.data[o + 2] = colour[2]; image.data[o + 3] = 130;
  }
  context.putImageData(image, 0, 0);
}

function renderCoverage() {
  const canvas = $("coverage");
  const n = state.session.num_frames;
  canvas.width = Math.max(n, 1);
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  context.fillStyle = "#3aa55d";
  for (const i of state.session.computed) context.fillRect(i, 0, 1, 10);
  context.fillStyle = "#ffffff";
  for (const i of state.session.keyframes) context.fillRect(i, 0, 1, 10);
  context.fillStyle = "#f0b232";
  context.fillRect(state.index, 6, 1, 4);
}

// ---------------------------------------------------------------------------------------------------- playback
function stopPlaying() {
  if (state.playing) clearInterval(state.playing);
  state.playing = null;
  $("play").textContent = "Play";
}
function togglePlay() {
  if (!state.session) return;
  if (state.playing) return stopPlaying();
  const fps = state.session.fps_float || 24;
  let busy = false;
  state.playing = setInterval(async () => {
    if (busy) return; // drop a tick rather than queue frames
    busy = true;
    try {
      const next = state.wanted + 1 < state.session.num_frames ? state.wanted + 1 : 0;
      await showFrame(next);
    } catch (error) { say(error.message); stopPlaying(); } finally { busy = false; }
  }, 1000 / fps);
  $("play").textContent = "Pause";
}

// ---------------------------------------------------------------------------------------------------- drawing
function toolName() { return document.querySelector("input[name=tool]:checked").value; }
function brushSize() { return Number($("size").value); }

function canvasPoint(event) {
  const canvas = $("cursor");
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}

function stamp(x, y, value, onlyId) {
  const { width, height } = state.session;
  const r = brushSize() / 2;
  const labels = state.labels;
  for (let py = Math.max(0, Math.floor(y - r)); py <= Math.min(height - 1, Math.ceil(y + r)); py++) {
    for (let px = Math.max(0, Math.floor(x - r)); px <= Math.min(width - 1, Math.ceil(x + r)); px++) {
      if ((px + 0.5 - x) ** 2 + (py + 0.5 - y) ** 2 > r * r) continue;
      const i = py * width + px;
      if (onlyId === undefined || labels[i] === onlyId) labels[i] = value;
    }
  }
}

function paintTo(point) {
  const eraser = toolName() === "eraser";
  const [x0, y0] = state.stroke.last;
  const [x1, y1] = point;
  const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) / Math.max(1, brushSize() / 4)));
  for (let s = 1; s <= steps; s++) {
    const t = s / steps;
    if (eraser) stamp(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, 0, state.objectId);
    else stamp(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, state.objectId);
  }
  state.stroke.last = point;
  renderOverlay();
}

function snapshot() {
  state.history.push(state.labels.slice());
  if (state.history.length > 50) state.history.shift();
}

function fillPolygon(points) {
  const { width, height } = state.session;
  const ys = points.map((p) => p[1]);
  for (let py = Math.max(0, Math.floor(Math.min(...ys))); py <= Math.min(height - 1, Math.ceil(Math.max(...ys))); py++) {
    const y = py + 0.5;
    const crossings = [];
    for (let i = 0; i < points.length; i++) {
      const [xa, ya] = points[i];
      const [xb, yb] = points[(i + 1) % points.length];
      if ((ya <= y) !== (yb <= y)) crossings.push(xa + (y - ya) * (xb - xa) / (yb - ya));
    }
    crossings.sort((a, b) => a - b);
    for (let k = 0; k + 1 < crossings.length; k += 2) {
      const from = Math.max(0, Math.ceil(crossings[k] - 0.5));
      const to = Math.min(width - 1, Math.floor(crossings[k + 1] - 0.5));
      state.labels.fill(state.objectId, py * width + from, py * width + to + 1);
    }
  }
}

function drawCursor(point) {
  const canvas = $("cursor");
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  context.lineWidth = Math.max(1, canvas.width / 600);
  context.strokeStyle = "#ffffff";
  if (state.polygon.length) {
    context.beginPath();
    state.polygon.forEach(([x, y], i) => (i ? context.lineTo(x, y) : context.moveTo(x, y)));
    if (point) context.lineTo(point[0], point[1]);
    context.stroke();
  } else if (point && toolName() !== "polygon") {
    context.beginPath();
    context.arc(point[0], point[1], brushSize() / 2, 0, 2 * Math.PI);
    context.stroke();
  }
}

function requireEditable() {
  if (!state.session) throw new Error("open a video first");
  if (state.job) throw new Error("a propagation is running; stop it or wait before drawing");
  if (state.objectId === null) throw new Error("add an object first");
}

// The frame's label map is sent as a grey PNG (R = G = B = object id), which the server reads as ids.
async function commitMask() {
  const { width, height } = state.session;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  for (let i = 0; i < state.labels.length; i++) {
    const o = i * 4;
    image.data[o] = image.data[o + 1] = image.data[o + 2] = state.labels[i];
    image.data[o + 3] = 255;
  }
  context.putImageData(image, 0, 0);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  const index = state.index;
  try {
    state.session = await json("PUT", sessionPath(`/masks/${index}`), blob, { "Content-Type": "image/png" });
  } catch (error) {
    await showFrame(index); // refused: show what the server holds again
    throw error;
  }
  if (index === state.index) {
    state.maskSource = state.session.keyframes.includes(index) ? "keyframe" : "empty";
    renderFrameLabel();
  }
  renderObjects();
  renderCoverage();
}

const onPointerDown = guard(async (event) => {
  if (event.button !== 0 || !state.session) return;
  requireEditable();
  const point = canvasPoint(event);
  if (toolName() === "polygon") {
    if (event.detail >= 2) return; // the double-click closes (handled by dblclick)
    state.polygon.push(point);
    drawCursor(point);
    return;
  }
  $("cursor").setPointerCapture(event.pointerId);
  snapshot();
  state.stroke = { last: point };
  paintTo(point);
});

function onPointerMove(event) {
  if (!state.session) return;
  const point = canvasPoint(event);
  if (state.stroke) paintTo(point);
  drawCursor(point);
}

const onPointerUp = guard(async () => {
  if (!state.stroke) return;
  state.stroke = null;
  await commitMask();
});

const closePolygon = guard(async () => {
  if (state.polygon.length < 3) { state.polygon = []; drawCursor(); return; }
  requireEditable();
  snapshot();
  fillPolygon(state.polygon);
  state.polygon = [];
  drawCursor();
  renderOverlay();
  await commitMask();
});

const undo = guard(async () => {
  if (!state.history.length) return;
  requireEditable();
  state.labels = state.history.pop();
  renderOverlay();
  await commitMask();
});

const removeKeyframe = guard(async () => {
  if (!state.session) throw new Error("open a video first");
  if (state.job) throw new Error("a propagation is running; stop it or wait before removing a keyframe");
  state.session = await json("DELETE", sessionPath(`/masks/${state.index}`));
  state.history = []; // its strokes would draw the removed mask again
  renderObjects();
  await showFrame(state.index);
});

const importMask = guard(async () => {
  const file = $("import-mask").files[0];
  if (!file) return;
  $("import-mask").value = "";
  requireEditable();
  state.session = await json("PUT", sessionPath(`/masks/${state.index}`), file, { "Content-Type": "image/png" });
  snapshot();
  await refreshSession();
  await showFrame(state.index);
});

// ---------------------------------------------------------------------------------------------------- objects
function renderObjects() {
  const list = $("objects");
  list.innerHTML = "";
  for (const object of state.session.objects) {
    const item = document.createElement("li");
    item.className = object.id === state.objectId ? "selected" : "";
    item.dataset.id = object.id;
    const pick = document.createElement("input");
    pick.type = "radio";
    pick.name = "object";
    pick.checked = object.id === state.objectId;
    pick.title = `object id ${object.id}`;
    pick.onchange = () => { state.objectId = object.id; renderObjects(); };
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = object.colour;
    const name = document.createElement("input");
    name.className = "name";
    name.value = object.name;
    name.onchange = guard(async () => {
      await json("PATCH", sessionPath(`/objects/${object.id}`), { name: name.value });
      await refreshSession();
    });
    const remove = document.createElement("button");
    remove.textContent = "\u2715";
    remove.title = "remove this object from every frame";
    remove.onclick = guard(async () => {
      if (state.job) throw new Error("a propagation is running; stop it first");
      await json("DELETE", sessionPath(`/objects/${object.id}`));
      await refreshSession();
      await showFrame(state.index);
    });
    item.append(pick, swatch, name, remove);
    list.appendChild(item);
  }
}

const addObject = guard(async () => {
  if (!state.session) throw new Error("open a video first");
  const object = await json("POST", sessionPath("/objects"), {});
  await refreshSession();
  state.objectId = object.id;
  renderObjects();
});

// ---------------------------------------------------------------------------------------------------- propagation
function setJob(status) {
  state.job = status && (status.state === "queued" || status.state === "running") ? status : null;
  $("propagate").disabled = Boolean(state.job);
  $("stop").disabled = !state.job;
  if (state.session) renderFrameLabel();
  if (!status) return;
  $("progress").value = status.progress;
  $("progress-label").textContent = `${status.done} / ${status.total} frames, ${status.state}` +
    (status.error ? `: ${status.error}` : "");
}

const propagate = guard(async () => {
  if (!state.session) throw new Error("open a video first");
  const body = { direction: $("direction").value };
  if (state.maskSource === "keyframe") body.from = state.index; // else the server's default: the last edited one
  const status = await json("POST", sessionPath("/propagate"), body);
  setJob(status);
  say("");
  follow(status.id);
});

// Progress by server-sent events; if the stream breaks, by polling the job until it ends.
function follow(jobId) {
  const events = new EventSource(sessionPath(`/jobs/${jobId}/events`));
  state.events = events;
  let finished = false;
  const update = async (status) => {
    setJob(status);
    if (status.last_frame !== null && !state.session.computed.includes(status.last_frame)) {
      state.session.computed.push(status.last_frame);
      renderCoverage();
    }
    if (["done", "cancelled", "failed"].includes(status.state)) {
      finished = true;
      events.close();
      if (status.state === "failed") say(status.error);
      await refreshSession();
      await showFrame(state.index);
    } else if (status.last_frame === state.index) {
      await showFrame(state.index);
    }
  };
  events.addEventListener("progress", guard((message) => update(JSON.parse(message.data))));
  events.onerror = guard(async () => {
    events.close();
    while (!finished) {
      await update(await json("GET", sessionPath(`/jobs/${jobId}`)));
      if (!finished) await new Promise((resolve) => setTimeout(resolve, 500));
    }
  });
}

const stop = guard(async () => {
  if (state.job) setJob(await json("POST", sessionPath(`/jobs/${state.job.id}/cancel`)));
});

// ---------------------------------------------------------------------------------------------------- exports
function exportOptions() {
  const options = { start_number: Number($("start-number").value) };
  if ($("overwrite").checked) options.overwrite = true;
  return options;
}

const exportFolder = guard(async () => {
  if (!state.session) throw new Error("open a video first");
  const folder = $("export-folder").value.trim();
  if (!folder) throw new Error("give a folder under the root (or use Download zip)");
  $("export-result").textContent = "Exporting ...";
  const result = await json("POST", sessionPath("/exports"), { format: $("format").value, folder,
    options: exportOptions() });
  $("export-result").textContent = `${result.files.length} files written to ${result.folder}`;
});

const download = guard(async () => {
  if (!state.session) throw new Error("open a video first");
  $("export-result").textContent = "Exporting ...";
  const response = await api("POST", sessionPath("/exports"), { format: $("format").value,
    options: exportOptions() });
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `${state.session.name}-${$("format").value}.zip`;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  $("export-result").textContent = `downloaded ${link.download} (${(blob.size / 1024).toFixed(0)} KiB)`;
});

// ---------------------------------------------------------------------------------------------------- wiring
function step(delta) { stopPlaying(); guard(showFrame)(state.wanted + delta); }
function setSize(value) {
  $("size").value = Math.max(2, Math.min(200, value));
  $("size-label").textContent = $("size").value;
  drawCursor();
}

$("open").onclick = guard(openVideo);
$("upload").onchange = guard(uploadVideo);
$("prev").onclick = () => step(-1);
$("next").onclick = () => step(1);
$("play").onclick = togglePlay;
$("scrub").oninput = () => { stopPlaying(); guard(showFrame)(Number($("scrub").value)); };
$("size").oninput = () => setSize(Number($("size").value));
$("undo").onclick = undo;
$("remove-keyframe").onclick = removeKeyframe;
$("import-mask").onchange = importMask;
$("add-object").onclick = addObject;
$("propagate").onclick = propagate;
$("stop").onclick = stop;
$("export").onclick = exportFolder;
$("download").onclick = download;
for (const radio of document.querySelectorAll("input[name=tool]")) {
  radio.onchange = () => { state.polygon = []; drawCursor(); };
}
const cursor = $("cursor");
cursor.addEventListener("pointerdown", onPointerDown);
cursor.addEventListener("pointermove", onPointerMove);
cursor.addEventListener("pointerup", onPointerUp);
cursor.addEventListener("pointerleave", () => { if (!state.stroke) drawCursor(); });
cursor.addEventListener("dblclick", closePolygon);

document.addEventListener("keydown", (event) => {
  const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(event.target.tagName) &&
    !["radio", "range", "file"].includes(event.target.type);
  if (typing) return;
  if (event.target.tagName === "BUTTON" && event.key === " ") event.target.blur(); // no click on top of play/pause
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") { event.preventDefault(); undo(); }
  else if (event.key === " ") { event.preventDefault(); togglePlay(); }
  else if (event.key === "ArrowLeft") { event.preventDefault(); step(-1); }
  else if (event.key === "ArrowRight") { event.preventDefault(); step(1); }
  else if (event.key === "[") setSize(brushSize() - 5);
  else if (event.key === "]") setSize(brushSize() + 5);
  else if (event.key === "Enter" && state.polygon.length) closePolygon();
  else if (event.key === "Escape") { state.polygon = []; drawCursor(); }
});

guard(loadVideoList)();
