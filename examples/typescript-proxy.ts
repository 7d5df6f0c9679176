/// <reference path="../runtime/ksr.d.ts" />
// A stateless SIP proxy written in TypeScript against the generated KSR
// typings (runtime/ksr.d.ts). `ksr run examples/typescript-proxy.ts` strips
// the types and runs it like any KEMI JavaScript script; `tsc --noEmit`
// checks every KSR call against the export tables.
//
// It is a plain script, not a module: the route functions must stay global
// (no import or export statements), so Kamailio-style dispatch by name works.

/** Where the users of our domain are reached; a registrar replaces this later. */
const DIRECTORY: Readonly<Record<string, string>> = {
  alice: "sip:alice@127.0.0.1:5070",
  bob: "sip:bob@127.0.0.1:5080",
};

/** User-Agent fragments of well-known SIP scanners. */
const SCANNERS: readonly string[] = ["friendly", "scanner", "sipvicious"];

/** Answers the request statelessly and ends the route. */
function replyAndExit(status: number, reason: string): never {
  KSR.sl.sl_send_reply(status, reason);
  return KSR.x.exit();
}

function ksr_request_route(): void {
  const ua: string | number | null = KSR.kx.gete_ua();
  if (typeof ua === "string" && SCANNERS.some((s) => ua.includes(s))) replyAndExit(200, "OK");

  // RFC 3261 §16.3 step 3: Max-Forwards exhausted.
  if (KSR.maxfwd.process_maxfwd(10) < 0) replyAndExit(483, "Too Many Hops");

  if (KSR.is_OPTIONS() && KSR.is_myself_ruri() && KSR.corex.has_ruri_user() < 0) replyAndExit(200, "Keepalive");

  if (KSR.sanity.sanity_check(1511, 7) < 0) {
    KSR.err(`malformed SIP message from ${KSR.kx.get_srcip()}:${KSR.kx.get_srcport()}\n`);
    KSR.x.exit();
  }

  if (!KSR.is_myself_ruri()) {
    if (!KSR.is_myself_furi() && !KSR.is_myself_srcip()) replyAndExit(403, "Not relaying");
    relay();
  }

  if (KSR.is_REGISTER()) replyAndExit(501, "Registrar Not Enabled");

  const user = KSR.kx.get_ruser();
  const target = typeof user === "string" ? DIRECTORY[user] : undefined;
  if (target === undefined) {
    if (!KSR.is_ACK()) KSR.sl.sl_send_reply(404, "Not Found");
    KSR.x.exit();
  }
  KSR.seturi(target);
  relay();
}

/** Sends the request on statelessly and ends the route. */
function relay(): never {
  KSR.force_rport();
  if (KSR.forward() < 0) KSR.sl.sl_reply_error();
  return KSR.x.exit();
}

function ksr_reply_route(): void {
  KSR.dbg(`reply ${KSR.kx.get_status()} for ${KSR.kx.get_method()}\n`);
}
