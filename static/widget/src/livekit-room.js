/**
 * The LiveKit part of the widget: loaded by a dynamic import only when the widget is about to
 * connect, so pages pay for livekit-client only when someone is about to talk.
 */

import {
  ConnectionError,
  ConnectionErrorReason,
  ConnectionState,
  DisconnectReason,
  ParticipantKind,
  Room,
  RoomEvent,
  Track,
  setLogLevel,
} from 'livekit-client';

import { LiveKitRoom } from './room-adapter.js';

// The host page's console is not ours to fill: livekit-client logs warnings and errors only.
setLogLevel('warn');

const livekit = {
  ConnectionError,
  ConnectionErrorReason,
  ConnectionState,
  DisconnectReason,
  ParticipantKind,
  Room,
  RoomEvent,
  Track,
};

/** A room for one widget; see room-adapter.js for the interface. */
export function createRoom(elements) {
  return new LiveKitRoom(livekit, elements);
}
