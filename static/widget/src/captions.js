/**
 * Live captions from the standard `lk.transcription` text streams.
 *
 * LiveKit Agents sends the agent's speech as one delta stream per segment (chunks are
 * appended) and the visitor's speech as one stream per interim or final result, each carrying
 * the whole text so far. Both share `lk.segment_id`. So: a segment's text is the text of its
 * latest stream, accumulated over that stream's chunks. Segments keep the order in which they
 * were first heard, which is the order in which they were spoken.
 */

export class CaptionLog {
  constructor(limit = 50) {
    this.limit = limit;
    /** @type {Map<string, {id: string, role: string, text: string, final: boolean, streamId: string}>} */
    this.segments = new Map();
  }

  /**
   * Apply one piece of a transcription stream; returns the changed caption, or null.
   * @param {{streamId: string, segmentId?: string, role: string, delta?: string, done?: boolean, final?: boolean}} part
   */
  apply(part) {
    const id = part.segmentId || part.streamId;
    let segment = this.segments.get(id);
    if (!segment) {
      segment = { id, role: part.role, text: '', final: false, streamId: part.streamId };
      this.segments.set(id, segment);
      while (this.segments.size > this.limit) {
        this.segments.delete(this.segments.keys().next().value);
      }
    }
    if (segment.streamId !== part.streamId) {
      // A new stream for a known segment carries that segment's whole text again.
      segment.streamId = part.streamId;
      segment.text = '';
      segment.final = false;
    }
    const before = `${segment.text}|${segment.final}`;
    if (part.delta) segment.text += part.delta;
    if (part.done && part.final) segment.final = true;
    if (`${segment.text}|${segment.final}` === before) return null;
    return { id: segment.id, role: segment.role, text: segment.text, final: segment.final };
  }

  /** Captions in spoken order, without empty ones. */
  list() {
    return [...this.segments.values()]
      .filter((s) => s.text.trim())
      .map(({ id, role, text, final, typed }) => ({ id, role, text, final, ...(typed && { typed }) }));
  }

  /** A line the widget knows whole (what the visitor typed). */
  add(caption) {
    this.segments.set(caption.id, { ...caption, streamId: caption.id });
  }

  remove(id) {
    this.segments.delete(id);
  }

  clear() {
    this.segments.clear();
  }
}
