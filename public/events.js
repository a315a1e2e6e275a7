// Taru's event stream: tells of tasks starting and ending and of reloads,
// and reconnects by itself whenever the stream is lost.

const RETRY_FIRST = 1000;
const RETRY_MOST = 15000;

// onEvent(task, event) for each event; onState(state) with "connecting",
// "live" or "reconnecting"; onOpen() each time the stream (re)opens, since
// events may have been missed while it was down.
export function connect({ onEvent, onState, onOpen }) {
  let source = null;
  let retry = RETRY_FIRST;
  let lastMessage = 0;
  let lastPing = 0;
  let pingInterval = 0;

  function open() {
    source = new EventSource("events");
    source.onopen = () => {
      retry = RETRY_FIRST;
      lastMessage = performance.now();
      onState("live");
      onOpen();
    };
    source.onmessage = (message) => {
      lastMessage = performance.now();
      let task;
      let event;
      try {
        [task, event] = JSON.parse(message.data);
      } catch {
        return;
      }
      if (event === "Ping") {
        if (lastPing) pingInterval = lastMessage - lastPing;
        lastPing = lastMessage;
        return;
      }
      onEvent(task, event);
    };
    source.onerror = () => {
      onState("reconnecting");
      // The browser retries by itself after a dropped connection, but gives
      // up after an error status, such as a proxy's 502 while Taru restarts.
      if (source.readyState === EventSource.CLOSED) reopenLater();
    };
  }

  function reopenLater() {
    source.close();
    lastPing = 0;
    pingInterval = 0;
    setTimeout(open, retry);
    retry = Math.min(retry * 2, RETRY_MOST);
  }

  // A connection that silently died sends no heartbeats: once three have
  // been missed, start over.
  setInterval(() => {
    if (pingInterval && source.readyState === EventSource.OPEN &&
        performance.now() - lastMessage > 3 * pingInterval) {
      onState("reconnecting");
      reopenLater();
    }
  }, 1000);

  onState("connecting");
  open();
}
