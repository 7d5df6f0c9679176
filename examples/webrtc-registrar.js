// A registrar and proxy for WebRTC clients (JsSIP, SIP.js) that connect over
// WebSocket (RFC 7118), in Kamailio KEMI JavaScript, runnable as is by
//
//   ksr run examples/webrtc-registrar.js --listen ws:127.0.0.1:8080 --listen udp:127.0.0.1:5060
//
// (add --listen wss:IP:PORT with --tls-cert/--tls-key for browsers on https
// pages). It follows the NAT handling of Kamailio's WebSocket example
// configuration: a browser is never reachable at the address in its Contact
// (JsSIP writes a random "*.invalid" host), so
//
// - a REGISTER over WebSocket records where it came from
//   (fix_nated_register: the binding's received address is
//   sip:SRCIP:SRCPORT;transport=ws) and lookup() sends calls there, that is
//   down the browser's own WebSocket connection;
// - other requests from a browser get ;alias=SRCIP~SRCPORT~PROTO in their
//   Contact (add_contact_alias), so that requests within the dialog, whose
//   Request-URI is that Contact, find the connection again
//   (handle_ruri_alias);
// - a browser whose connection is gone cannot be reached (nobody can open a
//   WebSocket connection to a browser): the relay fails at once and the
//   caller gets 480.
//
// Authentication is left out to keep the example short; a deployment adds
// KSR.auth_db.auth_check() before save() as in Kamailio's default script.

var DOMAIN_CHECK = false; // true: accept only R-URIs of our own addresses (is_myself)

function ksr_request_route() {
  ksr_route_reqinit();
  ksr_route_natdetect();

  // CANCEL of a pending INVITE: relay it into the INVITE's transaction.
  if (KSR.is_CANCEL()) {
    if (KSR.tm.t_check_trans() > 0) ksr_route_relay();
    KSR.x.exit();
  }

  ksr_route_withindlg();

  // A retransmission of a request we are already handling is absorbed here.
  if (!KSR.is_ACK()) {
    if (KSR.tmx.t_precheck_trans() > 0) {
      KSR.tm.t_check_trans();
      KSR.x.exit();
    }
    if (KSR.tm.t_check_trans() === 0) KSR.x.exit();
  }

  // Initial requests: remove preloaded routes, record-route dialogs.
  KSR.hdr.remove("Route");
  if (KSR.is_INVITE() || KSR.is_SUBSCRIBE()) KSR.rr.record_route();

  if (KSR.is_REGISTER()) {
    ksr_route_registrar();
    KSR.x.exit();
  }

  if (KSR.corex.has_ruri_user() < 0) {
    KSR.sl.sl_send_reply(484, "Address Incomplete");
    KSR.x.exit();
  }
  if (DOMAIN_CHECK && !KSR.is_myself_ruri()) {
    KSR.sl.sl_send_reply(403, "Not relaying");
    KSR.x.exit();
  }

  ksr_route_location();
}

// Per-request initial checks (Kamailio's reqinit).
function ksr_route_reqinit() {
  if (KSR.maxfwd.process_maxfwd(10) < 0) {
    KSR.sl.sl_send_reply(483, "Too Many Hops");
    KSR.x.exit();
  }
  if (KSR.is_OPTIONS() && KSR.is_myself_ruri() && KSR.corex.has_ruri_user() < 0) {
    KSR.sl.sl_send_reply(200, "Keepalive");
    KSR.x.exit();
  }
  if (KSR.sanity.sanity_check(1511, 7) < 0) {
    KSR.err("malformed SIP message from " + KSR.kx.get_srcip() + ":" + KSR.kx.get_srcport() + "\n");
    KSR.x.exit();
  }
}

// WebSocket clients are handled as if behind NAT, whatever their address:
// nat_uac_test(64) is true for a message that came over ws or wss.
function ksr_route_natdetect() {
  if (KSR.nathelper.nat_uac_test(64) < 0) return;
  KSR.force_rport();
  if (KSR.is_REGISTER()) {
    KSR.nathelper.fix_nated_register();
  } else if (KSR.nathelper.add_contact_alias() < 0) {
    KSR.err("cannot add an alias to the Contact of " + KSR.kx.get_method() + "\n");
    KSR.sl.sl_send_reply(400, "Bad Contact");
    KSR.x.exit();
  }
}

// Requests within a dialog follow its route set; a Request-URI with an
// alias parameter (a browser's Contact) goes to the connection it names.
function ksr_route_withindlg() {
  if (KSR.siputils.has_totag() < 0) return;
  if (KSR.rr.loose_route() > 0) {
    if (KSR.pv.is_null("$du")) KSR.nathelper.handle_ruri_alias();
    ksr_route_relay();
    KSR.x.exit();
  }
  if (KSR.is_ACK()) {
    // An ACK of a negative reply matches its INVITE's transaction.
    if (KSR.tm.t_check_trans() > 0) ksr_route_relay();
    KSR.x.exit();
  }
  KSR.sl.sl_send_reply(404, "Not here");
  KSR.x.exit();
}

function ksr_route_registrar() {
  if (KSR.registrar.save("location", 0) < 0) KSR.sl.sl_reply_error();
}

// Calls to a registered user go to its binding: for a browser, its
// received address, that is its WebSocket connection.
function ksr_route_location() {
  var rc = KSR.registrar.lookup("location");
  if (rc < 0) {
    KSR.tm.t_newtran();
    if (rc === -1 || rc === -3) {
      KSR.sl.send_reply(404, "Not Found");
    } else if (rc === -2) {
      KSR.sl.send_reply(405, "Method Not Allowed");
    }
    KSR.x.exit();
  }
  ksr_route_relay();
}

function ksr_route_relay() {
  if (KSR.is_INVITE()) KSR.tm.t_on_failure("ksr_failure_manage");
  if (KSR.tm.t_relay() < 0) {
    // Nothing could be sent: for a WebSocket target the connection is gone.
    if (KSR.to_WSX()) KSR.sl.send_reply(480, "Temporarily Unavailable");
    else KSR.sl.sl_reply_error();
  }
  KSR.x.exit();
}

// Responses from a browser get the alias too, so that the caller's requests
// within the dialog (its ACK, BYE) find the browser's connection.
function ksr_reply_route() {
  if (KSR.nathelper.nat_uac_test(64) > 0) KSR.nathelper.add_contact_alias();
}

function ksr_failure_manage() {
  if (KSR.tm.t_is_canceled() > 0) KSR.x.exit();
  // A branch whose connection dropped while it rang: tell the caller the
  // user is not reachable now rather than "service unavailable".
  if (KSR.tm.t_check_status("503") > 0 && KSR.to_WSX()) {
    KSR.tm.t_reply(480, "Temporarily Unavailable");
  }
}
