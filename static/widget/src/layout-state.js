/**
 * The panel's size, as data (no DOM, so node's tests run it): compact or expanded for the
 * floating panel, full for `position="fullpage"`, none for inline. The floating panel's size
 * is the visitor's choice, remembered for the tab.
 */

export const Size = Object.freeze({ COMPACT: 'compact', EXPANDED: 'expanded', FULL: 'full' });

/** The panel's size for a position and the visitor's choice; '' for inline (as it is). */
export function panelSize(position, expanded) {
  if (position === 'fullpage') return Size.FULL;
  if (position === 'floating') return expanded ? Size.EXPANDED : Size.COMPACT;
  return '';
}

/** Only the floating panel can be expanded (a full page already is). */
export function canExpand(position) {
  return position === 'floating';
}

const KEY = 'voice-widget:expanded:';

/**
 * The visitor's expanded-or-compact choice for a persona's floating panel, kept in the tab's
 * sessionStorage (a reload or the next page keeps it; another tab does not). Without storage
 * (sandboxed, disabled) the choice lasts as long as the page.
 */
export class ExpandedChoice {
  constructor(storage) {
    this.storage = storage;
    this.choices = {};
  }

  get(persona) {
    if (persona in this.choices) return this.choices[persona];
    try {
      return this.storage ? this.storage.getItem(KEY + persona) === '1' : false;
    } catch {
      return false;
    }
  }

  set(persona, expanded) {
    this.choices[persona] = expanded;
    try {
      if (!this.storage) return;
      if (expanded) this.storage.setItem(KEY + persona, '1');
      else this.storage.removeItem(KEY + persona);
    } catch {
      // full or refused: the choice lasts for this page
    }
  }
}

/**
 * Where Tab goes in a panel that covers the page (the expanded one): from the last control to
 * the first, and Shift+Tab from the first to the last. The index to focus, or -1 to let the
 * browser move on.
 */
export function wrapFocus(count, index, backwards) {
  if (!count) return -1;
  if (backwards && index <= 0) return count - 1;
  if (!backwards && (index === count - 1 || index < 0)) return 0;
  return -1;
}
