/**
 * The parts of the panel a page without a conversation never needs: the consent notice
 * (before the first start), the captions and the text box (during a conversation) and the
 * feedback form (after it). A chunk of their own, loaded once the visitor clicks.
 */

export { default as CSS } from './panels.css';
import { richText } from './rich-text.js';

const THUMB =
  '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M7 11v9H4v-9zM7 11l4-8a2 2 0 0 1 3 2l-1 4h6a2 2 0 0 1 2 2l-2 7a2 2 0 0 1-2 2H7"/></svg>';

const SEND =
  '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 12l16-8-6 16-2-6zM12 14l8-10"/></svg>';

const CHAT = `<div class="chat-box" hidden><p class="chat-error" role="alert" hidden></p><form class="chat"><input class="chat-input" type="text" maxlength="1000" autocomplete="off" enterkeyhint="send"><button class="primary send" type="submit">${SEND}</button></form></div>`;

const CONSENT = `<div class="consent" hidden><p class="consent-text" id="vw-consent"></p><a class="consent-link" target="_blank" rel="noopener noreferrer"></a><div class="controls"><button class="secondary decline" type="button"></button><button class="primary accept" type="button" aria-describedby="vw-consent"></button></div></div>`;

const FEEDBACK = `<form class="feedback" hidden><p class="ask" id="vw-ask"></p><div class="controls" role="group" aria-labelledby="vw-ask"><button class="secondary round up" type="button" aria-pressed="false">${THUMB}</button><button class="secondary round down" type="button" aria-pressed="false">${THUMB}</button></div><textarea class="comment" rows="2" maxlength="1000" hidden></textarea><button class="secondary post" type="submit" hidden></button><p class="thanks" role="status"></p></form>`;

function fragment(html) {
  const holder = document.createElement('div');
  holder.innerHTML = html; // our own constant markup; every text is set with textContent
  return holder.firstElementChild;
}

/** A caption piece (see richText) as a DOM node. */
function pieceNode(piece) {
  if (!piece.href && !piece.bold && !piece.italic) return document.createTextNode(piece.text);
  const node = document.createElement(piece.href ? 'a' : piece.bold ? 'strong' : 'em');
  node.textContent = piece.text;
  if (piece.href) {
    node.href = piece.href;
    node.target = '_blank';
    node.rel = 'noopener noreferrer nofollow';
  }
  return node;
}

function cssEscape(value) {
  return window.CSS && window.CSS.escape
    ? window.CSS.escape(value)
    : String(value).replace(/["\\]/g, '\\$&');
}

/** The captions, keyed by segment so an utterance is updated in place. */
function renderCaptions(box, view, t, agentName) {
  const shown = view.state === 'active' || view.state === 'ended' ? view.captions : [];
  const keep = new Set(shown.map((c) => c.id));
  for (const line of [...box.children]) {
    if (!keep.has(line.dataset.id)) line.remove();
  }
  let previous = null;
  for (const caption of shown.slice(-20)) {
    let line = box.querySelector(`[data-id="${cssEscape(caption.id)}"]`);
    if (!line) {
      line = document.createElement('p');
      line.className = 'line';
      line.dataset.id = caption.id;
      const who = document.createElement('span');
      who.className = 'who-said';
      const text = document.createElement('span');
      text.className = 'said';
      line.append(who, text);
      if (previous) previous.after(line);
      else box.prepend(line);
    }
    line.dataset.role = caption.role;
    line.dataset.final = String(caption.final);
    line.firstChild.textContent = `${caption.role === 'user' ? t.you : agentName}: `;
    if (line.shownText !== caption.text) {
      line.shownText = caption.text;
      // The agent's links and emphasis as DOM nodes (never HTML); the visitor's as said.
      const pieces = caption.role === 'user' ? [{ text: caption.text }] : richText(caption.text);
      line.lastChild.replaceChildren(...pieces.map(pieceNode));
    }
    previous = line;
  }
  box.scrollTop = box.scrollHeight;
}

/**
 * Adds the panels to a widget's shadow root, wired to its controller; returns what the
 * element calls: `render(view, labels, notice, agentName)` and the `accept` button and text
 * box (for focus).
 */
export function mountPanels(root, controller) {
  const consent = fragment(CONSENT);
  const feedback = fragment(FEEDBACK);
  const chat = fragment(CHAT);
  root.querySelector('.captions').before(consent);
  root.querySelector('.sound').before(chat);
  root.querySelector('.body > .controls').before(feedback);
  const captions = root.querySelector('.captions');
  const $ = (parent, selector) => parent.querySelector(selector);
  const ui = {
    text: $(consent, '.consent-text'),
    link: $(consent, '.consent-link'),
    accept: $(consent, '.accept'),
    decline: $(consent, '.decline'),
    ask: $(feedback, '.ask'),
    up: $(feedback, '.up'),
    down: $(feedback, '.down'),
    comment: $(feedback, '.comment'),
    post: $(feedback, '.post'),
    thanks: $(feedback, '.thanks'),
    input: $(chat, 'input'),
    send: $(chat, '.send'),
    error: $(chat, '.chat-error'),
  };
  $(chat, 'form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = ui.input.value;
    ui.input.value = '';
    // What the visitor wrote comes back to the box when it could not be sent.
    if (!(await controller.sendText(text)) && !ui.input.value) ui.input.value = text;
  });
  ui.accept.addEventListener('click', () => controller.acceptConsent());
  ui.decline.addEventListener('click', () => controller.declineConsent());
  ui.up.addEventListener('click', () => controller.rate('up'));
  ui.down.addEventListener('click', () => controller.rate('down'));
  feedback.addEventListener('submit', (event) => {
    event.preventDefault();
    const rated = controller.view().feedback;
    if (rated && rated.rating) controller.rate(rated.rating, ui.comment.value.trim());
  });

  function render(view, t, notice, agentName) {
    renderCaptions(captions, view, t, agentName);
    consent.hidden = view.state !== 'consent';
    ui.text.textContent = notice.text;
    const privacy = /^https?:\/\//i.test(notice.url) ? notice.url : '';
    ui.link.hidden = !privacy;
    ui.link.href = privacy || '#';
    ui.link.textContent = t.privacy;
    ui.accept.textContent = t.accept;
    ui.decline.textContent = t.decline;

    const talking = view.state === 'active';
    chat.hidden = !talking || view.mode === 'voice';
    ui.input.setAttribute('aria-label', t.message);
    ui.input.placeholder = t.message;
    ui.send.setAttribute('aria-label', t.send);
    ui.error.hidden = !(talking && view.chatError);
    ui.error.textContent = t.notSent;

    const rated = view.feedback;
    feedback.hidden = !rated;
    if (!rated) {
      ui.comment.value = '';
      return;
    }
    ui.ask.textContent = t.rate;
    for (const [button, rating, label] of [
      [ui.up, 'up', t.good],
      [ui.down, 'down', t.bad],
    ]) {
      button.setAttribute('aria-label', label);
      button.setAttribute('aria-pressed', String(rated.rating === rating));
      button.disabled = rated.status === 'sending';
    }
    // A comment may follow the rating, once.
    const commented = rated.comment && rated.status === 'sent';
    ui.comment.hidden = ui.post.hidden = !rated.rating || commented;
    ui.comment.setAttribute('aria-label', t.comment);
    ui.comment.placeholder = t.comment;
    ui.post.textContent = t.send;
    ui.thanks.textContent = { sent: t.thanks, failed: t.notSent }[rated.status] || '';
  }

  return { render, accept: ui.accept, input: ui.input };
}
