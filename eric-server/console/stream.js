// An SSE stream read with fetch rather than EventSource. EventSource hands
// a page only the event types it registered for in advance (a console
// cannot know them), drops eric's `topic:` line, cannot send the token in
// a header (it would go in the URL, and so into logs), and hides the status
// and body of a refusal, which the console shows as eric's code and
// message. The parsing follows the SSE specification (WHATWG HTML, 9.2.6):
// lines end with LF, CR or CRLF; a blank line dispatches; `:` starts a
// comment; a missing space after the colon is allowed.

import { errorOf, headers } from "./api.js";

// Longest wait before reconnecting, whatever the server's `retry:` says.
const MAX_RETRY_MS = 10000;
// Shortest: eric's default hint (5 ms) would spin on a node that is down.
const MIN_RETRY_MS = 1000;

export class Stream {
  // `handlers`: onOpen(), onEvent({id, type, topic, data}), onNotice(text),
  // onError(ApiError), onEnd(reason). `resumable`: reconnect with
  // Last-Event-ID (a listener's stream; a channel's watch cannot resume).
  constructor(path, handlers, resumable) {
    this.path = path;
    this.handlers = handlers;
    this.resumable = resumable;
    this.lastId = null;
    this.retryMs = MIN_RETRY_MS;
    this.closed = false;
    this.controller = null;
    this.timer = null;
    this.connect();
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.controller) {
      this.controller.abort();
    }
  }

  async connect() {
    this.controller = new AbortController();
    const extra = { Accept: "text/event-stream" };
    if (this.resumable && this.lastId !== null) {
      extra["Last-Event-ID"] = this.lastId;
    }
    let response;
    try {
      response = await fetch(this.path, {
        headers: headers(extra),
        cache: "no-store",
        signal: this.controller.signal,
      });
    } catch (e) {
      return this.lost(`could not connect (${e.message})`);
    }
    if (!response.ok) {
      // A refusal (404, 401, 409 listener_stopped) does not heal by
      // retrying: the stream ends here.
      this.closed = true;
      this.handlers.onError(await errorOf(response));
      return this.handlers.onEnd("refused");
    }
    this.handlers.onOpen();
    let ended = null;
    try {
      ended = await this.read(response.body);
    } catch (e) {
      if (this.closed) {
        return undefined;
      }
      return this.lost(`connection lost (${e.message})`);
    }
    if (ended !== null) {
      this.closed = true;
      return this.handlers.onEnd(ended);
    }
    return this.lost("the server ended the stream");
  }

  lost(why) {
    if (this.closed) {
      return;
    }
    if (!this.resumable) {
      this.closed = true;
      this.handlers.onEnd(why);
      return;
    }
    const wait = Math.min(Math.max(this.retryMs, MIN_RETRY_MS), MAX_RETRY_MS);
    this.handlers.onNotice(`${why}; reconnecting in ${Math.round(wait / 1000)} s`);
    this.timer = setTimeout(() => this.connect(), wait);
  }

  // Reads events until the body ends; the reason of an `eric-end` event,
  // or null when the body ended without one.
  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = fresh();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        return null;
      }
      buffer += value;
      let at;
      while ((at = lineEnd(buffer)) !== null) {
        const line = buffer.slice(0, at.index);
        buffer = buffer.slice(at.index + at.length);
        if (line === "") {
          const ended = this.dispatch(event);
          if (ended !== null) {
            await reader.cancel();
            return ended;
          }
          event = fresh();
        } else {
          this.field(event, line);
        }
      }
    }
  }

  field(event, line) {
    if (line.startsWith(":")) {
      return;
    }
    const colon = line.indexOf(":");
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) {
      value = value.slice(1);
    }
    switch (name) {
      case "data":
        event.data.push(value);
        break;
      case "event":
        event.type = value;
        break;
      case "id":
        if (!value.includes("\0")) {
          event.id = value;
        }
        break;
      case "topic":
        event.topic = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) {
          this.retryMs = Number(value);
        }
        break;
      default:
        break;
    }
  }

  // Hands one event on; the reason when it is eric's end notice.
  dispatch(event) {
    if (event.id !== null) {
      this.lastId = event.id;
    }
    if (event.data.length === 0) {
      return null;
    }
    const data = event.data.join("\n");
    const type = event.type || "message";
    if (type === "eric-end") {
      return parsed(data).reason || "ended";
    }
    if (type === "eric-gap") {
      this.handlers.onNotice(`messages after ${parsed(data).after} were lost (eric-gap)`);
      return null;
    }
    this.handlers.onEvent({ id: event.id, type, topic: event.topic, data });
    return null;
  }
}

function fresh() {
  return { id: null, type: "", topic: null, data: [] };
}

function parsed(data) {
  try {
    return JSON.parse(data) || {};
  } catch {
    return {};
  }
}

// Where the first line of `buffer` ends: its index and the terminator's
// length; null while no full line is there. A CR at the very end waits for
// the next chunk, which may bring its LF.
function lineEnd(buffer) {
  const match = /\r\n|\r|\n/.exec(buffer);
  if (!match) {
    return null;
  }
  if (match[0] === "\r" && match.index === buffer.length - 1) {
    return null;
  }
  return { index: match.index, length: match[0].length };
}
