/**
 * The KEMI export table: every KSR function is declared once, here-shaped,
 * in its module file. The isolate facade, `KSR.x.modf`, `ksr api`,
 * `ksr check` and the generated ksr.d.ts are all derived from these tables.
 */
import type { MessageContext } from "../core/context.js";
import type { RouteFlagName } from "../../runtime/interpreter.js";

/** Parameter types as in Kamailio's sr_kemi_t (SR_KEMIP_STR / SR_KEMIP_INT). */
export type KemiParamType = "str" | "int";

/**
 * Declared return kinds (the `ret` column of app_jsdt's api_list):
 * int → JS number (>0 ok, <0 failure, 0 = "stop"), bool → true/false,
 * xval → string | number | null, none → undefined.
 */
export type KemiReturnType = "int" | "bool" | "xval" | "none";

/** A value a KEMI function may hand back to a script. */
export type KemiValue = string | number | boolean | null | undefined;

export interface KemiFunction {
  readonly params: readonly KemiParamType[];
  readonly returns: KemiReturnType;
  /** One line for `ksr api` and the typings. */
  readonly doc: string;
  /**
   * The routes it is meant for, as Kamailio route-type flags. Only where no
   * native function runs it: otherwise its natives' `routes` say it (the
   * union of those linking to it). Neither: no restriction known.
   */
  readonly routes?: readonly RouteFlagName[];
  /**
   * The implementation. Arguments arrive already converted to the declared
   * types (str → string, int → integer number).
   */
  run(ctx: MessageContext, ...args: any[]): KemiValue;
}

/**
 * A native (kamailio.cfg) function of a Kamailio module: one row of its
 * cmd_export_t table, by name and parameter count (a name may have several
 * counts, e.g. sanity_check with 0, 1 or 2). These are what `KSR.x.modf`
 * calls: app_jsdt looks the name up with the count given
 * (find_export_record), so KEMI-only names (`get_ruri`, `sets`) and core
 * actions (`setflag`) are not found and answer -1.
 *
 * A call runs `run`, else the `kemi` function; a `refused` one answers -1.
 */
export interface NativeFunction {
  readonly name: string;
  /** One type per parameter: what Kamailio's fixup turns the string argument into. */
  readonly params: readonly KemiParamType[];
  /**
   * The routes Kamailio 5.6 exports it for (the flags of its cmd_export_t
   * row: ["REQUEST_ROUTE", "FAILURE_ROUTE"], or ["ANY_ROUTE"]). Kamailio's
   * cfg parser refuses it elsewhere; KEMI and KSR.x.modf do not check
   * (they call with no route flags), so here `ksr check` reports a call in
   * another route where it can see it, and the call runs.
   */
  readonly routes: readonly RouteFlagName[];
  /**
   * The module's KSR function that does the same. Unless `refused`, it has
   * exactly these parameters and a modf call runs it.
   */
  readonly kemi?: string;
  /** The Kamailio module exporting it, when not the KEMI module's own (the core's flag functions come from kex). */
  readonly module?: string;
  /**
   * Its string parameters are taken as written (Kamailio fixup_str, a
   * regular expression, a PV name). Otherwise, as most fixups (spve, igp),
   * a parameter is a pv format: "$rU@$rd" is evaluated for the message.
   */
  readonly literal?: true;
  /** Its own implementation, when no KSR function has the native parameters (e.g. sanity_check() with defaults). Answers a native int. */
  readonly run?: (ctx: MessageContext, ...args: any[]) => KemiValue;
  /**
   * Kamailio 5.6's KSR.x.modf refuses this function (-1, "has fixup -
   * cannot be used"): its fixup has no function to free what it built, and
   * modf would leak it per call. Declared so that `ksr check` can say so and
   * name the KSR function to use instead.
   */
  readonly refused?: "fixup without free";
}

/** A pseudo-variable's value: a number for integer PVs, else a string; null when missing. */
export type PvValue = string | number | null;

/** A compiled PV name. */
export interface PvAccessor {
  get(ctx: MessageContext): PvValue;
  /** Integer view for KSR.pv.geti where Kamailio keeps a separate int (e.g. $rp, $rm). */
  geti?(ctx: MessageContext): number | null;
  /** null = unset. Returns false when the value cannot be assigned. Absent = read-only. */
  set?(ctx: MessageContext, value: PvValue): boolean;
}

/** The index of `$(name(inner)[i])`: none, an integer (negative from the end) or `*`. */
export type PvIndex = { readonly kind: "none" } | { readonly kind: "int"; readonly i: number } | { readonly kind: "all" };

/**
 * A pseudo-variable class a module provides (`$ru`, `$sht(t=>k)`,
 * `$T_reply_code`): host/modules/pv.ts finds a name's class here by its
 * name, and `ksr api --pvs` lists them by module.
 */
export interface PvClass {
  /** The class name and its aliases, without "$": ["ru", "ruri"]. */
  readonly names: readonly string[];
  /** "plain": `$name` only; "named": `$name(inner)` only. */
  readonly form: "plain" | "named";
  /** `$(name(inner)[i])` and `[*]` are accepted. */
  readonly indexable?: true;
  /** The inner name may hold PVs with parentheses: `$sht(t=>$var(k))`. */
  readonly nestedInner?: true;
  /** Scripts may assign it (KSR.pv.sets/seti/unset). */
  readonly writable: boolean;
  readonly doc: string;
  /**
   * The accessor of one name of the class (`inner` undefined for the plain
   * form); null when the name is invalid. `lookup` compiles PV names found
   * inside `inner`.
   */
  compile(inner: string | undefined, index: PvIndex, cls: string, lookup: (name: string) => PvAccessor | null): PvAccessor | null;
}

/**
 * A module parameter (Kamailio's modparam): settable per tenant in the
 * tenants file (`modparams: { <module>: { <name>: value } }`) and for
 * `ksr run` (`--modparam <module>.<name>=<value>`); a module reads the
 * tenant's value with intParam/strParam (host/modules/modparams.ts).
 */
export interface ModParam {
  readonly name: string;
  readonly type: "int" | "str";
  /** Kamailio's default. */
  readonly default: number | string;
  readonly doc: string;
  /** Why a value of the right type is refused (out of range ...); undefined when accepted. */
  readonly check?: (value: number | string) => string | undefined;
}

export interface KemiModule {
  /** Module name as seen by scripts: "sl" → KSR.sl. "" for the core (KSR.is_INVITE...). */
  readonly name: string;
  /** Kamailio module that provides it (for docs); "core" for the core. */
  readonly kamailioModule: string;
  readonly functions: Readonly<Record<string, KemiFunction>>;
  /**
   * Functions that exist in Kamailio but cannot work here (e.g. rtpproxy
   * without an RTP proxy). `ksr check` reports them; at run time they log an
   * error naming themselves and return -1.
   */
  readonly unavailable?: Readonly<Record<string, { params: readonly KemiParamType[]; returns: KemiReturnType; reason: string }>>;
  /**
   * Its native (kamailio.cfg) functions as Kamailio 5.6 exports them, for
   * KSR.x.modf. Only functions whose effect this server provides are listed;
   * Kamailio's other native names are unknown here (-1 either way when
   * Kamailio refuses them too).
   */
  readonly native?: readonly NativeFunction[];
  /** The pseudo-variables it provides (host/modules/pv.ts looks names up among every module's). */
  readonly pvs?: readonly PvClass[];
  /** Its parameters (Kamailio modparams), each per tenant. */
  readonly modparams?: readonly ModParam[];
}
