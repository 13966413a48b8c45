// The console page: the node's figures, its channels and listeners,
// the forms, and the stream viewer. Views refresh on a timer that pauses
// while the tab is hidden; everything written into the page goes through
// textContent, never markup, since ids, types and payloads are anyone's.

import { ApiError, call, seg, setToken, token } from "./api.js";
import { Chart, Sampler, format, parse } from "./metrics.js";
import { Stream } from "./stream.js";

// How often the channel list and the node's figures refresh.
const REFRESH_MS = 3000;
// Channels whose listeners are read on each refresh (one request each).
const MAX_CHANNELS = 50;
// Events kept in the viewer; older rows leave.
const MAX_EVENTS = 200;

const $ = (id) => document.getElementById(id);

const state = {
  // Whether the node wants a token we lack (or refused ours).
  needsToken: false,
  stream: null,
  timer: null,
  refreshing: false,
  again: false,
  sampler: new Sampler(),
  charts: null,
};

// Errors: shown as eric's `code: message`, newest first, a few kept.
function showError(error) {
  if (error instanceof ApiError && error.code === "unauthorized") {
    askForToken(token() ? "The token was refused." : null);
  }
  const text = error instanceof ApiError ? error.message : `error: ${error.message ?? error}`;
  const box = $("errors");
  // A refusal that repeats on every refresh (a token without admin, say)
  // is shown once, moved to the top.
  const same = [...box.children].find((item) => item.dataset.text === text);
  if (same) {
    box.prepend(same);
    return;
  }
  const item = document.createElement("p");
  item.dataset.text = text;
  item.className = "error";
  item.textContent = text;
  const close = document.createElement("button");
  close.type = "button";
  close.textContent = "Dismiss";
  close.setAttribute("aria-label", `Dismiss: ${text}`);
  close.addEventListener("click", () => item.remove());
  item.append(" ", close);
  box.prepend(item);
  while (box.children.length > 5) {
    box.lastElementChild.remove();
  }
}

function clearErrors() {
  $("errors").replaceChildren();
}

function askForToken(why) {
  state.needsToken = true;
  const form = $("token-form");
  if (form.hidden) {
    form.hidden = false;
    $("token-input").focus();
  }
  if (why) {
    $("token-input").setAttribute("aria-description", why);
  }
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) {
    node.textContent = text;
  }
  if (className) {
    node.className = className;
  }
  return node;
}

function button(text, label, onClick) {
  const b = el("button", text);
  b.type = "button";
  b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

// Runs an action from a form or button; its error is shown, never thrown.
async function act(action) {
  try {
    await action();
    return true;
  } catch (e) {
    showError(e);
    return false;
  }
}

// Node: health, readiness, metrics.

async function refreshNode() {
  const health = await fetch("/healthz", { cache: "no-store" }).then(
    (r) => (r.ok ? "ok" : `HTTP ${r.status}`),
    () => "unreachable",
  );
  $("health").textContent = health;
  const ready = await fetch("/readyz", { cache: "no-store" }).then(
    async (r) => {
      const body = await r.json().catch(() => ({}));
      return body.ready ? "ready" : `not ready: ${body.reason ?? `HTTP ${r.status}`}`;
    },
    () => "unreachable",
  );
  $("readiness").textContent = ready;
  $("node-summary").textContent = `${location.host}: ${health}, ${ready}`;
  if (state.needsToken) {
    return;
  }
  const text = await call("GET", "/metrics", { text: true });
  const figures = state.sampler.sample(parse(text), performance.now());
  $("rate").textContent = format(figures.rate);
  $("delivered").textContent = format(figures.delivered);
  $("streams").textContent = format(figures.streams);
  $("depth").textContent = format(figures.depth);
  $("channel-count").textContent = format(figures.channels);
  $("listener-count").textContent = format(figures.listeners);
  $("connections").textContent = format(figures.connections);
  if (!state.charts) {
    const parent = $("charts");
    state.charts = {
      rate: new Chart(parent, "Messages/s in"),
      streams: new Chart(parent, "Streams"),
      depth: new Chart(parent, "Queue depth"),
    };
  }
  if (figures.rate !== null) {
    state.charts.rate.push(figures.rate);
  }
  state.charts.streams.push(figures.streams);
  state.charts.depth.push(figures.depth);
}

// Channels and their listeners.

async function refreshChannels() {
  if (state.needsToken) {
    return;
  }
  const { channels } = await call("GET", "/v1/channels");
  channels.sort();
  const shown = channels.slice(0, MAX_CHANNELS);
  const infos = await Promise.all(
    shown.map((id) =>
      call("GET", `/v1/channels/${seg(id)}`).catch((e) => {
        // Removed between the list and now: left out, not an error.
        if (e instanceof ApiError && e.code === "channel_not_found") {
          return null;
        }
        throw e;
      }),
    ),
  );
  renderChannels(infos.filter(Boolean));
  const more = channels.length - shown.length;
  $("channels-status").textContent =
    channels.length === 0
      ? "No channels yet."
      : `${channels.length} channel${channels.length === 1 ? "" : "s"}${more > 0 ? ` (the first ${shown.length} shown)` : ""}.`;
  const list = $("channel-ids");
  list.replaceChildren(...channels.map((id) => Object.assign(document.createElement("option"), { value: id })));
}

function renderChannels(infos) {
  const root = $("channels");
  // Keep keyboard focus across the redraw: the focused button's key.
  const focused = document.activeElement?.dataset?.key;
  const items = infos.map((info) => {
    const card = el("article", undefined, "channel");
    card.dataset.channel = info.id;
    const head = el("div", undefined, "channel-head");
    head.append(el("h3", info.id));
    head.append(
      keyed(button("Watch", `Watch channel ${info.id}`, () => openStream(info.id, "")), `watch ${info.id}`),
      keyed(button("Delete", `Delete channel ${info.id}`, () => removeChannel(info.id)), `delete ${info.id}`),
    );
    card.append(head);
    if (info.listeners.length === 0) {
      card.append(el("p", "No listeners.", "hint"));
    } else {
      const table = el("table", undefined, "listeners");
      const caption = el("caption", `Listeners of ${info.id}`, "visually-hidden");
      const head = el("thead");
      const row = el("tr");
      for (const title of ["Listener", "State", "Queued", "Actions"]) {
        const th = el("th", title);
        th.scope = "col";
        row.append(th);
      }
      head.append(row);
      const body = el("tbody");
      for (const listener of info.listeners) {
        body.append(listenerRow(info.id, listener));
      }
      table.append(caption, head, body);
      const scroll = el("div", undefined, "scroll");
      scroll.append(table);
      card.append(scroll);
    }
    return card;
  });
  root.replaceChildren(...items);
  if (focused) {
    const again = root.querySelector(`[data-key="${CSS.escape(focused)}"]`);
    again?.focus();
  }
}

function listenerRow(channel, listener) {
  const row = el("tr");
  row.dataset.listener = listener.id;
  row.append(el("td", listener.id, "id"));
  row.append(el("td", listener.running ? "running" : "stopped"));
  row.append(el("td", String(listener.queued)));
  const actions = el("td", undefined, "actions");
  const name = `listener ${listener.id} of ${channel}`;
  actions.append(
    keyed(button("Stream", `Open the stream of ${name}`, () => openStream(channel, listener.id)), `stream ${channel} ${listener.id}`),
    listener.running
      ? keyed(button("Stop", `Stop ${name}`, () => setRunning(channel, listener.id, false)), `stop ${channel} ${listener.id}`)
      : keyed(button("Start", `Start ${name}`, () => setRunning(channel, listener.id, true)), `start ${channel} ${listener.id}`),
    keyed(button("Remove", `Remove ${name}`, () => removeListener(channel, listener.id)), `remove ${channel} ${listener.id}`),
  );
  row.append(actions);
  return row;
}

function keyed(node, key) {
  node.dataset.key = key;
  return node;
}

async function setRunning(channel, listener, running) {
  const verb = running ? "start" : "stop";
  await act(() => call("POST", `/v1/channels/${seg(channel)}/listeners/${seg(listener)}/${verb}`));
  refreshSoon();
}

async function removeListener(channel, listener) {
  if (!window.confirm(`Remove listener ${listener} of ${channel}? Its queue goes with it.`)) {
    return;
  }
  await act(() => call("DELETE", `/v1/channels/${seg(channel)}/listeners/${seg(listener)}`));
  refreshSoon();
}

async function removeChannel(channel) {
  if (!window.confirm(`Delete channel ${channel} and its listeners?`)) {
    return;
  }
  await act(() => call("DELETE", `/v1/channels/${seg(channel)}`));
  refreshSoon();
}

// Forms.

function value(id) {
  return $(id).value.trim();
}

async function createChannel(event) {
  event.preventDefault();
  const id = value("channel-id");
  const done = await act(async () => {
    const info = await call("POST", "/v1/channels", { body: id ? { id } : {} });
    $("channel-id").value = "";
    for (const field of ["listener-channel", "publish-channel", "stream-channel"]) {
      if (!$(field).value) {
        $(field).value = info.id;
      }
    }
  });
  if (done) {
    clearErrors();
  }
  refreshSoon();
}

async function addListener(event) {
  event.preventDefault();
  const channel = value("listener-channel");
  const id = value("listener-id");
  const done = await act(async () => {
    const created = await call("POST", `/v1/channels/${seg(channel)}/listeners`, { body: id ? { id } : {} });
    $("listener-id").value = "";
    for (const field of ["publish-listener", "stream-listener"]) {
      if (!$(field).value) {
        $(field).value = created.id;
      }
    }
  });
  if (done) {
    clearErrors();
  }
  refreshSoon();
}

async function publish(event) {
  event.preventDefault();
  const channel = value("publish-channel");
  const listener = value("publish-listener");
  let payload;
  try {
    payload = JSON.parse($("publish-payload").value || "null");
  } catch (e) {
    showError(new ApiError(0, "invalid_json", `the payload is not JSON (${e.message})`));
    $("publish-payload").focus();
    return;
  }
  const message = { type: value("publish-type"), payload };
  const topic = value("publish-topic");
  if (topic) {
    message.topic = topic;
  }
  const path = listener
    ? `/v1/channels/${seg(channel)}/listeners/${seg(listener)}/messages`
    : `/v1/channels/${seg(channel)}/messages`;
  await act(async () => {
    const answer = await call("POST", path, { body: message });
    const at = new Date().toLocaleTimeString();
    $("publish-result").textContent = listener
      ? `${at}: dispatched to ${listener} (seq ${answer.seq}).`
      : `${at}: broadcast to ${answer.delivered} listener${answer.delivered === 1 ? "" : "s"}` +
        (answer.full.length ? `; full: ${answer.full.join(", ")}.` : ".");
  });
  refreshSoon();
}

// The stream viewer.

function openStream(channel, listener) {
  $("stream-channel").value = channel;
  $("stream-listener").value = listener;
  startStream();
  $("stream-heading").scrollIntoView({ block: "start" });
}

function startStream(event) {
  event?.preventDefault();
  stopStream();
  const channel = value("stream-channel");
  const listener = value("stream-listener");
  if (!channel) {
    $("stream-channel").focus();
    return;
  }
  const what = listener ? `listener ${listener} of ${channel}` : `channel ${channel} (watch)`;
  const path = listener
    ? `/v1/channels/${seg(channel)}/listeners/${seg(listener)}/events`
    : `/v1/channels/${seg(channel)}/events`;
  const status = $("stream-status");
  status.textContent = `Connecting to ${what}…`;
  $("stream-close").disabled = false;
  state.stream = new Stream(
    path,
    {
      onOpen: () => {
        status.textContent = `Streaming ${what}.`;
        status.dataset.state = "open";
        refreshSoon();
      },
      onEvent: addEvent,
      onNotice: (text) => {
        status.textContent = `${what}: ${text}`;
      },
      onError: showError,
      onEnd: (reason) => {
        status.textContent = `Stream of ${what} ended: ${reason}.`;
        status.dataset.state = "closed";
        $("stream-close").disabled = true;
        refreshSoon();
      },
    },
    Boolean(listener),
  );
}

function stopStream() {
  if (state.stream) {
    state.stream.close();
    state.stream = null;
    $("stream-status").textContent = "Stream closed.";
    $("stream-status").dataset.state = "closed";
    $("stream-close").disabled = true;
  }
}

function addEvent(event) {
  const row = el("tr");
  row.className = "event";
  row.append(
    el("td", new Date().toLocaleTimeString()),
    el("td", event.id ?? ""),
    el("td", event.type, "type"),
    el("td", event.topic ?? ""),
    el("td", event.data, "payload"),
  );
  const body = $("events");
  body.prepend(row);
  while (body.children.length > MAX_EVENTS) {
    body.lastElementChild.remove();
  }
}

// Refreshing.

// One refresh at a time: a refresh asked for while one runs follows it.
async function refresh() {
  if (state.refreshing) {
    state.again = true;
    return;
  }
  state.refreshing = true;
  clearTimeout(state.timer);
  try {
    await refreshNode();
    await refreshChannels();
  } catch (e) {
    showError(e);
  }
  state.refreshing = false;
  clearTimeout(state.timer);
  if (state.again) {
    state.again = false;
    refresh();
  } else if (!document.hidden) {
    state.timer = setTimeout(refresh, REFRESH_MS);
  }
}

function refreshSoon() {
  if (!document.hidden) {
    clearTimeout(state.timer);
    state.timer = setTimeout(refresh, 100);
  }
}

function useToken(event) {
  event.preventDefault();
  const given = $("token-input").value.trim();
  if (!given) {
    return;
  }
  setToken(given);
  $("token-input").value = "";
  $("token-form").hidden = true;
  $("forget-token").hidden = false;
  state.needsToken = false;
  clearErrors();
  refresh();
}

function forgetToken() {
  setToken(null);
  stopStream();
  $("forget-token").hidden = true;
  $("channels").replaceChildren();
  askForToken(null);
}

function start() {
  $("channel-form").addEventListener("submit", createChannel);
  $("listener-form").addEventListener("submit", addListener);
  $("publish-form").addEventListener("submit", publish);
  $("stream-form").addEventListener("submit", startStream);
  $("stream-close").addEventListener("click", stopStream);
  $("stream-clear").addEventListener("click", () => $("events").replaceChildren());
  $("token-form").addEventListener("submit", useToken);
  $("forget-token").addEventListener("click", forgetToken);
  $("forget-token").hidden = !token();
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) {
      refresh();
    }
  });
  refresh();
}

start();
