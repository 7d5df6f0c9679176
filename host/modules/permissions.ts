/**
 * KSR.permissions (Kamailio permissions, address table part): is the
 * source of a request, or a given address, in a group of trusted networks?
 * The address table of the message's tenant (ctx.host.data.addresses) holds
 * group, network (CIDR) and port (0 = any), managed with `ksr address`.
 *
 * Not provided: the trusted table (allow_trusted), the allow/deny rule
 * files (allow_routing, allow_register, allow_uri), the tag AVP.
 */
import type { MessageContext } from "../core/context.js";
import type { KemiModule } from "./types.js";

function addressesOf(ctx: MessageContext) {
  const data = ctx.host.data;
  if (data === undefined) ctx.host.log("err", "permissions: this host has no address table\n", ctx);
  return data?.addresses;
}

/** allow_source_address: the message's source IP and port against an address group. */
function allowSourceAddress(ctx: MessageContext, group: number): number {
  const addresses = addressesOf(ctx);
  if (addresses === undefined) return -1;
  return addresses.match(ctx.tenant.id, group, ctx.rcv.srcIp, ctx.rcv.srcPort) === undefined ? -1 : 1;
}

export const permissionsModule: KemiModule = {
  name: "permissions",
  kamailioModule: "permissions",
  functions: {
    allow_source_address: {
      params: ["int"],
      returns: "int",
      doc: "1 if the source IP and port of the message match an entry of the address group (port 0 = any), -1 otherwise.",
      run: (ctx, group: number) => allowSourceAddress(ctx, group),
    },
    allow_address: {
      params: ["int", "str", "int"],
      returns: "int",
      doc: "1 if the IP address and port match an entry of the address group (port 0 = any), -1 otherwise.",
      run(ctx, group: number, ip: string, port: number) {
        const addresses = addressesOf(ctx);
        if (addresses === undefined) return -1;
        return addresses.match(ctx.tenant.id, group, ip, port) === undefined ? -1 : 1;
      },
    },
    allow_source_address_group: {
      params: [],
      returns: "int",
      doc: "The group of the first address entry matching the source IP and port, -1 when none.",
      run(ctx) {
        const addresses = addressesOf(ctx);
        if (addresses === undefined) return -1;
        return addresses.matchAnyGroup(ctx.tenant.id, ctx.rcv.srcIp, ctx.rcv.srcPort)?.group ?? -1;
      },
    },
    allow_address_group: {
      params: ["str", "int"],
      returns: "int",
      doc: "The group of the first address entry matching the IP address and port, -1 when none.",
      run(ctx, ip: string, port: number) {
        const addresses = addressesOf(ctx);
        if (addresses === undefined) return -1;
        return addresses.matchAnyGroup(ctx.tenant.id, ip, port)?.group ?? -1;
      },
    },
  },
  // Native functions (Kamailio permissions cmd exports) for KSR.x.modf.
  native: [
    // Without a parameter Kamailio checks group 1.
    { name: "allow_source_address", params: [], routes: ["ANY_ROUTE"], run: (ctx) => allowSourceAddress(ctx, 1) },
    { name: "allow_source_address", params: ["int"], routes: ["ANY_ROUTE"], kemi: "allow_source_address" },
    { name: "allow_source_address_group", params: [], routes: ["ANY_ROUTE"], kemi: "allow_source_address_group" },
    { name: "allow_address_group", params: ["str", "int"], routes: ["ANY_ROUTE"], kemi: "allow_address_group" },
    { name: "allow_address", params: ["str", "str", "str"], routes: ["ANY_ROUTE"], kemi: "allow_address", refused: "fixup without free" },
  ],
};
