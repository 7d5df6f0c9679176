/**
 * The pure parts of the noisy-neighbour benchmark (bench/lib/noisy-sipp.mjs):
 * the tenants file it writes (checked by the real loader and script checker),
 * the noise requests and the parsing of their answers, the per-tenant
 * counters log line, the PASS/FAIL rule, and the noise sender's counting
 * against a scripted UDP responder on 127.0.0.1.
 */
import dgram from "node:dgram";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import {
  A_DOMAIN,
  A_ON_ERROR_STATUS,
  B_DOMAIN,
  NOISY_TENANTS,
  NOISY_VARIANTS,
  buildNoiseRequest,
  formatStatusCounts,
  judgePhase,
  median,
  parseResponse,
  parseTenantCounters,
  relayScriptFor,
  startNoiseSender,
  writeNoisyTenants,
} from "../../bench/lib/noisy-sipp.mjs";
import { checkScript } from "../../host/cli/check.js";
import { loadTenantsFile } from "../../host/tenants/index.js";
import { parseMessage } from "../../host/sip/parser.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "ksr-noisy-test-"));
  dirs.push(dir);
  return dir;
}

describe("relayScriptFor", () => {
  test("points the relay at the given UAS port and changes nothing else", () => {
    const original = readFileSync(new URL("../../bench/scripts/stateful-relay.js", import.meta.url), "utf8");
    const rewritten = relayScriptFor(41234);
    expect(rewritten).toContain('var UAS_URI = "sip:127.0.0.1:41234";');
    expect(rewritten).not.toContain('"sip:127.0.0.1:5080"');
    expect(rewritten.split("\n").filter((line, i) => line !== original.split("\n")[i])).toEqual(['var UAS_URI = "sip:127.0.0.1:41234";']);
  });

  test("refuses a relay script without the UAS line", () => {
    expect(() => relayScriptFor(41234, "function ksr_request_route() {}\n")).toThrow(/no line matching/);
  });
});

describe("writeNoisyTenants", () => {
  test.each(["alone", ...NOISY_VARIANTS] as const)("%s: a tenants file the server's loader accepts, B and A by domain", (variant) => {
    const dir = tempDir();
    const file = writeNoisyTenants({ dir, variant, uasPort: 40001, aCpuShare: variant === "loop" ? 0.25 : undefined });
    const config = loadTenantsFile(file);
    expect(config.tenants.map((t) => t.id)).toEqual(["b", "a"]);
    const [b, a] = config.tenants;
    expect(b!.match).toEqual([{ domains: [B_DOMAIN], sockets: [], sources: [] }]);
    expect(a!.match).toEqual([{ domains: [A_DOMAIN], sockets: [], sources: [] }]);
    const expected = NOISY_TENANTS[variant === "alone" ? "loop" : variant];
    expect(a!.limits.heapMb).toBe(expected.heapMb);
    expect(a!.limits.routeTimeoutMs).toBe(expected.routeTimeoutMs);
    expect(a!.limits.cpuShare).toBe(variant === "loop" ? 0.25 : 1);
    expect(a!.onError).toMatchObject({ status: A_ON_ERROR_STATUS });
    expect(readFileSync(b!.scriptPath, "utf8")).toContain('"sip:127.0.0.1:40001"');
    expect(readFileSync(a!.scriptPath, "utf8")).toBe(readFileSync(new URL(`../../bench/scripts/${expected.script}`, import.meta.url), "utf8"));
    // Both scripts compile and call only KSR functions that exist.
    expect(checkScript(b!.scriptPath)).toEqual([]);
    expect(checkScript(a!.scriptPath)).toEqual([]);
  });

  test("rejects an unknown variant", () => {
    expect(() => writeNoisyTenants({ dir: tempDir(), variant: "spin" as never, uasPort: 40001 })).toThrow(/unknown noisy variant "spin"/);
  });
});

describe("noise requests and their answers", () => {
  test("a noise request is a valid OPTIONS for the tenant's domain", () => {
    const { callId, text } = buildNoiseRequest({ domain: A_DOMAIN, localPort: 40002, seq: 7, runId: "r1" });
    const parsed = parseMessage(text);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.message.method).toBe("OPTIONS");
    expect(parsed.message.requestUri).toBe(`sip:noise@${A_DOMAIN}`);
    expect(parsed.message.callId).toBe(callId);
    expect(callId).not.toBe(buildNoiseRequest({ domain: A_DOMAIN, localPort: 40002, seq: 8, runId: "r1" }).callId);
  });

  test("parseResponse reads the status and Call-ID (long or compact form) of a response only", () => {
    expect(parseResponse("SIP/2.0 503 Service Unavailable\r\nVia: SIP/2.0/UDP x\r\nCall-ID: abc@h\r\n\r\n")).toEqual({ status: 503, callId: "abc@h" });
    expect(parseResponse(Buffer.from("SIP/2.0 100 Trying\r\ni: x1\r\n\r\n", "latin1"))).toEqual({ status: 100, callId: "x1" });
    expect(parseResponse("SIP/2.0 500 Server Internal Error\r\nCSeq: 1 OPTIONS\r\n\r\n")).toEqual({ status: 500, callId: null });
    // A Call-ID in the body is not the response's.
    expect(parseResponse("SIP/2.0 200 OK\r\nContent-Length: 12\r\n\r\nCall-ID: zz\r\n")).toEqual({ status: 200, callId: null });
    expect(parseResponse("OPTIONS sip:a SIP/2.0\r\nCall-ID: abc\r\n\r\n")).toBeNull();
  });

  test("formatStatusCounts lists statuses in ascending order", () => {
    expect(formatStatusCounts({ 503: 2, 500: 10 })).toBe("500×10 503×2");
    expect(formatStatusCounts({})).toBe("none");
  });
});

describe("parseTenantCounters", () => {
  test("keeps the last counters line of each tenant, with its mode, counters and replies", () => {
    const line = (id: string, messages: number, mode: string) =>
      `INFO [counters] tenant ${id}: mode=${mode} messages=${messages} route-errors=3 timeouts=2 oom-restarts=1 over-budget=4 demotions=1 ` +
      `reloads=0 reload-failures=0 cpu-ms=812.5 budget-ms=-12.0 transactions=0 replies: 1xx=0 2xx=0 3xx=0 4xx=0 5xx=7 6xx=0`;
    const output = [
      line("a", 5, "sync"),
      "ERR [a] tenant=a route=ksr_request_route timeout: route exceeded its 50 ms time limit",
      line("b.x", 9, "sync"),
      line("a", 11, "async"),
      "INFO [counters] no tenant: requests answered 404=1 responses dropped=0",
    ].join("\n");
    const counters = parseTenantCounters(output);
    expect([...counters.keys()]).toEqual(["a", "b.x"]);
    const a = counters.get("a")!;
    expect(a.mode).toBe("async");
    expect(a.messages).toBe(11);
    expect(a["oom-restarts"]).toBe(1);
    expect(a["over-budget"]).toBe(4);
    expect(a["cpu-ms"]).toBe(812.5);
    expect(a["budget-ms"]).toBe(-12);
    expect(a.replies).toEqual({ "1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 7, "6xx": 0 });
    expect(counters.get("b.x")!.messages).toBe(9);
  });

  test("an output without counters lines gives no tenants", () => {
    expect(parseTenantCounters("NOTICE [ksr] running tenants b, a\nERR [a] tenant=a route=ksr_request_route oom").size).toBe(0);
  });
});

describe("judgePhase", () => {
  const alone = { successful: 1000, p99Ms: 10 };

  test("passes above 90 % of the calls and under twice the p99, fails on either limit", () => {
    expect(judgePhase(alone, { successful: 950, p99Ms: 19 })).toEqual({
      throughputRatio: 0.95,
      p99Ratio: 1.9,
      throughputPass: true,
      p99Pass: true,
      pass: true,
    });
    // The limits are strict: exactly 90 % or exactly 2× fails.
    expect(judgePhase(alone, { successful: 900, p99Ms: 5 })).toMatchObject({ throughputPass: false, p99Pass: true, pass: false });
    expect(judgePhase(alone, { successful: 1000, p99Ms: 20 })).toMatchObject({ throughputPass: true, p99Pass: false, pass: false });
  });

  test("a 0 ms p99 alone counts as sipp's 1 ms resolution; a phase without response times fails", () => {
    expect(judgePhase({ successful: 100, p99Ms: 0 }, { successful: 100, p99Ms: 1 })).toMatchObject({ p99Ratio: 1, pass: true });
    expect(judgePhase(alone, { successful: 0, p99Ms: NaN })).toMatchObject({ throughputRatio: 0, p99Pass: false, pass: false });
  });

  test("thresholds can be given", () => {
    expect(judgePhase(alone, { successful: 960, p99Ms: 25 }, { minThroughputRatio: 0.97, maxP99Ratio: 3 })).toMatchObject({
      throughputPass: false,
      p99Pass: true,
    });
  });
});

test("median of the finite values", () => {
  expect(median([30, 10, 20])).toBe(20);
  expect(median([40, 10, 30, 20])).toBe(25);
  expect(median([NaN, 5])).toBe(5);
  expect(median([])).toBeNaN();
});

describe("startNoiseSender", () => {
  test("counts each request's first final answer by status, provisional answers, strays and unanswered requests", async () => {
    // The responder answers by the request's CSeq number n: n % 3 == 1 → 500
    // (twice: the repeat is not counted again), n % 3 == 2 → 100 then 503,
    // n % 3 == 0 → nothing; and sends one datagram that answers nothing.
    const responder = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => responder.bind(0, "127.0.0.1", resolve));
    responder.on("message", (data, from) => {
      const text = data.toString("latin1");
      const callId = /^Call-ID: (\S+)/m.exec(text)![1];
      const n = Number(/^CSeq: (\d+)/m.exec(text)![1]);
      const answer = (status: string) => responder.send(`SIP/2.0 ${status}\r\nCall-ID: ${callId}\r\nContent-Length: 0\r\n\r\n`, from.port, from.address);
      if (n % 3 === 1) {
        answer("500 Server Internal Error");
        answer("500 Server Internal Error");
      } else if (n % 3 === 2) {
        answer("100 Trying");
        answer("503 Service Unavailable");
      }
      if (n === 1) responder.send("SIP/2.0 200 OK\r\nCall-ID: someone-else\r\n\r\n", from.port, from.address);
    });
    try {
      const sender = await startNoiseSender({ targetPort: responder.address().port, rate: 1000, count: 9, replyWaitMs: 300 });
      const report = await sender.finished;
      expect(report.sent).toBe(9);
      expect(report.byStatus).toEqual({ 500: 3, 503: 3 });
      expect(report.unanswered).toBe(3);
      expect(report.provisional).toBe(3);
      // The stray 200 and the three repeated 500s match no outstanding request.
      expect(report.stray).toBe(4);
      expect(report.sendErrors).toBe(0);
      expect(Number.isFinite(report.responseMs.p99)).toBe(true);
    } finally {
      responder.close();
    }
  });

  test("refuses an unbounded or empty load", async () => {
    await expect(startNoiseSender({ targetPort: 9, rate: 10, count: 0 })).rejects.toThrow(/count must be a positive integer/);
    await expect(startNoiseSender({ targetPort: 9, rate: 10, count: Infinity })).rejects.toThrow(/count must be a positive integer/);
  });
});
