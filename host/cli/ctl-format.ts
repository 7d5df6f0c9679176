/**
 * `ksr ctl` text output of the methods of host/ops/control-ops.ts (with
 * --json the server's answer is printed as it is). Values come from the
 * server; anything of an unexpected shape is printed as JSON rather than
 * dropped.
 */
import type { OpsMethod } from "../ops/control-ops.js";

type Row = Record<string, unknown>;

function isRow(value: unknown): value is Row {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function rows(value: unknown): Row[] {
  return Array.isArray(value) ? value.filter(isRow) : [];
}

/** Aligned columns, a header first. */
function table(header: readonly string[], body: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? "").length)));
  return [header, ...body].map((cells) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n") + "\n";
}

function contactLines(contacts: unknown): string {
  return rows(contacts)
    .map(
      (c) =>
        `    contact: ${String(c["contact"])} expires-in=${String(c["expiresInS"])}s q=${c["q"] === -1 ? "-" : String(c["q"])} call-id=${String(c["callId"])} cseq=${String(c["cseq"])}` +
        (c["userAgent"] !== "" ? ` user-agent=${JSON.stringify(c["userAgent"])}` : "") +
        (c["received"] !== "" ? ` received=${String(c["received"])}` : "") +
        ` socket=${String(c["socket"])}\n`,
    )
    .join("");
}

function aorLines(tenant: unknown, aors: unknown): string {
  return rows(aors)
    .map((a) => `tenant ${String(tenant)} aor ${String(a["aor"])} (table ${String(a["table"])})\n${contactLines(a["contacts"])}`)
    .join("");
}

export function formatOpsResult(method: OpsMethod, result: unknown): string {
  switch (method) {
    case "stats": {
      if (!isRow(result)) break;
      return Object.entries(result)
        .flatMap(([group, samples]) => (isRow(samples) ? Object.entries(samples).map(([name, value]) => `${group}:${name} = ${String(value)}\n`) : []))
        .join("");
    }
    case "uptime":
      if (!isRow(result)) break;
      return `up ${String(result["uptimeS"])} s, since ${String(result["startedAt"])}\n`;
    case "version":
      if (!isRow(result)) break;
      return `${String(result["name"])} ${String(result["version"])} (Node.js ${String(result["node"])}, V8 ${String(result["v8"])})\n`;
    case "ul.dump": {
      const out = rows(result)
        .map((t) => aorLines(t["tenant"], t["aors"]))
        .join("");
      return out === "" ? "no registrations\n" : out;
    }
    case "ul.lookup":
      if (!isRow(result)) break;
      return aorLines(result["tenant"], result["aors"]);
    case "ul.rm":
      if (!isRow(result)) break;
      return `tenant ${String(result["tenant"])}: removed ${String(result["removed"])} contact(s) of ${String(result["aor"])}\n`;
    case "htable.list":
      return rows(result)
        .map((t) => `tenant ${String(t["tenant"])}: ${Array.isArray(t["tables"]) && t["tables"].length > 0 ? t["tables"].join(", ") : "no tables"}\n`)
        .join("");
    case "htable.dump":
      if (!isRow(result)) break;
      return rows(result["items"])
        .map((i) => `${String(i["key"])} = ${JSON.stringify(i["value"])}${i["expiresInS"] !== undefined ? ` (expires in ${String(i["expiresInS"])} s)` : ""}\n`)
        .join("");
    case "htable.get":
    case "htable.sets":
    case "htable.seti":
      if (!isRow(result)) break;
      return `${String(result["key"])} = ${JSON.stringify(result["value"])}\n`;
    case "htable.delete":
      if (!isRow(result)) break;
      return `tenant ${String(result["tenant"])}: htable ${String(result["table"])}: deleted ${String(result["key"])}\n`;
    case "htable.flush":
      if (!isRow(result)) break;
      return `tenant ${String(result["tenant"])}: htable ${String(result["table"])}: flushed\n`;
    case "dispatcher.list": {
      const out = rows(result)
        .flatMap((t) =>
          rows(t["sets"]).flatMap((set) =>
            rows(set["destinations"]).map((d) => [
              String(t["tenant"]),
              String(set["id"]),
              String(d["uri"]),
              String(d["flags"]),
              String(d["priority"]),
              isRow(d["attrs"]) ? String(d["attrs"]["body"]) : "",
            ]),
          ),
        );
      return out.length === 0 ? "no dispatcher destinations\n" : table(["TENANT", "SET", "URI", "FLAGS", "PRIORITY", "ATTRS"], out);
    }
    case "dispatcher.set_state":
      if (!isRow(result)) break;
      return `tenant ${String(result["tenant"])}: set ${String(result["set"])} ${String(result["uri"])}: ${String(result["flags"])}\n`;
    case "dispatcher.reload":
      if (!isRow(result)) break;
      return `tenant ${String(result["tenant"])}: dispatcher list reloaded from ${String(result["file"])}: ${String(result["sets"])} set(s), ${String(result["destinations"])} destination(s)\n`;
    case "tm.stats":
      return rows(result)
        .map((s) => {
          const finals = isRow(s["finals"]) ? Object.entries(s["finals"]).map(([k, v]) => `${k}=${String(v)}`).join(" ") : "";
          return (
            `tenant ${String(s["tenant"])}: in-use=${String(s["inUse"])} server=${String(s["server"])} client=${String(s["client"])} ` +
            `created-server=${String(s["serverCreated"])} created-client=${String(s["clientCreated"])} finals: ${finals}\n`
          );
        })
        .join("");
    case "tls.reload":
      return "TLS certificate reloaded; new connections use it\n";
    case "tcp.list": {
      const list = rows(result);
      return list.length === 0
        ? "no TCP connections\n"
        : table(
            ["ID", "DIRECTION", "LOCAL", "REMOTE"],
            list.map((c) => [String(c["id"]), String(c["direction"]), String(c["local"]), String(c["remote"])]),
          );
    }
    case "pike.list":
      return rows(result)
        .flatMap((t) =>
          rows(t["addresses"]).map(
            (a) =>
              `tenant ${String(t["worker"] ?? t["tenant"])}: ${String(a["kind"])} ${String(a["address"])} hits=${String(a["hitsPrevious"])}/${String(a["hitsCurrent"])}` +
              `${a["flooding"] === true ? " FLOODING" : ""} forgotten-in=${String(a["expiresInS"])}s\n`,
          ),
        )
        .join("");
    case "loglevel":
      if (!isRow(result)) break;
      return (
        `server: ${String(result["process"])}\n` +
        (isRow(result["tenants"]) ? Object.entries(result["tenants"]).map(([t, l]) => `tenant ${t}: ${String(l)}\n`).join("") : "")
      );
  }
  return JSON.stringify(result, null, 2) + "\n";
}
