/**
 * Per-tenant quotas on host memory a script can fill through ordinary KSR
 * calls (values handed to the host live outside the isolate's heap limit):
 * $var and $shv values a tenant keeps, $avp values of one transaction, and
 * header text added to one message or its local replies. A call that would
 * pass a quota fails as Kamailio fails a call it cannot carry out (-1 /
 * false) with one log line naming the tenant and the quota; nothing is
 * stored. Set per tenant in the tenants file (`limits:`); the defaults bound
 * what a hostile tenant can hold without bothering ordinary scripts.
 */
import type { MessageContext, TenantState } from "./context.js";
import { ContextSlot } from "./context.js";

export interface TenantQuotas {
  /** Bytes of $var names and values a tenant keeps (per process, as Kamailio's $var). */
  readonly varBytes: number;
  /** Bytes of $shv names and values a tenant keeps. */
  readonly shvBytes: number;
  /** Bytes of $avp names and values per transaction (or message). */
  readonly avpBytes: number;
  /** Bytes of header text a script adds to one message and its local replies (hdr.append & co). */
  readonly editBytes: number;
  /** Address-of-records the tenant may have registered at once (KSR.registrar.save of a new AoR fails past it). */
  readonly aors: number;
  /** Log lines a second from the tenant (its scripts' and its modules'); past it they are counted and suppressed. 0: no limit. */
  readonly logLinesPerSecond: number;
  /**
   * Transactions of the tenant's stateful proxy still waiting for their
   * final response, server and client ones (a relayed request holds one
   * plus one per branch): its transaction table's bound, the finished ones
   * kept for retransmissions being bounded at 8 times that. A request past
   * it is not handled (t_relay/t_newtran fail).
   */
  readonly transactions: number;
}

export const DEFAULT_TENANT_QUOTAS: TenantQuotas = Object.freeze({
  varBytes: 1024 * 1024,
  shvBytes: 4 * 1024 * 1024,
  avpBytes: 256 * 1024,
  // The largest SIP message: more header text could never be sent.
  editBytes: 65535,
  aors: 100_000,
  logLinesPerSecond: 1000,
  transactions: 65_536,
});

/** The operator's own script (`ksr run script.js`): the defaults, but its log is never cut. */
export const SINGLE_SCRIPT_QUOTAS: TenantQuotas = Object.freeze({ ...DEFAULT_TENANT_QUOTAS, logLinesPerSecond: 0 });

/**
 * A tenant's log lines held to logLinesPerSecond: each second's lines past
 * the quota are dropped and counted, and the first line of a later second
 * is preceded by one saying how many were suppressed.
 */
export class LogRateLimit {
  private windowStartMs = -Infinity;
  private lines = 0;
  private suppressed = 0;

  constructor(private readonly perSecond: number) {}

  /**
   * Whether a line at `nowMs` may be written; `report` receives the
   * suppression notice to write first, when there is one.
   */
  admit(nowMs: number, report: (notice: string) => void): boolean {
    if (this.perSecond <= 0) return true;
    if (nowMs - this.windowStartMs >= 1000) {
      if (this.suppressed > 0) report(`suppressed ${this.suppressed} log line(s) over the tenant's quota of ${this.perSecond} a second`);
      this.windowStartMs = nowMs;
      this.lines = 0;
      this.suppressed = 0;
    }
    if (this.lines >= this.perSecond) {
      this.suppressed++;
      return false;
    }
    this.lines++;
    return true;
  }
}

/** What a stored value costs: its name and its text (numbers as 8 bytes). */
export function valueBytes(name: string, value: string | number): number {
  return name.length + (typeof value === "number" ? 8 : value.length);
}

/** Refuse with one log line naming the tenant and the quota. */
export function overQuota(ctx: MessageContext, quota: keyof TenantQuotas, what: string): false {
  const unit = quota === "aors" ? "" : " bytes";
  ctx.host.log("err", `tenant ${ctx.tenant.id}: ${what} refused: quota ${quota} (${ctx.tenant.quotas[quota]}${unit}) reached\n`, ctx);
  return false;
}

/** Bytes of $var / $shv a tenant holds now. */
export interface TenantUsage {
  varBytes: number;
  shvBytes: number;
}

export function usageOf(tenant: TenantState): TenantUsage {
  return tenant.usage;
}

// Made at first use: context.ts imports this file, so a slot made while it loads would meet ContextSlot undefined.
let editBytesSlot: ContextSlot<number> | undefined;
const editBytesOf = {
  get: (ctx: MessageContext): number | undefined => (editBytesSlot ??= new ContextSlot<number>("quota.editBytes")).get(ctx),
  set: (ctx: MessageContext, bytes: number): void => void (editBytesSlot ??= new ContextSlot<number>("quota.editBytes")).set(ctx, bytes),
};

/**
 * Count `bytes` of header text a script adds to the message or its replies
 * against the tenant's editBytes quota; false (and a log line) when it would
 * pass it, the text then not to be added.
 */
export function chargeEdit(ctx: MessageContext, bytes: number, what: string): boolean {
  const used = editBytesOf.get(ctx) ?? 0;
  if (used + bytes > ctx.tenant.quotas.editBytes) return overQuota(ctx, "editBytes", what);
  editBytesOf.set(ctx, used + bytes);
  return true;
}
