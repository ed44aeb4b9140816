// The Socket.IO connection: events from the hub, and a resync after every reconnection.
import { useEffect, useRef } from "preact/hooks";
import { io } from "socket.io-client";
import { events } from "./events.js";
import { store } from "./store.js";

let socket = null;
const handlers = new Map();
export const connected = store(false);

function dispatch(event, data) {
  for (const handler of handlers.get(event) || []) handler(data);
}

// onRefused: the token no longer opens a socket; onEnded: the hub closed this person's sockets
// (a logout elsewhere, a removal, a changed role), so what they may see is asked again.
export function connectLive(token, onRefused, onEnded) {
  disconnectLive();
  let lost = false;
  const own = io({ auth: { token }, reconnectionDelayMax: 5000 });
  socket = own;
  own.on("connect", () => {
    connected.set(true);
    // What changed while we were away is fetched again by every page that listens.
    if (lost) dispatch(events.resync, {});
    lost = false;
  });
  own.on("disconnect", () => {
    connected.set(false);
    lost = true;
  });
  own.on("connect_error", (error) => {
    connected.set(false);
    lost = true;
    if (!own.active && own === socket) onRefused?.(error);
  });
  own.on(events.sessionEnded, (data) => {
    // Its token is void now: it must not reconnect with it, since a refused reconnection would
    // sign out a tab that is about to get its new session (onEnded connects again).
    disconnectLive();
    onEnded?.(data?.reason);
  });
  // The hub lost its shared channel for a while: what the pages show may be behind.
  own.on(events.resyncNeeded, (data) => dispatch(events.resync, data || {}));
  own.onAny((event, data) => dispatch(event, data));
}

export function disconnectLive() {
  if (socket) socket.disconnect();
  socket = null;
  connected.set(false);
}

export function emit(event, data) {
  return socket ? socket.timeout(10000).emitWithAck(event, data) : Promise.resolve(null);
}

export function on(event, handler) {
  if (!handlers.has(event)) handlers.set(event, new Set());
  handlers.get(event).add(handler);
  return () => handlers.get(event).delete(handler);
}

// Listen to hub events while a component is shown; the handler always sees the latest props.
export function useLive(names, handler) {
  const latest = useRef(handler);
  latest.current = handler;
  useEffect(() => {
    const offs = names.map((event) => on(event, (data) => latest.current(event, data)));
    return () => offs.forEach((off) => off());
  }, [names.join(",")]);
}
