/**
 * What the KEMI interpreter itself declares, once: the functions of `KSR.x`
 * (which every Kamailio interpreter module implements on its own, not a
 * module's export table), the route functions a script defines and the
 * server calls, and Kamailio's route-type flags.
 *
 * Plain data with no imports, so that the in-isolate facade
 * (runtime/facade.ts, which builds KSR.x from KSR_X) and the host (the
 * routing, `ksr check`, `ksr api`, the generated runtime/ksr.d.ts, the
 * kemi.* settings of `ksr run` and of the tenants file) read the same
 * table. test/tooling/interpreter-table.test.ts fails when one of them
 * disagrees with it.
 */

/**
 * Kamailio 5.6's route-type bits (src/core/route.h). A native function's
 * export row says in which of these it may be used; a KEMI function itself
 * carries no flags. EVENT_ROUTE includes REQUEST_ROUTE: whatever a request
 * route may call, an event route may too.
 */
export const ROUTE_FLAG = {
  REQUEST_ROUTE: 1 << 0,
  FAILURE_ROUTE: 1 << 1,
  TM_ONREPLY_ROUTE: 1 << 2,
  BRANCH_ROUTE: 1 << 3,
  ONSEND_ROUTE: 1 << 4,
  ERROR_ROUTE: 1 << 5,
  LOCAL_ROUTE: 1 << 6,
  CORE_ONREPLY_ROUTE: 1 << 7,
  BRANCH_FAILURE_ROUTE: 1 << 8,
  ONREPLY_ROUTE: (1 << 2) | (1 << 7),
  ONEVENT_ROUTE: 1 << 9,
  EVENT_ROUTE: (1 << 0) | (1 << 9),
  ANY_ROUTE: 0xffffffff,
} as const;

export type RouteFlagName = keyof typeof ROUTE_FLAG;

/** The kinds of route a script function runs as (MessageContext.routeType and, for events, the entry point). */
export type RouteKind = "request" | "reply" | "failure" | "branch" | "branch_failure" | "onreply" | "onsend" | "event";

/** How the server finds the function of a route kind. */
export type RouteNaming =
  /** Always this name. */
  | { readonly by: "fixed"; readonly name: string }
  /**
   * A Kamailio core setting names it (`kemi.reply_route_callback`): `ksr run
   * --<cliOption>` and a tenant's `kemi: { <tenantKey>: … }` set it, "none"
   * turning it off; `defaultName` "" means off unless set.
   */
  | { readonly by: "setting"; readonly setting: string; readonly defaultName: string; readonly cliOption: string; readonly tenantKey: string }
  /** The script names it per transaction with this KSR function (KSR.tm.t_on_failure("name")). */
  | { readonly by: "script"; readonly call: string };

export interface RouteEntryPoint {
  readonly kind: RouteKind;
  readonly naming: RouteNaming;
  /** The arguments the function is called with (names for the typings; an event route gets the event name). */
  readonly args: readonly string[];
  /** A script without it does not load. */
  readonly required: boolean;
  /** Kamailio's route type while it runs: the flags a native function must carry to be used there. */
  readonly flag: RouteFlagName;
  /** When it runs, for the typings, `ksr api` and the README. */
  readonly doc: string;
}

/**
 * Every route kind, request route first. The kemi.* settings are Kamailio
 * 5.6's core parameters of those names (src/core/cfg.y, kemi.c).
 */
export const ROUTE_ENTRY_POINTS = [
  {
    kind: "request",
    naming: { by: "fixed", name: "ksr_request_route" },
    args: [],
    required: true,
    flag: "REQUEST_ROUTE",
    doc: "every SIP request received",
  },
  {
    kind: "reply",
    naming: {
      by: "setting",
      setting: "kemi.reply_route_callback",
      defaultName: "ksr_reply_route",
      cliOption: "--kemi-reply-route-callback",
      tenantKey: "reply_route_callback",
    },
    args: [],
    required: false,
    flag: "CORE_ONREPLY_ROUTE",
    doc: "every SIP reply received, before it is forwarded by its Via; KSR.x.drop() keeps it from being forwarded",
  },
  {
    kind: "onsend",
    naming: {
      by: "setting",
      setting: "kemi.onsend_route_callback",
      defaultName: "ksr_onsend_route",
      cliOption: "--kemi-onsend-route-callback",
      tenantKey: "onsend_route_callback",
    },
    args: [],
    required: false,
    flag: "ONSEND_ROUTE",
    doc: "each request about to be sent, $snd(ip|port|proto|buf) describing the send; KSR.x.drop() keeps it from being sent",
  },
  {
    kind: "event",
    naming: {
      by: "setting",
      setting: "kemi.event_route_callback",
      defaultName: "",
      cliOption: "--kemi-event-route-callback",
      tenantKey: "event_route_callback",
    },
    args: ["evname"],
    required: false,
    flag: "EVENT_ROUTE",
    doc: 'called with the event name, "core:worker-one-init", once the script is loaded (on a faked request)',
  },
  {
    kind: "branch",
    naming: { by: "script", call: "KSR.tm.t_on_branch" },
    args: [],
    required: false,
    flag: "BRANCH_ROUTE",
    doc: "each branch of a stateful relay, before it is sent",
  },
  {
    kind: "onreply",
    naming: { by: "script", call: "KSR.tm.t_on_reply" },
    args: [],
    required: false,
    flag: "TM_ONREPLY_ROUTE",
    doc: "each reply a stateful relay's branch receives",
  },
  {
    kind: "failure",
    naming: { by: "script", call: "KSR.tm.t_on_failure" },
    args: [],
    required: false,
    flag: "FAILURE_ROUTE",
    doc: "once a stateful relay's branches all failed, on the request, with the winning reply's status in $T_reply_code",
  },
  {
    kind: "branch_failure",
    naming: { by: "script", call: "KSR.tm.t_on_branch_failure" },
    args: [],
    required: false,
    flag: "BRANCH_FAILURE_ROUTE",
    doc: "each branch of a stateful relay that fails (tm:branch-failure)",
  },
] as const satisfies readonly RouteEntryPoint[];

/** The route kinds whose function a kemi.* setting names (reply, onsend, event). */
export type SettingRouteKind = Extract<(typeof ROUTE_ENTRY_POINTS)[number], { readonly naming: { readonly by: "setting" } }>["kind"];

/** An entry point a kemi.* setting names. */
export type SettingRouteEntryPoint = RouteEntryPoint & { readonly kind: SettingRouteKind; readonly naming: Extract<RouteNaming, { by: "setting" }> };

function namedBySetting(route: RouteEntryPoint): route is SettingRouteEntryPoint {
  return route.naming.by === "setting";
}

/** The entry points a kemi.* setting names, with their settings. */
export const SETTING_ROUTES: readonly SettingRouteEntryPoint[] = (ROUTE_ENTRY_POINTS as readonly RouteEntryPoint[]).filter(namedBySetting);

/** The entry point of a route kind. */
export function routeEntryPoint(kind: RouteKind): RouteEntryPoint {
  const entries: readonly RouteEntryPoint[] = ROUTE_ENTRY_POINTS;
  for (let i = 0; i < entries.length; i++) {
    if (entries[i]!.kind === kind) return entries[i]!;
  }
  throw new Error(`no route kind ${kind}`);
}

/** The function every request runs (its naming is fixed). */
export const REQUEST_ROUTE: string = ROUTE_ENTRY_POINTS[0].naming.name;

/** What a KSR.x function is, for the facade (which implements it), `ksr check`, `ksr api` and the typings. */
export interface KsrXFunction {
  readonly name: string;
  /** Its TypeScript signature after the name. */
  readonly signature: string;
  /** Parameter types as `ksr api` shows them (KEMI's str/int). */
  readonly params: readonly ("str" | "int")[];
  /** The last parameter repeats (modf's string arguments). */
  readonly variadic: boolean;
  /** As a KEMI return type: exit and drop return nothing (they end the route). */
  readonly returns: "none" | "int";
  /** Fewest arguments a call needs (`ksr check` reports fewer). */
  readonly minArgs: number;
  readonly doc: readonly string[];
}

/** app_jsdt's KSR.x (app_jsdt_api.c): the functions the interpreter provides itself. */
export const KSR_X: readonly KsrXFunction[] = [
  {
    name: "exit",
    signature: "(): never",
    params: [],
    variadic: false,
    returns: "none",
    minArgs: 0,
    doc: ["Ends the route execution here, like `exit` in kamailio.cfg. Every later KSR call of this execution is refused."],
  },
  {
    name: "drop",
    signature: "(): never",
    params: [],
    variadic: false,
    returns: "none",
    minArgs: 0,
    doc: ["Ends the route execution and drops the message, like `drop` in kamailio.cfg: a reply is not forwarded."],
  },
  {
    name: "modf",
    signature: "(fname: string, ...params: string[]): number",
    params: ["str", "str"],
    variadic: true,
    returns: "int",
    minArgs: 1,
    doc: [
      "Calls a module's native kamailio.cfg function, found by name and parameter count, every",
      "parameter given as a string and converted as its fixup does (`ksr api --native` lists them).",
      "-1 for a KEMI-only name, an unknown name or count, or a function Kamailio's modf refuses",
      "(fixup without free: sl_send_reply, t_reply, save, ...). Prefer the dedicated KSR function.",
    ],
  },
];

/** The bits of a list of route-type names (a native export's flags). */
export function routeFlags(names: readonly RouteFlagName[]): number {
  let flags = 0;
  for (let i = 0; i < names.length; i++) flags |= ROUTE_FLAG[names[i]!];
  return flags >>> 0;
}

/**
 * Whether a function exported with `flags` may be used in a route of `kind`,
 * as Kamailio's cfg parser decides (src/core/sr_module.c,
 * sr_cmd_flags_match): every bit of the route's type must be among the
 * flags, except that an event route takes a function allowed in request
 * routes (or in event routes).
 */
export function routeAllows(flags: number, kind: RouteKind): boolean {
  const type = ROUTE_FLAG[routeEntryPoint(kind).flag] >>> 0;
  if (((flags & type) >>> 0) === type) return true;
  return type === ROUTE_FLAG.EVENT_ROUTE && (flags & ROUTE_FLAG.EVENT_ROUTE) !== 0;
}
