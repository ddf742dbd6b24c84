/**
 * Caption formatting: the few things the agent's text may show as more than text, built as
 * DOM nodes by the element (never HTML from the model). Loaded with the LiveKit chunk, since
 * captions exist only in a conversation.
 */

// A link [text](url), a bare URL, **bold** or *italic*: nothing else is ever formatted.
const RICH =
  /\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)|(https?:\/\/[^\s<>"']*[^\s<>"'.,;:!?)\]])|\*\*([^*\n]+)\*\*|\*([^*\s][^*\n]*)\*/g;

function httpUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/**
 * A caption's text as pieces to build DOM nodes from (never HTML): `{text}`, `{text, bold}`,
 * `{text, italic}` or `{text, href}` (http and https links only). Anything else, including
 * markup the model wrote, stays text.
 */
export function richText(text) {
  const pieces = [];
  let last = 0;
  const plain = (value) => {
    if (!value) return;
    const previous = pieces[pieces.length - 1];
    if (previous && Object.keys(previous).length === 1) previous.text += value;
    else pieces.push({ text: value });
  };
  for (const match of String(text).matchAll(RICH)) {
    const [whole, label, target, bare, bold, italic] = match;
    plain(text.slice(last, match.index));
    last = match.index + whole.length;
    const href = httpUrl(target || bare || '');
    if (label && href) pieces.push({ text: label, href });
    else if (bare && href) pieces.push({ text: bare, href });
    else if (bold) pieces.push({ text: bold, bold: true });
    else if (italic) pieces.push({ text: italic, italic: true });
    else plain(whole);
  }
  plain(text.slice(last));
  return pieces;
}
