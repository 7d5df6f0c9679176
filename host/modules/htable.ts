/**
 * KSR.htable (Kamailio htable module) and the $sht family of
 * pseudo-variables: named key/value tables shared by all messages of a
 * tenant, with expiry. Storage, expiry, bounds and the tenant namespaces
 * are in state/htable-store.ts; this file is the KEMI surface with
 * Kamailio 5.6's return codes.
 *
 * Differences from Kamailio, all due to tables not being declared in a
 * kamailio.cfg here (see configureHtables):
 *  - any non-empty table name is a table; functions never fail with
 *    "no such htable" (except for the empty name);
 *  - per-item expiry works in every table, not only in autoexpire ones.
 *
 * Locks (sht_lock/sht_unlock) are Kamailio's re-entrant per-process locks.
 * All executions of a tenant run one at a time in one runner, which is
 * Kamailio's single-process case: a lock never blocks, locking again nests,
 * and unlocking releases one level. The bookkeeping is kept per key (not per
 * hash slot) so that a lock left held by an execution, or an unlock without
 * a lock, is reported in the log.
 *
 * Iterators (sht_iterator_*) walk the keys present when they started;
 * items removed meanwhile are skipped. Kamailio holds the table slot locked
 * while iterating instead, which cannot deadlock here.
 *
 * With `ksr run --workers N` (or `workers:` in a tenants file) the items
 * live in a SQLite file the workers share (state/shared-sqlite.ts): every
 * worker reads and writes the same tables, sht_inc/sht_dec are atomic
 * across them; locks and iterators stay per worker.
 */
import type { MessageContext } from "../core/context.js";
import { safeRegexTest } from "../core/safe-regex.js";
import type { KemiModule, KemiValue, PvClass } from "./types.js";
import { registerPvClasses, type PvAccessor } from "./pv.js";
import { formatPvParts, parsePvFormat, type LookupPv, type PvFormatPart } from "./pv-format.js";
import { xvalNull, type NullMode } from "./msgutil.js";
import {
  describeWriteFailure,
  MAX_ITERATOR_NAME_LENGTH,
  MAX_ITERATORS,
  tenantHtables,
  type HtableItem,
  type HtableValue,
  type HtableStore,
} from "./state/htable-store.js";

/** What sht_inc/sht_dec answer when there is no integer to change (Kamailio's KSR_HT_KEMI_NOINTVAL). */
export const HT_NO_INT_VALUE = -255;

/** Flags of Kamailio's regcomp(REG_EXTENDED | REG_ICASE | REG_NEWLINE) in JavaScript terms. */
const REGEX_FLAGS = "im";

/**
 * Total time one bulk regex operation may spend matching. Each match is
 * already bounded by safe-regex; this bounds a table of many items.
 */
const REGEX_SCAN_BUDGET_MS = 200;

function store(ctx: MessageContext): HtableStore {
  return tenantHtables(ctx.tenant.id);
}

function err(ctx: MessageContext, text: string): void {
  ctx.host.log("err", `htable: ${text}\n`, ctx);
}

/** Kamailio refuses an empty table name ("No such htable"). */
function tableOk(ctx: MessageContext, table: string): boolean {
  if (table.length > 0) return true;
  err(ctx, "no such htable: empty name");
  return false;
}

function getValue(ctx: MessageContext, table: string, key: string, mode: NullMode): KemiValue {
  if (!tableOk(ctx, table)) return xvalNull(mode);
  const item = store(ctx).get(table, key, ctx.host.now());
  if (item !== undefined) return item.value;
  const initVal = store(ctx).definition(table).initVal;
  return initVal !== undefined ? initVal : xvalNull(mode);
}

function setValue(ctx: MessageContext, table: string, key: string, value: HtableValue, expireSec: number): number {
  if (!tableOk(ctx, table)) return -1;
  const failure = store(ctx).set(table, key, value, expireSec, ctx.host.now());
  if (failure !== undefined) {
    err(ctx, `cannot set sht: ${table} key: ${key}: ${describeWriteFailure(failure)}`);
    return -1;
  }
  return 1;
}

function addValue(ctx: MessageContext, table: string, key: string, delta: number): number {
  if (table.length === 0) return HT_NO_INT_VALUE;
  return store(ctx).add(table, key, delta, ctx.host.now()) ?? HT_NO_INT_VALUE;
}

// ------------------------------------------------------------ matching

/** Operators of sht_match_name / sht_match_str_value. */
const MATCH_OPS = new Set(["eq", "ne", "re", "sw"]);
/** Operators of sht_rm_name / sht_rm_value. */
const REMOVE_OPS = new Set(["re", "sw", "ew", "in"]);

type Which = "name" | "value";

/**
 * The text an item is matched on: its key, or its value when that is a
 * string (Kamailio skips integer values in value matches).
 */
function subjectOf(which: Which, key: string, item: HtableItem): string | undefined {
  if (which === "name") return key;
  return typeof item.value === "string" ? item.value : undefined;
}

function plainMatch(op: string, subject: string, operand: string): boolean {
  switch (op) {
    case "eq":
      return subject === operand;
    case "ne":
      return subject !== operand;
    case "sw":
      return subject.startsWith(operand);
    case "ew":
      return subject.endsWith(operand);
    case "in":
      return subject.includes(operand);
    default:
      return false;
  }
}

/** A script-supplied regex matcher over many subjects, bounded in total time. */
class RegexScan {
  private readonly deadline = performance.now() + REGEX_SCAN_BUDGET_MS;
  error: string | undefined;

  constructor(private readonly pattern: string) {}

  /** Whether subject matches; false with `error` set when the scan has to stop. */
  test(subject: string): boolean {
    if (this.error !== undefined) return false;
    if (performance.now() > this.deadline) {
      this.error = `matching '${this.pattern}' took longer than ${REGEX_SCAN_BUDGET_MS} ms; stopped`;
      return false;
    }
    const r = safeRegexTest(this.pattern, REGEX_FLAGS, subject);
    if (!r.ok) {
      this.error = r.error;
      return false;
    }
    return r.matched;
  }
}

/**
 * Remove the items whose key (or string value) matches. 1 ok, -1 on a bad
 * or too slow regular expression (items matched before it stopped are
 * gone, as Kamailio removes slot by slot).
 */
function removeMatching(ctx: MessageContext, table: string, which: Which, op: string, operand: string): number {
  if (operand.length === 0) return -1;
  const tables = store(ctx);
  const scan = op === "re" ? new RegexScan(operand) : undefined;
  const doomed: string[] = [];
  for (const [key, item] of tables.entries(table, ctx.host.now())) {
    const subject = subjectOf(which, key, item);
    if (subject === undefined) continue;
    const hit = scan !== undefined ? scan.test(subject) : plainMatch(op, subject, operand);
    if (scan?.error !== undefined) break;
    if (hit) doomed.push(key);
  }
  for (const key of doomed) tables.delete(table, key);
  if (scan?.error !== undefined) {
    err(ctx, `removing from ${table}: ${scan.error}`);
    return -1;
  }
  return 1;
}

function matchAny(ctx: MessageContext, table: string, which: Which, op: string, operand: string): number {
  if (!MATCH_OPS.has(op)) {
    ctx.host.log("warn", `htable: unsupported match operator: ${op}\n`, ctx);
    return -1;
  }
  if (operand.length === 0) return -1;
  const scan = op === "re" ? new RegexScan(operand) : undefined;
  for (const [key, item] of store(ctx).entries(table, ctx.host.now())) {
    const subject = subjectOf(which, key, item);
    if (subject === undefined) continue;
    const hit = scan !== undefined ? scan.test(subject) : plainMatch(op, subject, operand);
    if (scan?.error !== undefined) {
      err(ctx, `matching in ${table}: ${scan.error}`);
      return -1;
    }
    if (hit) return 1;
  }
  return -1;
}

// ------------------------------------------------------------- locks

const lockKey = (table: string, key: string): string => `${table}\u0000${key}`;

function lock(ctx: MessageContext, table: string, key: string): number {
  if (!tableOk(ctx, table)) return -1;
  const locks = store(ctx).locks;
  const k = lockKey(table, key);
  const held = locks.get(k);
  if (held === undefined) {
    locks.set(k, { depth: 1, holder: ctx.id });
    return 1;
  }
  if (held.holder !== ctx.id) {
    ctx.host.log(
      "warn",
      `htable: lock ${table}=>${key} is still held by an earlier execution that did not unlock it; locking again nests\n`,
      ctx,
    );
  }
  held.depth++;
  return 1;
}

function unlock(ctx: MessageContext, table: string, key: string): number {
  if (!tableOk(ctx, table)) return -1;
  const locks = store(ctx).locks;
  const k = lockKey(table, key);
  const held = locks.get(k);
  if (held === undefined) {
    // Kamailio releases the (already free) lock without a word; say so here.
    ctx.host.log("warn", `htable: unlock of ${table}=>${key}, which is not locked\n`, ctx);
    return 1;
  }
  if (--held.depth === 0) locks.delete(k);
  return 1;
}

// ---------------------------------------------------------- iterators

function iteratorCurrent(ctx: MessageContext, name: string): { table: string; key: string; item: HtableItem } | undefined {
  const it = store(ctx).iterators.get(name);
  if (it === undefined || it.position < 0 || it.position >= it.keys.length) return undefined;
  const key = it.keys[it.position]!;
  const item = store(ctx).get(it.table, key, ctx.host.now());
  return item === undefined ? undefined : { table: it.table, key, item };
}

/** Move to the next key still present; false at the end. */
function iteratorAdvance(ctx: MessageContext, name: string): boolean {
  const it = store(ctx).iterators.get(name)!;
  const now = ctx.host.now();
  while (++it.position < it.keys.length) {
    if (store(ctx).get(it.table, it.keys[it.position]!, now) !== undefined) return true;
  }
  return false;
}

function iteratorStart(ctx: MessageContext, name: string, table: string): number {
  if (name.length === 0 || table.length === 0) {
    err(ctx, "invalid parameters");
    return -1;
  }
  const iterators = store(ctx).iterators;
  if (!iterators.has(name)) {
    if (iterators.size >= MAX_ITERATORS) {
      err(ctx, `no iterator available - max number is ${MAX_ITERATORS}`);
      return -1;
    }
    if (name.length > MAX_ITERATOR_NAME_LENGTH) {
      err(ctx, `iterator name is too big [${name}] (max ${MAX_ITERATOR_NAME_LENGTH})`);
      return -1;
    }
  }
  const keys = [...store(ctx).entries(table, ctx.host.now())].map(([key]) => key);
  iterators.set(name, { table, keys, position: -1 });
  return 1;
}

/** The iterator positioned on an item, or undefined after logging why not. */
function iteratorInUse(ctx: MessageContext, name: string): { table: string; key: string; item: HtableItem } | undefined {
  if (name.length === 0) {
    err(ctx, "invalid parameters");
    return undefined;
  }
  if (!store(ctx).iterators.has(name)) {
    err(ctx, `iterator not found [${name}]`);
    return undefined;
  }
  const current = iteratorCurrent(ctx, name);
  if (current === undefined) err(ctx, `iterator not used [${name}]`);
  return current;
}

// ------------------------------------------------------------- the $sht PVs

type KeyPart = PvFormatPart;

/** "table=>key" as Kamailio's pv_parse_ht_name reads it. */
function parseTableKey(inner: string, lookupPv: LookupPv): { table: string; key: KeyPart[] } | null {
  const m = /^[ \t\r\n]*([^= \t\r\n]+)[ \t\r\n]*=>(.+)$/s.exec(inner);
  if (m === null) return null;
  const key = parsePvFormat(m[2]!, lookupPv);
  return key === null ? null : { table: m[1]!, key };
}

/**
 * Accessors for $sht(t=>k) (get/set/unset), $shtex(t=>k) (seconds until
 * the item expires; set to change it), $shtinc(t=>k) / $shtdec(t=>k)
 * (read = increment/decrement, giving the new value or null), and
 * $shtitkey(i) / $shtitval(i) (the current item of iterator i). Null for
 * another class or a malformed name. `lookupPv` resolves pseudo-variables
 * embedded in the key.
 */
export function htablePvAccessor(cls: string, inner: string, lookupPv: LookupPv): PvAccessor | null {
  if (cls === "shtitkey" || cls === "shtitval") {
    const wantKey = cls === "shtitkey";
    return {
      get(ctx) {
        const current = iteratorCurrent(ctx, inner);
        if (current === undefined) return null;
        return wantKey ? current.key : current.item.value;
      },
    };
  }
  if (cls !== "sht" && cls !== "shtex" && cls !== "shtinc" && cls !== "shtdec") return null;
  const name = parseTableKey(inner, lookupPv);
  if (name === null) return null;
  const { table, key } = name;
  switch (cls) {
    case "sht":
      return {
        get(ctx) {
          const item = store(ctx).get(table, formatPvParts(ctx, key), ctx.host.now());
          if (item !== undefined) return item.value;
          return store(ctx).definition(table).initVal ?? null;
        },
        set(ctx, value) {
          const k = formatPvParts(ctx, key);
          if (value === null) {
            store(ctx).delete(table, k);
            return true;
          }
          return setValue(ctx, table, k, value, 0) === 1;
        },
      };
    case "shtex":
      return {
        get(ctx) {
          const now = ctx.host.now();
          const item = store(ctx).get(table, formatPvParts(ctx, key), now);
          if (item === undefined || item.expiresAt === 0) return 0;
          return Math.ceil((item.expiresAt - now) / 1000);
        },
        set(ctx, value) {
          if (typeof value === "string") return false;
          store(ctx).setExpire(table, formatPvParts(ctx, key), value ?? 0, ctx.host.now());
          return true;
        },
      };
    default: {
      const delta = cls === "shtinc" ? 1 : -1;
      return {
        get(ctx) {
          const v = store(ctx).add(table, formatPvParts(ctx, key), delta, ctx.host.now());
          return v ?? null;
        },
      };
    }
  }
}

// ------------------------------------------------------------- the module

/** htable's pseudo-variables, each compiled by htablePvAccessor. */
const HTABLE_PVS: readonly PvClass[] = (
  [
    ["sht", true, true, "item of a table: $sht(table=>key); assigning $null deletes it"],
    ["shtex", true, true, "expiry of an item, seconds from now"],
    ["shtinc", true, false, "increments an item and gives the new value"],
    ["shtdec", true, false, "decrements an item and gives the new value"],
    ["shtitkey", false, false, "key of an iterator's current item: $shtitkey(iterator)"],
    ["shtitval", false, false, "value of an iterator's current item"],
  ] as const
).map(([name, nested, writable, doc]) => ({
  names: [name],
  form: "named" as const,
  ...(nested ? { nestedInner: true as const } : {}),
  writable,
  doc,
  compile: (inner: string | undefined, _index: unknown, cls: string, lookup: LookupPv) => htablePvAccessor(cls, inner!, lookup),
}));

export const htableModule: KemiModule = {
  pvs: HTABLE_PVS,
  name: "htable",
  kamailioModule: "htable",
  functions: {
    sht_get: {
      params: ["str", "str"],
      returns: "xval",
      doc: "Item value: number for integer items, string otherwise; null when missing (the table's initVal if it has one).",
      run: (ctx, table: string, key: string) => getValue(ctx, table, key, "null"),
    },
    sht_gete: {
      params: ["str", "str"],
      returns: "xval",
      doc: 'Like sht_get, but "" when missing.',
      run: (ctx, table: string, key: string) => getValue(ctx, table, key, "empty"),
    },
    sht_getw: {
      params: ["str", "str"],
      returns: "xval",
      doc: 'Like sht_get, but "<null>" when missing.',
      run: (ctx, table: string, key: string) => getValue(ctx, table, key, "print"),
    },
    sht_sets: {
      params: ["str", "str", "str"],
      returns: "int",
      doc: "Store a string item. 1 ok; -1 when the tenant's htable memory bound is reached.",
      run: (ctx, table: string, key: string, value: string) => setValue(ctx, table, key, value, 0),
    },
    sht_seti: {
      params: ["str", "str", "int"],
      returns: "int",
      doc: "Store an integer item. 1 ok; -1 when the tenant's htable memory bound is reached.",
      run: (ctx, table: string, key: string, value: number) => setValue(ctx, table, key, value, 0),
    },
    sht_setxs: {
      params: ["str", "str", "str", "int"],
      returns: "int",
      doc: "Store a string item that expires after the given seconds (0: the table's autoexpire). 1 ok, -1 error.",
      run: (ctx, table: string, key: string, value: string, expire: number) => setValue(ctx, table, key, value, expire),
    },
    sht_setxi: {
      params: ["str", "str", "int", "int"],
      returns: "int",
      doc: "Store an integer item that expires after the given seconds (0: the table's autoexpire). 1 ok, -1 error.",
      run: (ctx, table: string, key: string, value: number, expire: number) => setValue(ctx, table, key, value, expire),
    },
    sht_setex: {
      params: ["str", "str", "int"],
      returns: "int",
      doc: "Make an existing item expire after the given seconds (0: never). 1, also when the item is missing.",
      run(ctx, table: string, key: string, expire: number) {
        if (!tableOk(ctx, table)) return -1;
        store(ctx).setExpire(table, key, expire, ctx.host.now());
        return 1;
      },
    },
    sht_inc: {
      params: ["str", "str"],
      returns: "int",
      doc: "Add 1 to an integer item; the new value, or -255 when the item is missing (and the table has no initVal) or a string.",
      run: (ctx, table: string, key: string) => addValue(ctx, table, key, 1),
    },
    sht_dec: {
      params: ["str", "str"],
      returns: "int",
      doc: "Subtract 1 from an integer item; the new value, or -255 when the item is missing (and no initVal) or a string.",
      run: (ctx, table: string, key: string) => addValue(ctx, table, key, -1),
    },
    sht_rm: {
      params: ["str", "str"],
      returns: "int",
      doc: "Remove an item. 1, also when it was missing.",
      run(ctx, table: string, key: string) {
        if (!tableOk(ctx, table)) return -1;
        store(ctx).delete(table, key);
        return 1;
      },
    },
    sht_rm_name_re: {
      params: ["str", "str"],
      returns: "int",
      doc: "Remove the items whose name matches the regular expression (case-insensitive). 1 ok; -1 bad or too slow expression.",
      run: (ctx, table: string, re: string) => (table.length === 0 ? 1 : removeMatching(ctx, table, "name", "re", re)),
    },
    sht_rm_value_re: {
      params: ["str", "str"],
      returns: "int",
      doc: "Remove the items whose string value matches the regular expression (case-insensitive). 1 ok; -1 bad or too slow expression.",
      run: (ctx, table: string, re: string) => (table.length === 0 ? 1 : removeMatching(ctx, table, "value", "re", re)),
    },
    sht_rm_name: {
      params: ["str", "str", "str"],
      returns: "int",
      doc: 'Remove the items whose name matches: op "re" regex, "sw" starts with, "ew" ends with, "in" contains. 1 ok; -1 bad op/regex.',
      run(ctx, table: string, op: string, value: string) {
        if (!tableOk(ctx, table)) return -1;
        if (!REMOVE_OPS.has(op)) {
          ctx.host.log("warn", `htable: unsupported match operator: ${op}\n`, ctx);
          return -1;
        }
        return removeMatching(ctx, table, "name", op, value);
      },
    },
    sht_rm_value: {
      params: ["str", "str", "str"],
      returns: "int",
      doc: 'Remove the items whose string value matches: op "re", "sw", "ew", "in". 1 ok; -1 bad op/regex.',
      run(ctx, table: string, op: string, value: string) {
        if (!tableOk(ctx, table)) return -1;
        if (!REMOVE_OPS.has(op)) {
          ctx.host.log("warn", `htable: unsupported match operator: ${op}\n`, ctx);
          return -1;
        }
        return removeMatching(ctx, table, "value", op, value);
      },
    },
    sht_match_name: {
      params: ["str", "str", "str"],
      returns: "int",
      doc: 'Whether some item name matches: op "eq", "ne", "re" (regex), "sw" (starts with). 1 match, -1 none or error.',
      run: (ctx, table: string, op: string, value: string) => (tableOk(ctx, table) ? matchAny(ctx, table, "name", op, value) : -1),
    },
    sht_match_str_value: {
      params: ["str", "str", "str"],
      returns: "int",
      doc: 'Whether some string item value matches: op "eq", "ne", "re", "sw". 1 match, -1 none or error.',
      run: (ctx, table: string, op: string, value: string) => (tableOk(ctx, table) ? matchAny(ctx, table, "value", op, value) : -1),
    },
    sht_is_null: {
      params: ["str", "str"],
      returns: "int",
      doc: "1 if the item is missing, -1 if present; -2 when the table has an initVal (never null); 2 for an empty table name.",
      run(ctx, table: string, key: string) {
        if (table.length === 0) return 2;
        if (store(ctx).definition(table).initVal !== undefined) return -2;
        return store(ctx).get(table, key, ctx.host.now()) === undefined ? 1 : -1;
      },
    },
    sht_lock: {
      params: ["str", "str"],
      returns: "int",
      doc: "Take the re-entrant lock of a key (never blocks: executions of a tenant run one at a time). 1.",
      run: (ctx, table: string, key: string) => lock(ctx, table, key),
    },
    sht_unlock: {
      params: ["str", "str"],
      returns: "int",
      doc: "Release one level of a key's lock. 1 (an unlock without lock is logged).",
      run: (ctx, table: string, key: string) => unlock(ctx, table, key),
    },
    sht_reset: {
      params: ["str"],
      returns: "int",
      doc: "Remove every item of the table. 0 on success, as Kamailio's KEMI export; -1 for an empty name.",
      run(ctx, table: string) {
        if (!tableOk(ctx, table)) return -1;
        store(ctx).reset(table);
        return 0;
      },
    },
    sht_iterator_start: {
      params: ["str", "str"],
      returns: "int",
      doc: "Start (or restart) iterator `name` over the table's items (up to 4 iterators). 1 ok, -1 error.",
      run: (ctx, name: string, table: string) => iteratorStart(ctx, name, table),
    },
    sht_iterator_next: {
      params: ["str"],
      returns: "int",
      doc: "Move the iterator to the next item ($shtitkey/$shtitval). 1 ok, -1 no more items or unknown iterator.",
      run(ctx, name: string) {
        if (name.length === 0 || !store(ctx).iterators.has(name)) {
          err(ctx, `iterator not found [${name}]`);
          return -1;
        }
        return iteratorAdvance(ctx, name) ? 1 : -1;
      },
    },
    sht_iterator_end: {
      params: ["str"],
      returns: "int",
      doc: "Close the iterator. 1 ok, -1 unknown iterator.",
      run(ctx, name: string) {
        if (!store(ctx).iterators.delete(name)) {
          err(ctx, `iterator not found [${name}]`);
          return -1;
        }
        return 1;
      },
    },
    sht_iterator_rm: {
      params: ["str"],
      returns: "int",
      doc: "Remove the current item and move on: 1 next item exists, -2 no more items, -1 error.",
      run(ctx, name: string) {
        const current = iteratorInUse(ctx, name);
        if (current === undefined) return -1;
        store(ctx).delete(current.table, current.key);
        return iteratorAdvance(ctx, name) ? 1 : -2;
      },
    },
    sht_iterator_sets: {
      params: ["str", "str"],
      returns: "int",
      doc: "Set the current item to a string. 1 ok, -1 error.",
      run(ctx, name: string, value: string) {
        const current = iteratorInUse(ctx, name);
        return current === undefined ? -1 : setValue(ctx, current.table, current.key, value, 0);
      },
    },
    sht_iterator_seti: {
      params: ["str", "int"],
      returns: "int",
      doc: "Set the current item to an integer. 1 ok, -1 error.",
      run(ctx, name: string, value: number) {
        const current = iteratorInUse(ctx, name);
        return current === undefined ? -1 : setValue(ctx, current.table, current.key, value, 0);
      },
    },
    sht_iterator_setex: {
      params: ["str", "int"],
      returns: "int",
      doc: "Make the current item expire after the given seconds. 1 ok, -1 error.",
      run(ctx, name: string, expire: number) {
        const current = iteratorInUse(ctx, name);
        if (current === undefined) return -1;
        store(ctx).setExpire(current.table, current.key, expire, ctx.host.now());
        return 1;
      },
    },
  },
  // Native functions (Kamailio htable cmd exports) for KSR.x.modf.
  native: [
    { name: "sht_rm", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "sht_rm" },
    { name: "sht_reset", params: ["str"], routes: ["ANY_ROUTE"], kemi: "sht_reset" },
    { name: "sht_iterator_start", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "sht_iterator_start" },
    { name: "sht_iterator_next", params: ["str"], routes: ["ANY_ROUTE"], kemi: "sht_iterator_next" },
    { name: "sht_iterator_end", params: ["str"], routes: ["ANY_ROUTE"], kemi: "sht_iterator_end" },
    { name: "sht_iterator_rm", params: ["str"], routes: ["ANY_ROUTE"], kemi: "sht_iterator_rm" },
    { name: "sht_iterator_sets", params: ["str", "str"], routes: ["ANY_ROUTE"], kemi: "sht_iterator_sets" },
    { name: "sht_iterator_seti", params: ["str", "int"], routes: ["ANY_ROUTE"], kemi: "sht_iterator_seti" },
    { name: "sht_iterator_setex", params: ["str", "int"], routes: ["ANY_ROUTE"], kemi: "sht_iterator_setex" },
    { name: "sht_setxs", params: ["str", "str", "str", "int"], routes: ["ANY_ROUTE"], kemi: "sht_setxs" },
    { name: "sht_setxi", params: ["str", "str", "int", "int"], routes: ["ANY_ROUTE"], kemi: "sht_setxi" },
    { name: "sht_rm_name_re", params: ["str"], routes: ["ANY_ROUTE"], kemi: "sht_rm_name_re", refused: "fixup without free" },
    { name: "sht_rm_value_re", params: ["str"], routes: ["ANY_ROUTE"], kemi: "sht_rm_value_re", refused: "fixup without free" },
    { name: "sht_rm_name", params: ["str", "str", "str"], routes: ["ANY_ROUTE"], kemi: "sht_rm_name", refused: "fixup without free" },
    { name: "sht_rm_value", params: ["str", "str", "str"], routes: ["ANY_ROUTE"], kemi: "sht_rm_value", refused: "fixup without free" },
    { name: "sht_match_name", params: ["str", "str", "str"], routes: ["ANY_ROUTE"], kemi: "sht_match_name", refused: "fixup without free" },
    { name: "sht_match_str_value", params: ["str", "str", "str"], routes: ["ANY_ROUTE"], kemi: "sht_match_str_value", refused: "fixup without free" },
    { name: "sht_lock", params: ["str"], routes: ["ANY_ROUTE"], kemi: "sht_lock", refused: "fixup without free" },
    { name: "sht_unlock", params: ["str"], routes: ["ANY_ROUTE"], kemi: "sht_unlock", refused: "fixup without free" },
  ],
};

registerPvClasses(htableModule);
