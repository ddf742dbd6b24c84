/**
 * Rejoining a conversation after a reload (see `Controller.resume`), in a chunk of its own:
 * fetched only when the tab holds a conversation to rejoin. The controller module's own
 * `State`, `agentStateOf` and `Superseded` are passed in, not imported, so this chunk does not
 * pull the controller out of the first-load script.
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
  const run = ++controller.run;
  controller.error = null;
  controller.endReason = '';
  controller.captions.clear();
  controller.setState(State.CONNECTING);
  return resumeFlow(controller, run, saved, shared).then(
    () => true,
    (error) => {
      if (error instanceof Superseded || run !== controller.run) return false;
      if (error && error.name === 'ApiError') {
        // Ended meanwhile, or too late: nothing to rejoin, a click starts afresh.
        controller.session = null;
        controller.teardownRoom();
        controller.setState(State.IDLE);
        return false;
      }
      controller.failed(run, error);
      return false;
    },
  );
}

/**
 * Rejoin: the resume endpoint's token and transcript, the room, the microphone, the agent's
 * start; then the active state.
 * @param {import('./controller.js').Controller} controller
 * @param {number} run
 * @param {object} saved what `storeResumable` kept in sessionStorage
 * @param {{State: object, agentStateOf: Function}} shared
 */
async function resumeFlow(controller, run, saved, { State, agentStateOf }) {
  const data = await controller.deps.api.resumeSession(saved);
  controller.check(run);
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
  const room = await controller.deps.createRoom();
  controller.check(run);
  controller.attachRoom(room);
  const connectError = await Promise.resolve(
    room.connect(controller.session.server_url, controller.session.participant_token),
  ).then(
    () => null,
    (error) => error || new Error('connect failed'),
  );
  controller.check(run);
  if (connectError) throw controller.connectFailure(connectError);
  controller.previewConnected = true;
  const micError = await controller.enableMicrophone(room);
  controller.check(run);
  if (micError) throw micError;
  // No click on a reload: the browser may hold the sound back ("tap to turn on sound").
  await Promise.resolve(room.startAudio()).catch(() => {});
  controller.check(run);
  room.playRemoteAudio();
  controller.audioBlocked = !room.canPlaybackAudio;
  const agent = await controller.waitForReadyAgent(run);
  // Idempotent for an agent that is talking already; starts one sent back to the room.
  await controller.callStart(run, agent);
  controller.agentState = controller.agentState || agentStateOf(room.agentAttributes());
  controller.setState(State.ACTIVE);
  controller.deps.emit('voice-widget:resumed', { conversation: controller.session.conversation });
  if (controller.audioBlocked) controller.reportAudioBlocked();
  controller.applyAgentAttributes(room.agentAttributes());
}
