/**
 * Rejoining a conversation after a reload (see `Controller.resume`), in a chunk of its own:
 * fetched only when the tab holds a conversation to rejoin. The controller module's own
 * names are passed in (`shared`), not imported, so this chunk does not pull the controller out
 * of the first-load script; the connection and the start are handshake.js's, as after a click.
 */

/** The stored conversation of this persona if still within its window (taken: one use). */
function takeResumable(controller) {
  const { storage } = controller.deps;
  if (!storage) return null;
  let saved = null;
  try {
    saved = JSON.parse(storage.getItem(controller.resumeKey()) || 'null');
    storage.removeItem(controller.resumeKey());
  } catch {
    return null;
  }
  if (!saved || !saved.resume_url || !saved.end_key || !(saved.expires > controller.now())) {
    return null;
  }
  return saved;
}

/**
 * On load: rejoin the conversation this tab left within the resume window (same room, the
 * transcript so far, the agent) and go straight to the active state. Resolves true when a
 * conversation was resumed; a refused resume (ended, too late) leaves the widget idle.
 */
export function resume(controller, shared) {
  const { State, Superseded } = shared;
  if (controller.state !== State.IDLE) return Promise.resolve(false);
  const saved = takeResumable(controller);
  if (!saved) return Promise.resolve(false);
  const signal = controller.newFlow();
  controller.error = null;
  controller.endReason = '';
  controller.captions.clear();
  controller.setState(State.CONNECTING);
  return resumeFlow(controller, signal, saved, shared).then(
    () => true,
    (error) => {
      if (error instanceof Superseded || signal.aborted) return false;
      if (error && error.name === 'ApiError') {
        // Ended meanwhile, or too late: nothing to rejoin, a click starts afresh.
        controller.session = null;
        controller.teardownRoom();
        controller.setState(State.IDLE);
        return false;
      }
      controller.failed(signal, error);
      return false;
    },
  );
}

/**
 * Rejoin: the resume endpoint's token and transcript, the room, the microphone, the agent's
 * start; then the active state.
 * @param {import('./controller.js').Controller} controller
 * @param {AbortSignal} signal the flow's (aborted by an end, a failure or a newer flow)
 * @param {object} saved what `storeResumable` kept in sessionStorage
 * @param {object} shared the controller module's names (see its `SHARED`)
 */
async function resumeFlow(controller, signal, saved, shared) {
  // The flows' chunk (handshake.js), fetched by import() so it stays one chunk.
  const { activate, rejoin, startAgent, until } = await controller.flowChunk();
  const step = (promise) => until(signal, promise, shared);
  const data = await step(controller.deps.api.resumeSession(saved));
  controller.session = { ...saved, ...data };
  for (const [index, turn] of (data.transcript || []).entries()) {
    controller.captions.apply({
      streamId: `resumed-${index}`,
      role: turn.role === 'user' ? 'user' : 'agent',
      delta: turn.text,
      done: true,
      final: true,
    });
  }
  const room = await step(controller.deps.createRoom());
  controller.attachRoom(room);
  await rejoin(controller, signal, room, shared);
  // No click on a reload: the browser may hold the sound back ("tap to turn on sound").
  await step(Promise.resolve(room.startAudio()).catch(() => {}));
  room.playRemoteAudio();
  controller.audioBlocked = !room.canPlaybackAudio;
  // An agent that has started says so (voice_widget.started); one sent back to the room is
  // started with voice_widget.start.
  await startAgent(controller, signal, shared);
  activate(controller, signal, shared, () =>
    controller.deps.emit('voice-widget:resumed', { conversation: controller.session.conversation }),
  );
}
