// A stateless SIP proxy in Kamailio KEMI JavaScript, runnable as is by
// `ksr run examples/basic-proxy.js` (and, apart from the static directory
// below, by Kamailio's app_jsdt).
//
// The request checks follow Kamailio's basic KEMI example (reqinit): scanner
// filtering, Max-Forwards, keepalive OPTIONS, sanity checks. Calls for the
// local domain are routed from a small static directory; anything else for a
// foreign domain is refused, as an open relay would be abused.

// Local users and where to reach them. A registrar replaces this later.
var DIRECTORY = {
  alice: "sip:alice@127.0.0.1:5070",
  bob: "sip:bob@127.0.0.1:5080",
};

function ksr_request_route() {
  ksr_route_reqinit();

  // Requests for our domain; ACK and CANCEL of calls forwarded statelessly
  // take the same path as their INVITE, so they reach the same place.
  if (KSR.is_myself_ruri()) {
    ksr_route_local();
    return;
  }

  if (!KSR.is_myself_furi()) {
    // Neither from nor to our domain: refuse to relay.
    KSR.sl.sl_send_reply(403, "Not relaying");
    KSR.x.exit();
  }

  // Outbound call of a local user to a foreign domain.
  ksr_route_relay();
}

// Per-request initial checks.
function ksr_route_reqinit() {
  var ua = KSR.kx.gete_ua();
  if (ua.indexOf("friendly") >= 0 || ua.indexOf("scanner") >= 0 || ua.indexOf("sipvicious") >= 0) {
    KSR.sl.sl_send_reply(200, "OK");
    KSR.x.exit();
  }

  if (KSR.maxfwd.process_maxfwd(10) < 0) {
    KSR.sl.sl_send_reply(483, "Too Many Hops");
    KSR.x.exit();
  }

  if (KSR.is_OPTIONS() && KSR.is_myself_ruri() && KSR.corex.has_ruri_user() < 0) {
    KSR.sl.sl_send_reply(200, "Keepalive");
    KSR.x.exit();
  }

  // sanity_check() answers the request itself when a check fails.
  if (KSR.sanity.sanity_check(1511, 7) < 0) {
    KSR.err("malformed SIP message from " + KSR.kx.get_srcip() + ":" + KSR.kx.get_srcport() + "\n");
    KSR.x.exit();
  }
}

// Requests addressed to our domain.
function ksr_route_local() {
  if (KSR.is_REGISTER()) {
    KSR.sl.sl_send_reply(501, "Registrar Not Enabled");
    KSR.x.exit();
  }

  var user = KSR.kx.get_ruser();
  var target = user === null ? undefined : DIRECTORY[user];
  if (target === undefined) {
    if (!KSR.is_ACK()) KSR.sl.sl_send_reply(404, "Not Found");
    KSR.x.exit();
  }

  KSR.seturi(target);
  ksr_route_relay();
}

function ksr_route_relay() {
  KSR.force_rport();
  if (KSR.forward() < 0) {
    KSR.sl.sl_reply_error();
  }
  KSR.x.exit();
}

// Replies coming back are forwarded statelessly per their Via.
function ksr_reply_route() {
  KSR.dbg("reply " + KSR.kx.get_status() + " for " + KSR.kx.get_method() + "\n");
}
