/**
 * Hostile tenants: whatever one tenant's script does, the other tenant of
 * the same server keeps answering OPTIONS with 200 over UDP.
 */
import { describe, expect, it } from "vitest";
import { UdpPeer, buildRequest, reasonOf, statusOf } from "../e2e/sip-client.js";
import { GOOD_EVIL_TENANTS, ask, expectOptions200, hostile, startTenants, type TenantServer, tenantTestbed } from "./harness.js";

const { logs, peer, serve: stopAfterTest } = tenantTestbed();
let srv: TenantServer | undefined;

/** The well-behaved tenant: answers 200, naming any tampering it can see in its own realm. */
const GOOD = `
function ksr_request_route() {
  const tampered = [];
  if (({}).polluted !== undefined) tampered.push("Object.prototype");
  if ([].push !== Array.prototype.push || typeof KSR.sl.sl_send_reply !== "function") tampered.push("KSR or Array");
  KSR.sl.sl_send_reply(200, tampered.length === 0 ? "good" : "tampered: " + tampered.join(","));
}
`;

async function serve(evil: string): Promise<TenantServer> {
  srv = stopAfterTest(await startTenants({ "good.js": GOOD, "evil.js": evil }, GOOD_EVIL_TENANTS));
  return srv;
}

/** INFO to the hostile tenant: resolves with its answer. */
async function provoke(p: UdpPeer, port: number, timeoutMs = 5000): Promise<{ status: number; reason: string }> {
  const { status, reason } = await ask(p, port, { method: "INFO", uri: "sip:x@evil.example" }, timeoutMs);
  return { status, reason };
}

describe("hostile tenant, the other keeps answering OPTIONS 200 over UDP", () => {
  it("endless loop: times out into the error policy, is demoted, and then no longer holds up the other tenant", async () => {
    const s = await serve(hostile("while (true) {}"));
    const evilPeer = await peer();
    const goodPeer = await peer();
    const first = await provoke(evilPeer, s.udpPort);
    expect(first.status).toBe(500);
    expect(await expectOptions200(goodPeer, s.udpPort, "good.example")).toBe("good");
    const evil = s.registry.get("evil")!;
    expect(evil.counters.timeouts).toBe(1);
    expect(evil.mode).toBe("async");
    // Demoted: its next loop runs off the main thread for 300 ms while the
    // good tenant's OPTIONS, sent just after, is answered at once.
    await evilPeer.send(buildRequest({ method: "INFO", uri: "sip:x@evil.example", viaPort: evilPeer.port }), s.udpPort);
    await goodPeer.send(buildRequest({ method: "OPTIONS", uri: "sip:x@good.example", viaPort: goodPeer.port }), s.udpPort);
    const goodAnswer = await goodPeer.next(3000);
    const goodAt = performance.now();
    expect(statusOf(goodAnswer.data)).toBe(200);
    const evilAnswer = await evilPeer.next(3000);
    const evilAt = performance.now();
    expect(statusOf(evilAnswer.data)).toBe(500);
    expect(goodAt).toBeLessThan(evilAt);
    expect(evil.counters.timeouts).toBe(2);
    await logs.waitFor((l) => /^err \[evil\] tenant=evil route=ksr_request_route .* timeout: /.test(l));
  });

  it("heap bomb: out of memory, the tenant's isolate alone is re-created from its script", async () => {
    const s = await serve(hostile("const hoard = []; for (;;) hoard.push(new Array(1 << 20).fill(hoard.length));"));
    const evilPeer = await peer();
    const goodPeer = await peer();
    expect((await provoke(evilPeer, s.udpPort)).status).toBe(500);
    expect(await expectOptions200(goodPeer, s.udpPort, "good.example")).toBe("good");
    const evil = s.registry.get("evil")!;
    expect(evil.counters.oomRestarts).toBe(1);
    // The evil tenant serves again from a fresh isolate; the good one never noticed.
    expect((await ask(evilPeer, s.udpPort, { method: "OPTIONS", uri: "sip:x@evil.example" }, 5000)).reason).toBe("evil ok");
    expect(await expectOptions200(goodPeer, s.udpPort, "good.example")).toBe("good");
    expect(s.registry.get("good")!.counters.routeErrors).toBe(0);
  });

  it("microtask flood: an endless Promise chain is cut by the route timeout", async () => {
    const s = await serve(hostile("Promise.resolve().then(function again() { Promise.resolve().then(again); }); return;"));
    const evilPeer = await peer();
    const goodPeer = await peer();
    expect((await provoke(evilPeer, s.udpPort)).status).toBe(500);
    expect(s.registry.get("evil")!.counters.timeouts).toBe(1);
    expect(await expectOptions200(goodPeer, s.udpPort, "good.example")).toBe("good");
    // The flood does not carry over into the tenant's next message.
    expect((await ask(evilPeer, s.udpPort, { method: "OPTIONS", uri: "sip:x@evil.example" }, 5000)).reason).toBe("evil ok");
  });

  it("Atomics.wait on a SharedArrayBuffer: neither is reachable from a script", async () => {
    const s = await serve(
      hostile(`
    const reach = "Atomics=" + typeof Atomics + " SharedArrayBuffer=" + typeof SharedArrayBuffer +
      " via globalThis=" + ("Atomics" in globalThis || "SharedArrayBuffer" in globalThis);
    if (typeof Atomics !== "undefined" && typeof SharedArrayBuffer !== "undefined") {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    }
    KSR.sl.sl_send_reply(200, reach);
    return;`),
    );
    const evilPeer = await peer();
    const goodPeer = await peer();
    const answer = await provoke(evilPeer, s.udpPort);
    expect(answer).toEqual({ status: 200, reason: "Atomics=undefined SharedArrayBuffer=undefined via globalThis=false" });
    expect(await expectOptions200(goodPeer, s.udpPort, "good.example")).toBe("good");
  });

  it("WebAssembly endless loop: WebAssembly is not reachable from a script", async () => {
    // (module (func (export "f") (loop (br 0)))): spins forever if it can be instantiated.
    const s = await serve(
      hostile(`
    const reach = "WebAssembly=" + typeof WebAssembly + " via globalThis=" + ("WebAssembly" in globalThis);
    if (typeof WebAssembly !== "undefined") {
      const bytes = new Uint8Array([0,97,115,109,1,0,0,0,1,4,1,96,0,0,3,2,1,0,7,5,1,1,102,0,0,10,9,1,7,0,3,64,12,0,11,11]);
      new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.f();
    }
    KSR.sl.sl_send_reply(200, reach);
    return;`),
    );
    const evilPeer = await peer();
    const goodPeer = await peer();
    expect(await provoke(evilPeer, s.udpPort)).toEqual({ status: 200, reason: "WebAssembly=undefined via globalThis=false" });
    expect(await expectOptions200(goodPeer, s.udpPort, "good.example")).toBe("good");
  });

  it("prototype tampering of KSR objects and built-ins stays inside the tenant's own isolate", async () => {
    const tamper = `
function tamper() {
  const failed = [];
  const attempt = (name, fn) => { try { fn(); failed.push(name + ":changed"); } catch (e) { } };
  Object.prototype.polluted = "yes";
  Array.prototype.push = function () { return -1; };
  Function.prototype.call = function () { return "hijacked"; };
  Reflect.apply = function () { return "hijacked"; };
  JSON.parse = function () { return {}; };
  attempt("KSR.sl", () => { "use strict"; KSR.sl = { sl_send_reply() { return 1; } }; });
  attempt("sl_send_reply", () => { "use strict"; KSR.sl.sl_send_reply = function () { return 1; }; });
  attempt("KSR prototype", () => { Object.setPrototypeOf(KSR, { pwned: true }); if (!KSR.pwned) throw 0; });
  attempt("KSR.x.exit", () => { Object.defineProperty(KSR.x, "exit", { value: () => 0 }); });
  return failed;
}
const failedAtLoad = tamper();
`;
    const s = await serve(
      hostile(
        `const failed = failedAtLoad.concat(tamper());
    KSR.sl.sl_send_reply(200, failed.length === 0 ? "facade intact" : failed.join(" "));
    return;`,
        tamper,
      ),
    );
    const evilPeer = await peer();
    const goodPeer = await peer();
    // The facade works for the tampering script itself...
    expect(await provoke(evilPeer, s.udpPort)).toEqual({ status: 200, reason: "facade intact" });
    expect((await ask(evilPeer, s.udpPort, { method: "OPTIONS", uri: "sip:x@evil.example" })).reason).toBe("evil ok");
    // ...and the other tenant's realm never saw any of it.
    expect(await expectOptions200(goodPeer, s.udpPort, "good.example")).toBe("good");
  });

  it("deep recursion: the stack overflow is a route error, answered by the error policy", async () => {
    const s = await serve(hostile("(function down(n) { return down(n + 1) + 1; })(0);"));
    const evilPeer = await peer();
    const goodPeer = await peer();
    const answer = await provoke(evilPeer, s.udpPort);
    expect(answer.status).toBe(500);
    await logs.waitFor((l) => l.includes("[evil] tenant=evil") && l.includes("RangeError"));
    expect(await expectOptions200(goodPeer, s.udpPort, "good.example")).toBe("good");
    expect((await ask(evilPeer, s.udpPort, { method: "OPTIONS", uri: "sip:x@evil.example" })).reason).toBe("evil ok");
  });
});

describe("every hostile behaviour at once, against a steady stream to the good tenant", () => {
  it("answers every OPTIONS of the good tenant while the evil one loops, allocates and recurses", async () => {
    const s = await serve(
      hostile(`
    const what = KSR.pv.get("$rU");
    if (what === "loop") while (true) {}
    if (what === "alloc") { const h = []; for (;;) h.push(new Array(1 << 20).fill(1)); }
    if (what === "recurse") (function down() { return down() + 1; })();`),
    );
    const evilPeer = await peer();
    const goodPeer = await peer();
    const attacks = ["loop", "alloc", "recurse", "loop", "alloc", "recurse"];
    for (const a of attacks) await evilPeer.send(buildRequest({ method: "INFO", uri: `sip:${a}@evil.example`, viaPort: evilPeer.port }), s.udpPort);
    const answered: number[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await ask(goodPeer, s.udpPort, { method: "OPTIONS", uri: `sip:ping${i}@good.example` }, 5000);
      answered.push(r.status);
    }
    expect(answered).toEqual(new Array(20).fill(200));
    // Every attack got the error policy's answer in the end.
    const evilAnswers: number[] = [];
    for (let i = 0; i < attacks.length; i++) evilAnswers.push(statusOf((await evilPeer.next(10_000)).data));
    expect(evilAnswers).toEqual(new Array(attacks.length).fill(500));
    expect(reasonOf((await ask(evilPeer, s.udpPort, { method: "OPTIONS", uri: "sip:x@evil.example" }, 5000)).text)).toBe("evil ok");
  }, 30_000);
});
