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
};
