/**
 * Kamailio's onsend route for KEMI scripts (core/onsend.c run_onsend): the
 * script's `ksr_onsend_route` (or the name the tenant's
 * kemi.onsend_route_callback gives) runs just before a request leaves —
 * a stateless forward, and each branch of a stateful relay — once the
 * request is built and its destination address known. `$snd(ip)`,
 * `$snd(port)`, `$snd(proto)`, `$snd(af)`, `$snd(buf)`, `$snd(len)` and
 * `$snd(sproto)` show that send; `KSR.x.drop()` (or `KSR.set_drop()`) there
 * stops it. Replies are not passed through it (Kamailio's
 * onsend_route_reply is off by default).
 *
 * The route runs nested inside the KSR call that sends (forward, t_relay),
 * on a context of its own: the request as received with the sending
 * route's flags, read-only as far as the message goes (Kamailio's buffer is
 * already built, changes to the message do not reach it).
 */
import { MessageContext, type ListenSocket, type TransportProto } from "./context.js";
import type { RouteOutcome } from "../../sandbox/types.js";

/** The send an onsend route looks at ($snd). */
export interface OutgoingSend {
  readonly proto: TransportProto;
  /** Destination IP address (a literal). */
  readonly ip: string;
  readonly port: number;
  /** The message as it will be written. */
  readonly buf: string;
  /** The local socket it leaves by. */
  readonly from: ListenSocket;
}

/** Where an onsend route runs: the script of the route that sends. */
export interface OnsendRoutes {
  hasRoute(name: string): boolean;
  /** Runs a route nested in the current KSR call (synchronous). */
  runNested(name: string, ctx: MessageContext): RouteOutcome;
}

/**
 * Runs the onsend route (when the script defines it) for a request `from`'s
 * route is about to send. Returns false when the route dropped the send.
 * A failing onsend route is logged and the request is sent, as Kamailio
 * sends when its onsend route errs without dropping.
 */
export function runOnsendRoute(from: MessageContext, send: OutgoingSend, routes: OnsendRoutes | undefined): boolean {
  if (routes === undefined) return true;
  const name = from.tenant.kemiCallbacks.onsend;
  if (!routes.hasRoute(name)) return true;
  const octx = new MessageContext(from.msg, from.rcv, "onsend", from.tenant, from.host);
  octx.flags = from.flags;
  octx.newRequestUri = from.newRequestUri;
  octx.dstUri = from.dstUri;
  octx.outgoing = send;
  const outcome = routes.runNested(name, octx);
  if (outcome.status === "error") {
    from.host.log("err", `${name}: ${outcome.kind}: ${outcome.message}${outcome.location ? ` (at ${outcome.location})` : ""}\n`, from);
  }
  if (!octx.dropped) return true;
  from.host.log("info", `request to ${send.proto}:${send.ip}:${send.port} dropped (onsend route)\n`, from);
  return false;
}
