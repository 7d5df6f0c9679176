/**
 * The KEMI export table: every KSR function is declared once, here-shaped,
 * in its module file. The isolate facade, `KSR.x.modf`, `ksr api`,
 * `ksr check` and the generated ksr.d.ts are all derived from these tables.
 */
import type { MessageContext } from "../core/context.js";

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
  /**
   * The native kamailio.cfg name when `KSR.x.modf` may reach this function
   * (module functions only; core actions such as setflag are not reachable,
   * as in Kamailio). Defaults to the KEMI name for module functions.
   */
  readonly nativeName?: string;
  /** One line for `ksr api` and the typings. */
  readonly doc: string;
  /**
   * The implementation. Arguments arrive already converted to the declared
   * types (str → string, int → integer number).
   */
  run(ctx: MessageContext, ...args: any[]): KemiValue;
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
}
