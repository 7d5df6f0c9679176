/**
 * Log records (host/core/log.ts): `--log-format json|text`, the fields a
 * record about a message carries, script lines as escaped fields (a script
 * cannot forge a line, another tenant's or the server's), and the log
 * level per tenant at run time.
 */
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { escapeLogText, formatJsonRecord, formatTextRecord, log, logLevel, setLogLevel, clearTenantLogLevel, setLogSink, type LogRecord } from "../../host/core/log.js";
import { tenantDir } from "../tenants/fixtures.js";
import { ask } from "../tenants-e2e/harness.js";
import { cliTestbed } from "../tenants-e2e/cli-harness.js";

const { startKsr, peer } = cliTestbed();

/** What a script writes to try to pass for other lines: a newline and a whole forged line, terminal escapes, a JSON record. */
const FORGED_LINE = "2026-01-01T00:00:00.000Z CRIT [victim] forged line tenant=victim";
const FORGING_SCRIPT = `function ksr_request_route() {
  KSR.info("hello\\n${FORGED_LINE}");
  KSR.err("\\u001b[31mred\\u0007\\r\\u2028after");
  KSR.log("warn", '{"time":"2026-01-01T00:00:00.000Z","level":"crit","component":"victim","msg":"forged"}');
  KSR.sl.sl_send_reply(200, "logged");
}
`;

function scriptFile(text: string): string {
  const dir = tenantDir();
  dir.write("logger.js", text);
  return path.join(dir.dir, "logger.js");
}

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe("log records", () => {
  afterEach(() => {
    setLogSink(undefined);
    setLogLevel("info");
    clearTenantLogLevel("a");
  });

  it("text: time, level, component, the message escaped, then the fields", () => {
    const time = new Date(Date.UTC(2026, 11, 7, 20, 41, 32, 123));
    const record: LogRecord = {
      level: "info",
      scope: "acme",
      text: "line one\nline two\n",
      script: true,
      fields: { tenant: "acme", route: "request", callId: "abc 123", src: "udp:192.0.2.1:5060", dst: "tcp:[2001:db8::1]:5060" },
    };
    expect(formatTextRecord(record, time)).toBe(
      '2026-12-07T20:41:32.123Z INFO [acme] script="line one\\nline two" tenant=acme route=request call-id="abc 123" src=udp:192.0.2.1:5060 dst=tcp:[2001:db8::1]:5060',
    );
    expect(formatTextRecord({ level: "err", scope: "ksr", text: "plain" }, time)).toBe("2026-12-07T20:41:32.123Z ERR [ksr] plain");
    expect(JSON.parse(formatJsonRecord(record, time))).toEqual({
      time: "2026-12-07T20:41:32.123Z",
      level: "info",
      component: "acme",
      script: "line one\nline two",
      tenant: "acme",
      route: "request",
      callId: "abc 123",
      src: "udp:192.0.2.1:5060",
      dst: "tcp:[2001:db8::1]:5060",
    });
    expect(escapeLogText("a\u0000b\u001b[0m\u0085\u2029")).toBe("a\\u0000b\\u001b[0m\\u0085\\u2029");
  });

  it("a tenant's log level is its own, changed at run time; the others follow the process's", () => {
    const seen: string[] = [];
    setLogSink((r) => seen.push(`${r.level} ${r.fields?.tenant ?? r.scope}`));
    setLogLevel("dbg", "a");
    log("dbg", "a", "x", { tenant: "a" });
    log("dbg", "b", "x", { tenant: "b" });
    log("info", "b", "x", { tenant: "b" });
    expect(logLevel("a")).toBe("dbg");
    expect(logLevel("b")).toBe("info");
    setLogLevel("err", "a");
    log("warn", "a", "x", { tenant: "a" });
    clearTenantLogLevel("a");
    log("info", "a", "x", { tenant: "a" });
    expect(seen).toEqual(["dbg a", "info b", "info a"]);
  });

  it("--log-format json: every line is a JSON record with time, level and component; a script's lines carry its tenant, route, Call-ID, transaction branch and source", async () => {
    const ksr = await startKsr([scriptFile(FORGING_SCRIPT), "--log-format", "json", "--db", ":memory:", "--no-supervise"], {
      ready: /running .* on udp:127\.0\.0\.1:(\d+)/,
    });
    const client = await peer();
    const answer = await ask(client, ksr.udpPort, { method: "OPTIONS", uri: "sip:x@127.0.0.1", callId: "log-call-1" });
    expect(answer.reason).toBe("logged");
    await ksr.waitFor('"component":"default"');
    await ksr.waitFor("forged");
    expect(await ksr.stop()).toBe(0);
    const lines = ksr.stderr().split("\n").filter((l) => l !== "");
    const records = lines.map((l) => JSON.parse(l) as Record<string, string>);
    for (const r of records) {
      expect(r["time"]).toMatch(ISO_TIME);
      expect(["dbg", "info", "notice", "warn", "err", "crit"]).toContain(r["level"]);
      expect(typeof r["component"]).toBe("string");
      expect(typeof (r["msg"] ?? r["script"])).toBe("string");
    }
    const scriptLines = records.filter((r) => r["script"] !== undefined);
    expect(scriptLines.map((r) => [r["level"], r["script"]])).toEqual([
      ["info", `hello\n${FORGED_LINE}`],
      ["err", "\u001b[31mred\u0007\r\u2028after"],
      ["warn", '{"time":"2026-01-01T00:00:00.000Z","level":"crit","component":"victim","msg":"forged"}'],
    ]);
    for (const r of scriptLines) {
      expect(r).toMatchObject({ component: "default", tenant: "default", route: "request", callId: "log-call-1" });
      // The transaction the line is about: the request's top Via branch (RFC 3261 §17.2.3).
      expect(r["branch"]).toMatch(/^z9hG4bK\S+$/);
      expect(r["src"]).toBe(`udp:127.0.0.1:${client.port}`);
    }
    expect(records.some((r) => r["component"] === "victim" || r["tenant"] === "victim")).toBe(false);
  });

  it("--log-format json reaches worker processes: with --workers 2 every line, the front's and the workers', is a JSON record", async () => {
    const dir = tenantDir();
    dir.write("logger.js", FORGING_SCRIPT);
    const ksr = await startKsr(
      [path.join(dir.dir, "logger.js"), "--workers", "2", "--log-format", "json", "--log-level", "dbg", "--db", path.join(dir.dir, "ksr.sqlite"), "--no-supervise"],
      { ready: /running .* on udp:127\.0\.0\.1:(\d+)/ },
    );
    const client = await peer();
    for (let i = 0; i < 4; i++) expect((await ask(client, ksr.udpPort, { method: "OPTIONS", uri: "sip:x@127.0.0.1", callId: `pool-log-${i}` })).reason).toBe("logged");
    for (let i = 0; i < 4; i++) await ksr.waitFor(`"callId":"pool-log-${i}"`);
    expect(await ksr.stop()).toBe(0);
    const records = ksr
      .stderr()
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Record<string, string>);
    // The workers' own lines (their components are ksr/default#0 and #1) are there too, as JSON.
    expect(new Set(records.map((r) => r["component"]))).toEqual(new Set(["ksr", "default", "default#0", "default#1", "ksr/default#0", "ksr/default#1"]));
    expect(records.filter((r) => r["script"] !== undefined)).toHaveLength(12);
  });

  it("--log-format text: a script's newline, escapes and forged records stay inside its quoted field", async () => {
    const ksr = await startKsr([scriptFile(FORGING_SCRIPT), "--db", ":memory:", "--no-supervise"], { ready: /running .* on udp:127\.0\.0\.1:(\d+)/ });
    const client = await peer();
    expect((await ask(client, ksr.udpPort, { method: "OPTIONS", uri: "sip:x@127.0.0.1", callId: "log-call-2" })).reason).toBe("logged");
    await ksr.waitFor("forged");
    expect(await ksr.stop()).toBe(0);
    const lines = ksr.stderr().split("\n").filter((l) => l !== "");
    for (const line of lines) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\S+Z (DBG|INFO|NOTICE|WARN|ERR|CRIT) \[[^\]]+\] /);
    expect(lines.filter((l) => l.includes("[victim]") && !l.includes("script="))).toEqual([]);
    const hello = lines.find((l) => l.includes("script=\"hello"));
    expect(hello).toBe(
      `${hello!.slice(0, 24)} INFO [default] script="hello\\n${FORGED_LINE}" tenant=default route=request call-id=log-call-2 branch=${/ branch=(\S+) /.exec(hello!)?.[1]} src=udp:127.0.0.1:${client.port}`,
    );
    expect(hello).toMatch(/ branch=z9hG4bK\S+ src=/);
    expect(lines.some((l) => l.includes('script="\\u001b[31mred\\u0007\\r\\u2028after"'))).toBe(true);
    // The quotes of a forged record are escaped: the field ends where the script's text ends.
    expect(lines.some((l) => / WARN \[default\] script="\{\\"time\\":\\"2026-01-01T00:00:00.000Z\\",.*\\"msg\\":\\"forged\\"\}" tenant=default /.test(l))).toBe(true);
    // No raw control character reached the output.
    // eslint-disable-next-line no-control-regex
    expect(ksr.stderr()).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u2028]/);
  });
});
