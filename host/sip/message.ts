/**
 * The SIP message model shared by the parser, the serializer, the KSR modules
 * and the proxy core.
 *
 * Text is held as "binary" (latin1) strings: one JS char per wire byte. This
 * keeps byte-exact round trips (RFC 3261 allows UTF-8 in display names and
 * reason phrases; we never re-encode) and makes `string.length` the byte
 * count that Content-Length needs. The KSR bridge converts to and from UTF-8
 * at the script boundary.
 */

/** One header field as it appeared in the message. */
export interface Header {
  /** Name exactly as on the wire: "v", "VIA", "Via". */
  readonly name: string;
  /** Lowercase full name, compact form expanded (RFC 3261 §7.3.3): "v" → "via". */
  readonly key: string;
  /** Field value: folded lines joined with one space (§7.3.1), outer whitespace trimmed. */
  readonly value: string;
  /** Exact bytes of the field (all its folded lines) including the final CRLF, as received. */
  readonly raw: string;
}

export interface CSeq {
  readonly seq: number;
  readonly method: string;
}

/** A parsed request or response. Immutable once parsed: edits live in {@link MessageEdits}. */
export interface SipMessage {
  readonly kind: "request" | "response";
  /** Request method; for a response the CSeq method. */
  readonly method: string;
  /** Request-URI as text (requests only, "" for responses). */
  readonly requestUri: string;
  /** Status code (responses only, 0 for requests). */
  readonly status: number;
  /** Reason phrase (responses only). */
  readonly reason: string;
  /** "SIP/2.0". */
  readonly version: string;
  /** The start line without its CRLF, as received. */
  readonly startLine: string;
  /** Every header field in wire order. */
  readonly headers: readonly Header[];
  /** Body bytes as a binary string ("" when none). */
  readonly body: string;
  /** The whole message as received (binary string). */
  readonly raw: string;
  /** Call-ID value ("" if absent, which the parser rejects for well-formed messages). */
  readonly callId: string;
  readonly cseq: CSeq;
}

/**
 * Changes a route made to a message, applied only when the message is
 * serialized for sending. As in Kamailio (lumps), reads of the message keep
 * seeing the original headers; only the Request-URI change is visible to
 * reads ($ru), and that is kept by the message context, not here.
 */
export interface MessageEdits {
  /** Header index → replacement raw text ("" removes the header). Raw text must end in CRLF. */
  readonly replaced: Map<number, string>;
  /** Raw header lines inserted before header index i (key = i). */
  readonly insertedBefore: Map<number, string[]>;
  /** Raw header lines inserted after header index i (key = i). */
  readonly insertedAfter: Map<number, string[]>;
  /** Raw header lines inserted before the first header. */
  readonly prepended: string[];
  /** Raw header lines appended after the last header. */
  readonly appended: string[];
  /** New body (binary string), or undefined to keep the received body. */
  body?: string;
}

/**
 * An edit set whose maps are made when first written: most messages a
 * proxy handles get a Max-Forwards replaced and nothing inserted, and every
 * context, saved request and copy of one has an edit set (three Maps each
 * when made eagerly, kept with the transaction for its wait time).
 * Readers that only look use replacedOf / insertedBeforeOf /
 * insertedAfterOf, which do not make them.
 */
class EditSet implements MessageEdits {
  #replaced: Map<number, string> | undefined;
  #insertedBefore: Map<number, string[]> | undefined;
  #insertedAfter: Map<number, string[]> | undefined;
  readonly prepended: string[] = [];
  readonly appended: string[] = [];
  body?: string;

  get replaced(): Map<number, string> {
    return (this.#replaced ??= new Map());
  }

  get insertedBefore(): Map<number, string[]> {
    return (this.#insertedBefore ??= new Map());
  }

  get insertedAfter(): Map<number, string[]> {
    return (this.#insertedAfter ??= new Map());
  }

  static peek(edits: MessageEdits, which: 0 | 1 | 2): ReadonlyMap<number, string | string[]> {
    if (!(edits instanceof EditSet)) return which === 0 ? edits.replaced : which === 1 ? edits.insertedBefore : edits.insertedAfter;
    return (which === 0 ? edits.#replaced : which === 1 ? edits.#insertedBefore : edits.#insertedAfter) ?? NO_ENTRIES;
  }
}

const NO_ENTRIES: ReadonlyMap<number, never> = new Map<number, never>();

export function emptyEdits(): MessageEdits {
  return new EditSet();
}

/** edits.replaced to read, without making an empty map for it. */
export function replacedOf(edits: MessageEdits): ReadonlyMap<number, string> {
  return EditSet.peek(edits, 0) as ReadonlyMap<number, string>;
}

/** edits.insertedBefore to read, without making an empty map for it. */
export function insertedBeforeOf(edits: MessageEdits): ReadonlyMap<number, readonly string[]> {
  return EditSet.peek(edits, 1) as ReadonlyMap<number, string[]>;
}

/** edits.insertedAfter to read, without making an empty map for it. */
export function insertedAfterOf(edits: MessageEdits): ReadonlyMap<number, readonly string[]> {
  return EditSet.peek(edits, 2) as ReadonlyMap<number, string[]>;
}

export function hasEdits(edits: MessageEdits): boolean {
  return (
    replacedOf(edits).size > 0 ||
    insertedBeforeOf(edits).size > 0 ||
    insertedAfterOf(edits).size > 0 ||
    edits.prepended.length > 0 ||
    edits.appended.length > 0 ||
    edits.body !== undefined
  );
}

/**
 * A copy of `text` that shares no storage with the message it was cut
 * from. V8 keeps a substring of 13 or more characters as a slice of its
 * parent, so one Call-ID or branch kept by a transaction for its 32 s of
 * timers keeps the whole received message alive with it. Concatenating
 * flattens into a fresh string, which the slice is then taken from.
 * For values that outlive their message; not for the per-message path.
 */
export function ownCopy(text: string): string {
  return text.length < 13 ? text : (text + " ").slice(0, -1);
}
