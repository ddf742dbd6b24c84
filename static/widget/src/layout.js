/**
 * What the floating and full-page layouts add to the panel (a chunk: an inline widget needs
 * none of it): the floating panel's expand button, the expanded and full-page styles, and
 * Tab kept inside the expanded panel, which covers the page.
 */

import { ExpandedChoice, canExpand, panelSize, wrapFocus } from './layout-state.js';
export { default as CSS } from './layout.css';

const EXPAND =
  '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M14 4h6v6M10 20H4v-6M20 4l-7 7M4 20l7-7"/></svg>';
const COLLAPSE =
  '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 14h6v6M20 10h-6V4M14 10l6-6M10 14l-6 6"/></svg>';

const FOCUSABLE = 'button, input, textarea, a[href]';

/**
 * Adds the expand button to a widget's shadow root; returns what the element calls on each
 * render: `render(labels, position, persona)`.
 */
export function mountLayout(root, storage) {
  const vw = root.querySelector('.vw');
  const card = root.querySelector('.card');
  const close = root.querySelector('.close');
  const button = document.createElement('button');
  button.className = 'icon-button expand';
  button.type = 'button';
  button.hidden = true;
  close.before(button);
  const choice = new ExpandedChoice(storage);
  let shown = { t: null, position: '', persona: '' };

  button.addEventListener('click', () => {
    choice.set(shown.persona, !choice.get(shown.persona));
    render(shown.t, shown.position, shown.persona);
    const captions = root.querySelector('.captions');
    captions.scrollTop = captions.scrollHeight; // the newest line stays in view
  });

  card.addEventListener('keydown', (event) => {
    if (event.key !== 'Tab' || vw.dataset.size !== 'expanded') return;
    const controls = [...card.querySelectorAll(FOCUSABLE)].filter(
      (node) => !node.disabled && node.getClientRects().length && !node.closest('[hidden]'),
    );
    const target = wrapFocus(controls.length, controls.indexOf(root.activeElement), event.shiftKey);
    if (target >= 0) {
      event.preventDefault();
      controls[target].focus();
    }
  });

  function render(t, position, persona) {
    shown = { t, position, persona };
    const expanded = canExpand(position) && choice.get(persona);
    const size = panelSize(position, expanded);
    if (size) vw.dataset.size = size;
    else delete vw.dataset.size;
    // The expanded panel covers the page: a modal dialog, whose Tab stays inside.
    if (expanded) {
      card.setAttribute('role', 'dialog');
      card.setAttribute('aria-modal', 'true');
    } else {
      card.removeAttribute('role');
      card.removeAttribute('aria-modal');
    }
    button.hidden = !canExpand(position);
    // One name for a toggle button ("Expand the panel"); aria-pressed says whether it is on.
    button.setAttribute('aria-label', t.expand);
    button.setAttribute('aria-pressed', String(expanded));
    button.title = expanded ? t.collapse : t.expand;
    const icon = expanded ? COLLAPSE : EXPAND;
    if (button.dataset.icon !== icon) {
      button.innerHTML = icon;
      button.dataset.icon = icon;
    }
  }

  return { render };
}
