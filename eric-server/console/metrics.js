// The node's metrics: `/metrics` (OpenMetrics text) read into figures, the
// message rate from counter deltas, and small SVG charts of the last few
// minutes. No chart library: a polyline per series is all it takes.

const SVG = "http://www.w3.org/2000/svg";

// Samples kept per chart (at one sample every few seconds: a few minutes).
const KEEP = 60;

// Sums each metric's samples over their labels: `eric_queue_depth` has one
// per channel, the rest one. Lines are `name{labels} value [timestamp]`;
// `#` lines are metadata.
export function parse(text) {
  const sums = new Map();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) {
      continue;
    }
    const brace = line.indexOf("{");
    const space = brace === -1 ? line.indexOf(" ") : line.indexOf(" ", line.lastIndexOf("}"));
    if (space === -1) {
      continue;
    }
    const name = line.slice(0, brace === -1 ? space : brace);
    const value = Number(line.slice(space + 1).trim().split(" ")[0]);
    if (Number.isFinite(value)) {
      sums.set(name, (sums.get(name) ?? 0) + value);
    }
  }
  return sums;
}

// Turns successive scrapes into the figures the console shows.
export class Sampler {
  constructor() {
    this.previous = null;
  }

  // The figures of a scrape taken at `now` (ms): gauges as read, and
  // messages per second from the counters' growth since the previous
  // scrape: `queued` (messages in, one per listener reached) and
  // `delivered` (handed to consumers). Null on the first scrape, and when a
  // counter went down (the node restarted: the rates start over).
  sample(sums, now) {
    const counters = {
      queued: sums.get("eric_messages_dispatched_total") ?? 0,
      delivered: sums.get("eric_messages_delivered_total") ?? 0,
    };
    const rates = { queued: null, delivered: null };
    const before = this.previous;
    if (before && now > before.at) {
      for (const name of Object.keys(rates)) {
        if (counters[name] >= before[name]) {
          rates[name] = ((counters[name] - before[name]) * 1000) / (now - before.at);
        }
      }
    }
    this.previous = { at: now, ...counters };
    return {
      rate: rates.queued,
      delivered: rates.delivered,
      streams: sums.get("eric_sse_streams") ?? 0,
      depth: sums.get("eric_queue_depth") ?? 0,
      channels: sums.get("eric_channels") ?? 0,
      listeners: sums.get("eric_listeners") ?? 0,
      connections: sums.get("eric_http_connections") ?? 0,
    };
  }
}

// One small line chart, with its title and latest value as text (the chart
// itself is an image with a label, for screen readers).
export class Chart {
  constructor(parent, title) {
    this.title = title;
    this.values = [];
    const figure = document.createElement("figure");
    figure.className = "chart";
    const caption = document.createElement("figcaption");
    this.caption = caption;
    this.svg = document.createElementNS(SVG, "svg");
    this.svg.setAttribute("viewBox", `0 0 ${KEEP - 1} 30`);
    this.svg.setAttribute("preserveAspectRatio", "none");
    this.svg.setAttribute("role", "img");
    this.line = document.createElementNS(SVG, "polyline");
    this.line.setAttribute("vector-effect", "non-scaling-stroke");
    this.svg.append(this.line);
    figure.append(caption, this.svg);
    parent.append(figure);
    this.draw();
  }

  push(value) {
    this.values.push(value);
    if (this.values.length > KEEP) {
      this.values.shift();
    }
    this.draw();
  }

  draw() {
    const top = Math.max(1, ...this.values);
    const start = KEEP - this.values.length;
    const points = this.values.map((v, i) => `${start + i},${(30 - (v / top) * 28 - 1).toFixed(2)}`);
    this.line.setAttribute("points", points.join(" "));
    const last = this.values.length ? format(this.values[this.values.length - 1]) : "…";
    this.caption.textContent = `${this.title}: ${last} (max ${format(top)})`;
    this.svg.setAttribute("aria-label", `${this.title} over the last ${this.values.length} samples, now ${last}`);
  }
}

export function format(value) {
  if (value === null || value === undefined) {
    return "…";
  }
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}
