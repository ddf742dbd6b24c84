// The admin's live conversation page: lines arrive over a websocket and are added to the
// transcript the server rendered. Each line carries its sequence number, so a line is shown
// once however often it arrives (after a reconnect the server sends what is new).
(() => {
  'use strict';
  const root = document.getElementById('vw-live');
  if (!root) return;
  const text = (name) => root.dataset[name] || '';
  const roles = JSON.parse(root.dataset.roleLabels || '{}');
  const statuses = JSON.parse(root.dataset.statusLabels || '{}');
  const list = root.querySelector('[data-transcript]');
  const statusLine = root.querySelector('[data-status]');
  const connection = root.querySelector('[data-connection]');
  const endForm = root.querySelector('[data-end-form]');
  let last = 0;
  for (const item of list.querySelectorAll('[data-sequence]')) {
    last = Math.max(last, Number(item.dataset.sequence));
  }
  let open = root.dataset.open === 'true';
  let mode = '';
  let retries = 0;
  let stopped = false;

  function say(message) {
    connection.textContent = message;
  }

  function timeOf(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? '' : date.toLocaleTimeString([], { hour12: false });
  }

  function nearBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  }

  function addTurns(turns) {
    const follow = nearBottom();
    for (const turn of turns) {
      if (turn.sequence <= last) continue;
      last = turn.sequence;
      list.querySelector('[data-empty]')?.remove();
      const item = document.createElement('li');
      item.className = `vw-turn vw-role-${turn.role} vw-new`;
      item.dataset.sequence = String(turn.sequence);
      const who = document.createElement('span');
      who.className = 'vw-who';
      who.textContent = roles[turn.role] || turn.role;
      const time = document.createElement('time');
      time.dateTime = turn.time;
      time.textContent = timeOf(turn.time);
      const words = document.createElement('p');
      words.textContent = turn.text;
      if (turn.interrupted) {
        const note = document.createElement('em');
        note.className = 'vw-interrupted';
        note.textContent = ` ${text('textInterrupted')}`;
        words.append(note);
      }
      item.append(who, ' ', time, words);
      list.append(item);
    }
    if (follow) list.scrollTop = list.scrollHeight;
  }

  function showStatus(message) {
    const label = statuses[message.status] || message.status;
    statusLine.textContent = message.end_reason_label ? `${label} (${message.end_reason_label})` : label;
    open = message.status !== 'ended' && message.status !== 'failed';
    if (!open) {
      endForm?.remove();
      say(text('textDone'));
    }
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${scheme}//${location.host}${root.dataset.socket}`);
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(event.data);
      if (message.type === 'hello') {
        retries = 0;
        mode = message.mode;
        showStatus(message);
        if (open) say(mode === 'polling' ? text('textPolling') : text('textLive'));
      } else if (message.type === 'turns') {
        addTurns(message.turns);
      } else if (message.type === 'status') {
        showStatus(message);
      }
    });
    socket.addEventListener('close', (event) => {
      if (event.code === 4403) return say(text('textForbidden'));
      if (event.code === 4404) return say(text('textGone'));
      if (stopped || !open) return;
      retries += 1;
      // A refused handshake (signed out, say) looks like a dropped connection: after a few
      // tries the page says so instead of trying quietly for ever.
      say(retries > 4 ? text('textFailing') : text('textReconnecting'));
      setTimeout(connect, Math.min(1000 * 2 ** (retries - 1), 10000));
    });
  }

  endForm?.addEventListener('submit', (event) => {
    if (!window.confirm(text('textConfirm'))) event.preventDefault();
  });
  window.addEventListener('pagehide', () => {
    stopped = true;
  });
  // Also for an ended conversation: its last lines (the closing line) may still be saved.
  if (open) say(text('textConnecting'));
  connect();
})();
