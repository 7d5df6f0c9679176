/**
 * Conversions at the script boundary. The host keeps message text as binary
 * (latin1) strings, one char per wire byte (see host/sip/message.ts); scripts
 * see ordinary JS strings decoded from UTF-8. ASCII text, by far the common
 * case in SIP, is the same in both and is passed through without copying.
 */

const NON_ASCII = /[^\x00-\x7f]/;

/** Binary (one char per byte) → JS string, decoding UTF-8. Invalid sequences become U+FFFD. */
export function binaryToText(binary: string): string {
  return NON_ASCII.test(binary) ? Buffer.from(binary, "latin1").toString("utf8") : binary;
}

/** JS string → binary string of its UTF-8 bytes. */
export function textToBinary(text: string): string {
  return NON_ASCII.test(text) ? Buffer.from(text, "utf8").toString("latin1") : text;
}
