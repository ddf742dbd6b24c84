import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ExpandedChoice, Size, canExpand, panelSize, wrapFocus } from '../src/layout-state.js';
import { StorageDouble } from './doubles.js';

describe('panel size', () => {
  test('a floating panel is compact until the visitor expands it', () => {
    assert.equal(panelSize('floating', false), Size.COMPACT);
    assert.equal(panelSize('floating', true), Size.EXPANDED);
  });

  test('a full page is full whatever was chosen elsewhere, and inline stays as it is', () => {
    assert.equal(panelSize('fullpage', false), Size.FULL);
    assert.equal(panelSize('fullpage', true), Size.FULL);
    assert.equal(panelSize('inline', true), '');
    assert.equal(panelSize('', false), '');
  });

  test('only the floating panel has an expand button', () => {
    assert.equal(canExpand('floating'), true);
    assert.equal(canExpand('fullpage'), false);
    assert.equal(canExpand('inline'), false);
  });
});

describe('the expanded choice', () => {
  test('is remembered for the tab, per persona: a reload reads it back', () => {
    const storage = new StorageDouble();
    const choice = new ExpandedChoice(storage);
    assert.equal(choice.get('ben'), false);
    choice.set('ben', true);
    assert.equal(choice.get('ben'), true);
    assert.equal(choice.get('paula'), false);
    assert.equal(new ExpandedChoice(storage).get('ben'), true, 'the next page load');
    choice.set('ben', false);
    assert.equal(new ExpandedChoice(storage).get('ben'), false);
  });

  test('without storage, or with one that refuses, lasts for the page', () => {
    for (const storage of [null, throwingStorage()]) {
      const choice = new ExpandedChoice(storage);
      assert.equal(choice.get('ben'), false);
      choice.set('ben', true);
      assert.equal(choice.get('ben'), true);
      assert.equal(new ExpandedChoice(storage).get('ben'), false);
    }
  });
});

describe('Tab in the expanded panel', () => {
  test('wraps from the last control to the first, and back with Shift', () => {
    assert.equal(wrapFocus(4, 3, false), 0);
    assert.equal(wrapFocus(4, 0, true), 3);
  });

  test('moves on by itself in between', () => {
    assert.equal(wrapFocus(4, 1, false), -1);
    assert.equal(wrapFocus(4, 2, true), -1);
  });

  test('from the panel itself goes to its first (or last) control', () => {
    assert.equal(wrapFocus(4, -1, false), 0);
    assert.equal(wrapFocus(4, -1, true), 3);
    assert.equal(wrapFocus(0, -1, false), -1);
  });
});

function throwingStorage() {
  const refuse = () => {
    throw new Error('SecurityError');
  };
  return { getItem: refuse, setItem: refuse, removeItem: refuse };
}
