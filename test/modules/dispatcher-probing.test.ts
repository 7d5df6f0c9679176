/**
 * The dispatcher's probing decisions against Kamailio 5.6's dispatch.c
 * (ds_ping_result_helper, ds_options_callback, ds_ping_check_rplcode):
 * which destinations a round pings per ds_probing_mode, which replies count,
 * the thresholds, and the dst-down/dst-up events a probe result fires.
 * Pings go to a sender in the test that answers with the status it is told.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { DS_DISABLED, DS_INACTIVE, DS_PROBING, DS_TRYING } from "../../host/modules/dispatcher/list.js";
import { isProbed, probeRound, type Ping } from "../../host/modules/dispatcher/probing.js";
import { isPingAnswered, parsePingReplyCodes } from "../../host/modules/dispatcher/ping-replies.js";
import { configureDispatcher, dispatcherSettingsOf, removeDispatcher, setDispatcherEventSink, type TenantDispatcher } from "../../host/modules/dispatcher/tenants.js";

const dir = mkdtempSync(path.join(tmpdir(), "ksr-ds-probe-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const TENANT = "ds-probe-test";
afterEach(() => removeDispatcher(TENANT));

let fileNo = 0;
function useList(text: string, params: Record<string, string | number> = {}): TenantDispatcher {
  const file = path.join(dir, `list-${++fileNo}.list`);
  writeFileSync(file, text);
  return configureDispatcher(TENANT, file, dispatcherSettingsOf({ event_callback: "ksr_ds_event", ...params }));
}

/** Runs rounds whose pings are answered with the status `answer` gives for the destination URI. */
function prober(d: TenantDispatcher) {
  const pings: Ping[] = [];
  const events: string[] = [];
  const logs: string[] = [];
  setDispatcherEventSink(TENANT, (callback, event, uri) => events.push(`${callback} ${event} ${uri}`));
  const round = (answer: (uri: string) => number): number =>
    probeRound(
      TENANT,
      d,
      (ping, done) => {
        pings.push(ping);
        done(answer(ping.dest.uri));
      },
      (line) => logs.push(line),
    );
  const flagsOf = (uri: string): number => [...d.list.sets.values()].flatMap((s) => s.dests).find((x) => x.uri === uri)!.flags;
  return { pings, events, logs, round, flagsOf };
}

describe("ds_ping_reply_codes", () => {
  it("parses codes and classes, names in any case", () => {
    expect(parsePingReplyCodes("code=404; CLASS=3;code=488")).toEqual({ codes: [404, 488], classes: [3] });
    expect(parsePingReplyCodes("")).toEqual({ codes: [], classes: [] });
  });

  it("rejects what Kamailio would drop silently, naming it", () => {
    expect(() => parsePingReplyCodes("code=99")).toThrow(/code 99 is not in 100..699/);
    expect(() => parsePingReplyCodes("class=7")).toThrow(/class 7/);
    expect(() => parsePingReplyCodes("cod=404")).toThrow(/unknown name "cod"/);
    expect(() => parsePingReplyCodes("code=four")).toThrow(/"code=four"/);
  });

  it("2xx always answers; other codes only when listed by code or class", () => {
    const accepted = parsePingReplyCodes("code=404;class=3");
    expect(isPingAnswered(200, accepted)).toBe(true);
    expect(isPingAnswered(299, accepted)).toBe(true);
    expect(isPingAnswered(404, accepted)).toBe(true);
    expect(isPingAnswered(302, accepted)).toBe(true);
    expect(isPingAnswered(403, accepted)).toBe(false);
    expect(isPingAnswered(408, accepted)).toBe(false);
    expect(isPingAnswered(404, parsePingReplyCodes(""))).toBe(false);
  });
});

describe("probing settings", () => {
  it("are checked when the dispatcher is configured, naming the bad one", () => {
    expect(() => dispatcherSettingsOf({ ds_probing_mode: 4 })).toThrow(/ds_probing_mode: 4/);
    expect(() => dispatcherSettingsOf({ ds_ping_reply_codes: "code=99" })).toThrow(/code 99/);
    expect(() => dispatcherSettingsOf({ ds_ping_method: "INVITE" })).toThrow(/ds_ping_method/);
    expect(() => dispatcherSettingsOf({ ds_ping_from: "nobody" })).toThrow(/ds_ping_from/);
    expect(() => dispatcherSettingsOf({ ds_ping_interval: "x" })).toThrow(/ds_ping_interval/);
    expect(dispatcherSettingsOf({ ds_ping_interval: "10" }).ds_ping_interval).toBe(10);
  });
});

describe("which destinations a round pings (ds_probing_mode)", () => {
  it("mode 0 and 3: those with the probing bit; 1: all; 2: probing and inactive; never disabled ones", () => {
    for (const mode of [0, 3]) {
      expect(isProbed(0, mode)).toBe(false);
      expect(isProbed(DS_PROBING, mode)).toBe(true);
      expect(isProbed(DS_INACTIVE | DS_PROBING, mode)).toBe(true);
    }
    expect(isProbed(0, 1)).toBe(true);
    expect(isProbed(DS_INACTIVE, 1)).toBe(true);
    expect(isProbed(DS_PROBING, 2)).toBe(false);
    expect(isProbed(DS_INACTIVE, 2)).toBe(false);
    expect(isProbed(DS_INACTIVE | DS_PROBING, 2)).toBe(true);
    for (const mode of [0, 1, 2, 3]) expect(isProbed(DS_DISABLED | DS_PROBING, mode)).toBe(false);
  });

  it("a round pings what the mode picks, with ds_ping_method and ds_ping_from unless ping_from is set", () => {
    const d = useList("1 sip:127.0.0.1:5071 8\n1 sip:127.0.0.1:5072 0\n2 sip:127.0.0.1:5073 12 0 ping_from=sip:probe@ksr.test\n", {
      ds_ping_method: "INFO",
      ds_ping_from: "sip:ds@ksr.test",
    });
    const p = prober(d);
    expect(p.round(() => 200)).toBe(1);
    expect(p.pings.map((x) => `${x.group} ${x.dest.uri} ${x.method} ${x.from}`)).toEqual(["1 sip:127.0.0.1:5071 INFO sip:ds@ksr.test"]);
    const all = useList("1 sip:127.0.0.1:5071 8\n1 sip:127.0.0.1:5072 0\n2 sip:127.0.0.1:5073 0 0 ping_from=sip:probe@ksr.test\n2 sip:127.0.0.1:5074 4\n", {
      ds_probing_mode: 1,
    });
    const q = prober(all);
    expect(q.round(() => 200)).toBe(3);
    expect(q.pings.map((x) => `${x.dest.uri} ${x.from}`).sort()).toEqual([
      "sip:127.0.0.1:5071 sip:dispatcher@localhost",
      "sip:127.0.0.1:5072 sip:dispatcher@localhost",
      "sip:127.0.0.1:5073 sip:probe@ksr.test",
    ]);
  });
});

describe("probe results", () => {
  const A = "sip:127.0.0.1:5071";

  it("mode 1: ds_probing_threshold unanswered pings make it inactive (dst-down once); ds_inactive_threshold answers bring it back (dst-up once)", () => {
    const d = useList(`1 ${A}\n`, { ds_probing_mode: 1, ds_probing_threshold: 3, ds_inactive_threshold: 2 });
    const p = prober(d);
    p.round(() => 200);
    expect(p.flagsOf(A)).toBe(DS_PROBING);
    p.round(() => 408);
    expect(p.flagsOf(A)).toBe(DS_TRYING | DS_PROBING);
    p.round(() => 408);
    expect(p.events).toEqual([]);
    p.round(() => 408);
    expect(p.flagsOf(A)).toBe(DS_INACTIVE | DS_PROBING);
    expect(p.events).toEqual([`ksr_ds_event dispatcher:dst-down ${A}`]);
    p.round(() => 408);
    p.round(() => 503);
    expect(p.events).toHaveLength(1);
    p.round(() => 200);
    expect(p.flagsOf(A)).toBe(DS_INACTIVE | DS_PROBING);
    p.round(() => 200);
    expect(p.flagsOf(A)).toBe(DS_PROBING);
    expect(p.events).toEqual([`ksr_ds_event dispatcher:dst-down ${A}`, `ksr_ds_event dispatcher:dst-up ${A}`]);
    expect(p.logs).toEqual([
      `dispatcher: destination ${A} of set 1 is down (ping answered 408)\n`,
      `dispatcher: destination ${A} of set 1 is up (ping answered 200)\n`,
    ]);
  });

  it("an answer between failures starts the failure count again", () => {
    const d = useList(`1 ${A}\n`, { ds_probing_mode: 1, ds_probing_threshold: 2 });
    const p = prober(d);
    p.round(() => 408);
    p.round(() => 200);
    p.round(() => 408);
    expect(p.flagsOf(A)).toBe(DS_TRYING | DS_PROBING);
    p.round(() => 408);
    expect(p.flagsOf(A)).toBe(DS_INACTIVE | DS_PROBING);
  });

  it("a reply listed in ds_ping_reply_codes answers; others count as failures", () => {
    const d = useList(`1 ${A}\n`, { ds_probing_mode: 1, ds_ping_reply_codes: "code=403" });
    const p = prober(d);
    p.round(() => 403);
    expect(p.flagsOf(A)).toBe(DS_PROBING);
    p.round(() => 404);
    expect(p.flagsOf(A)).toBe(DS_INACTIVE | DS_PROBING);
  });

  it("mode 0: a failed ping drops the probing bit, so the destination is pinged no more (as Kamailio)", () => {
    const d = useList(`1 ${A} 8\n`);
    const p = prober(d);
    p.round(() => 408);
    expect(p.flagsOf(A)).toBe(DS_INACTIVE);
    expect(p.events).toEqual([`ksr_ds_event dispatcher:dst-down ${A}`]);
    expect(p.round(() => 200)).toBe(0);
  });

  it("mode 2: only inactive probing destinations are pinged, and an answer makes them active without the probing bit", () => {
    const d = useList(`1 ${A} 9\n1 sip:127.0.0.1:5072 8\n`, { ds_probing_mode: 2 });
    const p = prober(d);
    expect(p.round(() => 200)).toBe(1);
    expect(p.flagsOf(A)).toBe(0);
    expect(p.events).toEqual([`ksr_ds_event dispatcher:dst-up ${A}`]);
  });

  it("mode 3: an answer keeps the probing bit", () => {
    const d = useList(`1 ${A} 9\n`, { ds_probing_mode: 3 });
    const p = prober(d);
    p.round(() => 200);
    expect(p.flagsOf(A)).toBe(DS_PROBING);
  });

  it("a destination disabled while its ping is out keeps its state; a second callback of one ping is ignored", () => {
    const d = useList(`1 ${A}\n`, { ds_probing_mode: 1 });
    const held: ((status: number) => void)[] = [];
    probeRound(TENANT, d, (_ping, done) => held.push(done), () => {});
    d.list.sets.get(1)!.dests[0]!.flags = DS_DISABLED;
    held[0]!(408);
    expect(d.list.sets.get(1)!.dests[0]!.flags).toBe(DS_DISABLED);

    const e = useList(`1 ${A}\n`, { ds_probing_mode: 1, ds_probing_threshold: 2 });
    const twice: ((status: number) => void)[] = [];
    probeRound(TENANT, e, (_ping, done) => twice.push(done), () => {});
    twice[0]!(408);
    twice[0]!(408);
    expect(e.list.sets.get(1)!.dests[0]!.flags).toBe(DS_TRYING | DS_PROBING);
  });
});
