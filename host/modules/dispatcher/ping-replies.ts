/**
 * Which replies answer a dispatcher ping: any 2xx, and the codes and
 * classes of Kamailio's ds_ping_reply_codes ("code=404;class=3").
 */

/** Reply codes (100..699) and classes (1..6) accepted as an answer to a ping. */
export interface AcceptedReplies {
  readonly codes: readonly number[];
  readonly classes: readonly number[];
}

/**
 * ds_ping_reply_codes: "code=404;class=3;code=488" (names case-insensitive).
 * Kamailio drops a code outside 100..699 or a class outside 1..6 without a
 * word; here that, an unknown name or a value that is not a whole number is
 * an Error naming it, so that a typo does not silently mark a peer down.
 */
export function parsePingReplyCodes(text: string): AcceptedReplies {
  const codes: number[] = [];
  const classes: number[] = [];
  for (const raw of text.split(";")) {
    const part = raw.trim();
    if (part === "") continue;
    const eq = part.indexOf("=");
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    const value = eq === -1 ? "" : part.slice(eq + 1).trim();
    if (!/^\d{1,3}$/.test(value)) throw new Error(`ds_ping_reply_codes: "${part}" has no whole-number value`);
    const n = Number(value);
    if (name === "code") {
      if (n < 100 || n > 699) throw new Error(`ds_ping_reply_codes: code ${n} is not in 100..699`);
      codes.push(n);
    } else if (name === "class") {
      if (n < 1 || n > 6) throw new Error(`ds_ping_reply_codes: class ${n} is not in 1..6`);
      classes.push(n);
    } else throw new Error(`ds_ping_reply_codes: unknown name "${name}" (code or class)`);
  }
  return { codes, classes };
}

/** A final status answers a ping when it is 2xx or accepted by ds_ping_reply_codes (Kamailio's ds_ping_check_rplcode). */
export function isPingAnswered(status: number, accepted: AcceptedReplies): boolean {
  if (status >= 200 && status <= 299) return true;
  return accepted.codes.includes(status) || accepted.classes.includes(Math.floor(status / 100));
}
