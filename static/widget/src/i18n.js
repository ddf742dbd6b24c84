/**
 * Built-in labels in English, German, Spanish, Portuguese, Russian and French, chosen by the
 * persona's language (or the `lang` attribute). The persona's button label and welcome text
 * (from admin) override `start` and `welcome`. English is in the first-load script; the other
 * languages are small chunks loaded when a widget needs them.
 */

import en from './labels/en.js';

const loaders = {
  de: () => import('./labels/de.js'),
  es: () => import('./labels/es.js'),
  pt: () => import('./labels/pt.js'),
  ru: () => import('./labels/ru.js'),
  fr: () => import('./labels/fr.js'),
};
const loaded = { en };

export const LANGUAGES = ['en', ...Object.keys(loaders)];

/** `de-AT` → `de`; unknown languages → `en`. */
export function primaryLanguage(lang) {
  const primary = String(lang || '')
    .trim()
    .toLowerCase()
    .split(/[-_]/)[0];
  return LANGUAGES.includes(primary) ? primary : 'en';
}

/** The labels for `lang` if they are loaded (English until then). */
export function labelsFor(lang) {
  return loaded[primaryLanguage(lang)] || en;
}

export function labelsReady(lang) {
  return Boolean(loaded[primaryLanguage(lang)]);
}

/** Load the labels for `lang` (once per page); resolves with them. */
export async function loadLabels(lang) {
  const primary = primaryLanguage(lang);
  if (!loaded[primary]) loaded[primary] = (await loaders[primary]()).default;
  return loaded[primary];
}
