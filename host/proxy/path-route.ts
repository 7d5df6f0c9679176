/**
 * The Path of a registered binding as the Route of the request sent to it
 * (RFC 3327 §5.3: the registrar's proxy "MUST insert the Path header field
 * values as Route header field values"), kept per branch as Kamailio keeps a
 * path vector per destination-set entry: lookup() gives the R-URI branch its
 * best binding's Path, each appended branch carries its own binding's, and
 * t_relay writes into each outgoing branch the Route of its own Path only.
 *
 * The Route line goes above the first Route header, else below the last Via;
 * a context remembers which Path its edits carry so that the line can be
 * replaced (a second lookup, or a branch with another binding's Path).
 */
import type { MessageContext } from "../core/context.js";
import { ContextSlot } from "../core/context.js";
import { headerIndexes } from "../modules/msgutil.js";

/**
 * The Path vector whose Route line a context's edits carry ("" or absent:
 * none). A branch and the failure route get the request route's edits, so
 * they carry its line too (a branch with another binding's Path replaces it).
 */
const carried = new ContextSlot<string>("tm.pathRoute", { carry: { branch: (p) => p, failure: (p) => p } });

/** The Path vector of ctx's R-URI branch: "" when none. */
export function pathRouteOf(ctx: MessageContext): string {
  return carried.get(ctx) ?? "";
}

/** Replaces the Path Route line of ctx's edits by one for `path` ("" removes it). */
export function setPathRoute(ctx: MessageContext, path: string): void {
  const old = carried.get(ctx);
  if (old !== undefined) {
    removeLine(ctx, `Route: ${old}\r\n`);
    carried.delete(ctx);
  }
  if (path === "") return;
  const line = `Route: ${path}\r\n`;
  const routes = headerIndexes(ctx.msg, "route");
  if (routes.length > 0) {
    const at = routes[0]!;
    const list = ctx.edits.insertedBefore.get(at) ?? [];
    ctx.edits.insertedBefore.set(at, list);
    list.push(line);
  } else {
    const vias = headerIndexes(ctx.msg, "via");
    if (vias.length === 0) {
      ctx.edits.prepended.push(line);
    } else {
      const at = vias[vias.length - 1]!;
      const list = ctx.edits.insertedAfter.get(at) ?? [];
      ctx.edits.insertedAfter.set(at, list);
      list.unshift(line);
    }
  }
  carried.set(ctx, path);
}

/** Removes the first inserted header line equal to `line` (where setPathRoute puts one). */
function removeLine(ctx: MessageContext, line: string): void {
  const lists = [...ctx.edits.insertedBefore.values(), ...ctx.edits.insertedAfter.values(), ctx.edits.prepended];
  for (const list of lists) {
    const i = list.indexOf(line);
    if (i >= 0) {
      list.splice(i, 1);
      return;
    }
  }
}
