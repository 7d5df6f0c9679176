/**
 * KSR.maxfwd (Kamailio maxfwd module): Max-Forwards processing for a proxy,
 * RFC 3261 §16.6 step 3 (decrement, or add the header when absent) and
 * §16.3 step 2 (a request arriving with 0 must not be forwarded; the script
 * answers 483 Too Many Hops).
 *
 * The decremented value goes into the forwarded message as a header edit;
 * it is also remembered for this message so that a second call (or
 * is_maxfwd_lt) sees the decremented value, as Kamailio stores it.
 */
import type { MessageContext } from "../core/context.js";
import { ContextSlot } from "../core/context.js";
import type { KemiModule } from "./types.js";
import { headerIndexes } from "./msgutil.js";
import { intParam } from "./modparams.js";

/** Value after process_maxfwd changed it, per message. */
const storedValue = new ContextSlot<number>("maxfwd.storedValue");

/**
 * The Max-Forwards value: -1 when absent, -2 when not a number (Kamailio's
 * str2s: up to 5 digits, nothing else), else the value.
 */
function currentValue(ctx: MessageContext): { value: number; index: number } {
  const index = headerIndexes(ctx.msg, "max-forwards")[0];
  if (index === undefined) return { value: -1, index: -1 };
  const stored = storedValue.get(ctx);
  if (stored !== undefined) return { value: stored, index };
  const text = ctx.msg.headers[index]!.value.trim();
  if (!/^\d{0,5}$/.test(text)) {
    ctx.host.log("err", "unable to parse the max forwards number\n", ctx);
    return { value: -2, index };
  }
  return { value: text.length === 0 ? 0 : Number(text) & 0xffff, index };
}

function limitValid(ctx: MessageContext, limit: number): boolean {
  if (Number.isInteger(limit) && limit >= 0 && limit <= 255) return true;
  ctx.host.log("err", `invalid param value: ${limit}\n`, ctx);
  return false;
}

export const maxfwdModule: KemiModule = {
  modparams: [
    {
      name: "max_limit",
      type: "int",
      default: 70,
      doc: "a received Max-Forwards above it is lowered to it by process_maxfwd",
      check: (v) => (typeof v === "number" && v >= 0 && v <= 255 ? undefined : "must be 0 to 255"),
    },
  ],
  name: "maxfwd",
  kamailioModule: "maxfwd",
  functions: {
    process_maxfwd: {
      params: ["int"],
      returns: "int",
      doc: "2 = Max-Forwards added with the limit; 1 = decremented; -1 = value is 0 (reply 483); -2 = error/invalid header.",
      run(ctx, limit: number) {
        if (!limitValid(ctx, limit)) return -1;
        const { value, index } = currentValue(ctx);
        if (value === -1) {
          if (ctx.msg.headers.length === 0) return -2;
          ctx.edits.prepended.push(`Max-Forwards: ${limit}\r\n`);
          return 2;
        }
        if (value === -2) return -2;
        if (value === 0) return -1;
        // max_limit: a received value above it is lowered to it before
        // forwarding, so that a huge value cannot make requests loop for long.
        const maxLimit = intParam(ctx, maxfwdModule, "max_limit");
        const next = (value > maxLimit ? maxLimit + 1 : value) - 1;
        storedValue.set(ctx, next);
        const h = ctx.msg.headers[index]!;
        ctx.edits.replaced.set(index, `${h.name}: ${next}\r\n`);
        return 1;
      },
    },
    is_maxfwd_lt: {
      params: ["int"],
      returns: "int",
      doc: "1 if Max-Forwards is below the limit; -1 if not; -2 if there is no header; -3 if it is invalid.",
      run(ctx, limit: number) {
        if (!limitValid(ctx, limit)) return -1;
        const { value } = currentValue(ctx);
        if (value < 0) return value - 1;
        return value >= limit ? -1 : 1;
      },
    },
  },
  // Native functions (Kamailio maxfwd cmd exports) for KSR.x.modf.
  native: [
    { name: "process_maxfwd", params: ["int"], routes: ["REQUEST_ROUTE"], kemi: "process_maxfwd" },
    { name: "maxfwd_process", params: ["int"], routes: ["REQUEST_ROUTE"], kemi: "process_maxfwd" },
    { name: "mf_process_maxfwd_header", params: ["int"], routes: ["REQUEST_ROUTE"], kemi: "process_maxfwd" },
    { name: "is_maxfwd_lt", params: ["int"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE", "BRANCH_ROUTE"], kemi: "is_maxfwd_lt" },
    { name: "maxfwd_at_least", params: ["int"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE", "BRANCH_ROUTE"], kemi: "is_maxfwd_lt" },
    { name: "mf_lowlimit", params: ["int"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE", "BRANCH_ROUTE"], kemi: "is_maxfwd_lt" },
  ],
};
