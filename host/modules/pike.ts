/**
 * KSR.pike (Kamailio pike module): flood detection per source address.
 * The counting windows and thresholds are in state/pike-store.ts; its
 * Kamailio modparams sampling_time_unit, reqs_density_per_unit and
 * remove_latency are per tenant (configureTenantPike).
 *
 * Like Kamailio, pike only detects: the script decides what to do (the
 * basic example script bans the address in an htable and exits).
 */
import type { MessageContext } from "../core/context.js";
import type { KemiModule } from "./types.js";
import { configurePike, forgetTenantPikeSettings, PIKE_NEWLY_FLOODING, tenantPike } from "./state/pike-store.js";
import { tenantParam, type ModParamValues } from "./modparams.js";
import { isIP } from "node:net";
import { canonicalIp } from "./nathelper.js";

function check(ctx: MessageContext, address: string): number {
  const result = tenantPike(ctx.tenant.id).check(address, ctx.host.now());
  // Kamailio logs the blocking at its pike_log_level (warning by default).
  if (result === PIKE_NEWLY_FLOODING) ctx.host.log("warn", `PIKE - BLOCKing ip ${address}\n`, ctx);
  return result;
}

const positive = (v: number | string): string | undefined => (typeof v === "number" && v > 0 ? undefined : "must be a positive whole number");

export const pikeModule: KemiModule = {
  name: "pike",
  kamailioModule: "pike",
  modparams: [
    { name: "sampling_time_unit", type: "int", default: 2, doc: "length of a counting window, seconds", check: positive },
    { name: "reqs_density_per_unit", type: "int", default: 30, doc: "requests per window from one address that mark it as flooding", check: positive },
    { name: "remove_latency", type: "int", default: 120, doc: "seconds after which an address not seen is forgotten", check: positive },
  ],
  functions: {
    pike_check_req: {
      params: [],
      returns: "int",
      doc: "Count this request against its source address: 1 not flooding, -1 already flooding, -2 newly detected as flooding.",
      run: (ctx) => check(ctx, canonicalIp(ctx.rcv.srcIp) ?? ctx.rcv.srcIp),
    },
    pike_check_ip: {
      params: ["str"],
      returns: "int",
      doc: "Like pike_check_req for the given IPv4 address: 1 / -1 / -2; -1 with an error for anything else (IPv6 too, as in Kamailio 5.6).",
      run(ctx, ip: string) {
        if (ip.length === 0) return -1;
        // Kamailio 5.6 parses the address with str2ip, which reads IPv4 only:
        // an IPv6 address is "failed to parse" and -1 there, so here too.
        const address = isIP(ip) === 4 ? canonicalIp(ip) : undefined;
        if (address === undefined) {
          ctx.host.log("err", `pike: failed to parse ip address: ${ip}\n`, ctx);
          return -1;
        }
        return check(ctx, address);
      },
    },
  },
  // Native functions (Kamailio pike cmd exports) for KSR.x.modf.
  native: [
    { name: "pike_check_req", params: [], routes: ["REQUEST_ROUTE", "ONREPLY_ROUTE"], kemi: "pike_check_req" },
    { name: "pike_check_ip", params: ["str"], routes: ["REQUEST_ROUTE", "ONREPLY_ROUTE"], kemi: "pike_check_ip" },
  ],
};

/** The tenant's pike modparams into its counting store (set up with the tenant, in every process running it). */
export function configureTenantPike(tenantId: string, values: ModParamValues): void {
  // A tenant that sets none follows the process-wide settings (Kamailio's defaults).
  if (values.pike === undefined) {
    forgetTenantPikeSettings(tenantId);
    return;
  }
  configurePike(
    {
      samplingTimeUnitSec: tenantParam(values, pikeModule, "sampling_time_unit") as number,
      reqsDensityPerUnit: tenantParam(values, pikeModule, "reqs_density_per_unit") as number,
      removeLatencySec: tenantParam(values, pikeModule, "remove_latency") as number,
    },
    { tenantId },
  );
}
