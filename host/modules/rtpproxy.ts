/**
 * KSR.rtpproxy (Kamailio rtpproxy module). Relaying media needs an RTP
 * proxy, and this server has none: every function of the module is
 * declared unavailable, so `ksr check` reports a script that calls one and,
 * at run time, the call logs an error naming the function and answers -1
 * instead of pretending the media is anchored. Names and parameter types
 * are those of Kamailio's KEMI exports for the module.
 */
import type { KemiModule, KemiParamType } from "./types.js";

const REASON = "no RTP proxy is configured";

const FUNCTIONS: Readonly<Record<string, readonly KemiParamType[]>> = {
  rtpproxy_manage0: [],
  rtpproxy_manage: ["str"],
  rtpproxy_manage_ip: ["str", "str"],
  set_rtpproxy_set: ["int"],
  rtpproxy_destroy0: [],
  rtpproxy_destroy: ["str"],
  start_recording: [],
  rtpproxy_offer0: [],
  rtpproxy_offer: ["str"],
  rtpproxy_offer_ip: ["str", "str"],
  rtpproxy_answer0: [],
  rtpproxy_answer: ["str"],
  rtpproxy_answer_ip: ["str", "str"],
  rtpproxy_stream2uac: ["str", "int"],
  rtpproxy_stream2uas: ["str", "int"],
  rtpproxy_stop_stream2uac: [],
  rtpproxy_stop_stream2uas: [],
};

export const rtpproxyModule: KemiModule = {
  name: "rtpproxy",
  kamailioModule: "rtpproxy",
  functions: {},
  unavailable: Object.fromEntries(
    Object.entries(FUNCTIONS).map(([name, params]) => [name, { params, returns: "int" as const, reason: REASON }]),
  ),
  // Native functions (Kamailio rtpproxy cmd exports) for KSR.x.modf: they reach the unavailable functions above.
  native: [
    { name: "unforce_rtp_proxy", params: [], routes: ["ANY_ROUTE"], kemi: "rtpproxy_destroy0" },
    { name: "unforce_rtp_proxy", params: ["str"], routes: ["ANY_ROUTE"], kemi: "rtpproxy_destroy" },
    { name: "rtpproxy_destroy", params: [], routes: ["ANY_ROUTE"], kemi: "rtpproxy_destroy0" },
    { name: "rtpproxy_destroy", params: ["str"], routes: ["ANY_ROUTE"], kemi: "rtpproxy_destroy" },
    { name: "start_recording", params: [], routes: ["ANY_ROUTE"], kemi: "start_recording" },
    { name: "rtpproxy_offer", params: [], routes: ["ANY_ROUTE"], kemi: "rtpproxy_offer0" },
    { name: "rtpproxy_offer", params: ["str"], routes: ["ANY_ROUTE"], kemi: "rtpproxy_offer" },
    { name: "rtpproxy_offer", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "rtpproxy_offer_ip" },
    { name: "rtpproxy_answer", params: [], routes: ["ANY_ROUTE"], kemi: "rtpproxy_answer0" },
    { name: "rtpproxy_answer", params: ["str"], routes: ["ANY_ROUTE"], kemi: "rtpproxy_answer" },
    { name: "rtpproxy_answer", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "rtpproxy_answer_ip" },
    { name: "rtpproxy_manage", params: [], routes: ["ANY_ROUTE"], kemi: "rtpproxy_manage0" },
    { name: "rtpproxy_manage", params: ["str"], routes: ["ANY_ROUTE"], kemi: "rtpproxy_manage" },
    { name: "rtpproxy_manage", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "rtpproxy_manage_ip" },
    { name: "rtpproxy_stop_stream2uac", params: [], routes: ["ANY_ROUTE"], kemi: "rtpproxy_stop_stream2uac" },
    { name: "rtpproxy_stop_stream2uas", params: [], routes: ["ANY_ROUTE"], kemi: "rtpproxy_stop_stream2uas" },
    { name: "set_rtp_proxy_set", params: ["str"], routes: ["ANY_ROUTE"], kemi: "set_rtpproxy_set", refused: "fixup without free" },
    { name: "rtpproxy_stream2uac", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "rtpproxy_stream2uac", refused: "fixup without free" },
    { name: "rtpproxy_stream2uas", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "rtpproxy_stream2uas", refused: "fixup without free" },
  ],
};
