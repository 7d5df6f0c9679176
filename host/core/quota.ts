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
}

export const DEFAULT_TENANT_QUOTAS: TenantQuotas = Object.freeze({
  varBytes: 1024 * 1024,
  shvBytes: 4 * 1024 * 1024,
  avpBytes: 256 * 1024,
  // The largest SIP message: more header text could never be sent.
  editBytes: 65535,
  aors: 100_000,
});

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

const editBytesOf = new WeakMap<MessageContext, number>();

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
