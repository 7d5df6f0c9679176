import { describe, expect, it } from "vitest";
import { parseMessage } from "../../host/sip/parser.js";
import { serializeMessage } from "../../host/sip/serialize.js";
import { parseUri } from "../../host/sip/uri.js";
import { parseNameAddr } from "../../host/sip/nameaddr.js";
import { parseVia } from "../../host/sip/via.js";
import { splitHeaderValues } from "../../host/sip/headers.js";
import { StreamFramer } from "../../host/sip/framing.js";
import { inviteText, requestLines, sipText } from "./fixtures.js";

/** Seeded PRNG (mulberry32) so a failing case can be replayed. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % n) >>> 0;
  };
}

const SEEDS = [
  inviteText(),
  sipText(requestLines("OPTIONS")),
  sipText([
    "SIP/2.0 200 OK",
    "v: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;rport=5060;received=192.0.2.1, SIP/2.0/TCP b;branch=z9hG4bK2",
    'f: "A \\"q\\"" <sips:a:pw@example.com;transport=tls>;tag=1',
    "t: sip:b@example.com;tag=2",
    "i: abc@def",
    "CSeq: 1 INVITE",
    "Contact: <sip:a@h;lr>;expires=60,\r\n <tel:+1-555;ext=1>",
    "l: 4",
  ], "body"),
];

/** Bytes that tend to hit grammar boundaries. */
const SPECIAL = '\r\n:;,<>"\\[]@%?=& \t/0\x00\xff';

function mutate(text: string, rand: (n: number) => number): string {
  let s = text;
  const ops = 1 + rand(4);
  for (let k = 0; k < ops; k++) {
    const pos = rand(s.length + 1);
    switch (rand(7)) {
      case 0: // replace one byte with a random byte
        s = s.slice(0, pos) + String.fromCharCode(rand(256)) + s.slice(pos + 1);
        break;
      case 1: // insert a grammar-significant byte
        s = s.slice(0, pos) + SPECIAL[rand(SPECIAL.length)] + s.slice(pos);
        break;
      case 2: { // delete a range
        const len = rand(20);
        s = s.slice(0, pos) + s.slice(pos + len);
        break;
      }
      case 3: { // duplicate a range
        const len = rand(40);
        s = s.slice(0, pos) + s.slice(pos, pos + len) + s.slice(pos);
        break;
      }
      case 4: // truncate
        s = s.slice(0, pos);
        break;
      case 5: { // splice in a chunk of another seed
        const other = SEEDS[rand(SEEDS.length)]!;
        const from = rand(other.length);
        s = s.slice(0, pos) + other.slice(from, from + rand(60)) + s.slice(pos);
        break;
      }
      default: // swap two bytes
        if (s.length > 1) {
          const q = rand(s.length);
          const a = s.split("");
          [a[pos % a.length], a[q]] = [a[q]!, a[pos % a.length]!];
          s = a.join("");
        }
    }
  }
  return s;
}

describe("robustness", () => {
  it("parseMessage never throws on 2000 mutated messages and valid results stay consistent", () => {
    const rand = prng(0x5eed);
    let accepted = 0;
    for (let i = 0; i < 2000; i++) {
      const input = mutate(SEEDS[i % SEEDS.length]!, rand);
      let result: ReturnType<typeof parseMessage>;
      expect(() => {
        result = parseMessage(input);
      }, `case ${i}: ${JSON.stringify(input)}`).not.toThrow();
      const r = result!;
      if (r.ok) {
        accepted++;
        const m = r.message;
        // Raw pieces must still rebuild the message, and re-serializing must be exact.
        const rebuilt = m.startLine + "\r\n" + m.headers.map((h) => h.raw).join("") + "\r\n" + m.body;
        expect(m.raw.startsWith(rebuilt), `case ${i}`).toBe(true);
        expect(serializeMessage(m)).toBe(rebuilt);
      } else {
        // The catch-all reason would mean an internal exception was swallowed.
        expect(r.error, `case ${i}: ${JSON.stringify(input)}`).not.toBe("Malformed message");
        expect(r.error.length).toBeGreaterThan(0);
      }
    }
    // The mutations must leave some messages valid, or the test would only exercise rejections.
    expect(accepted).toBeGreaterThan(50);
    expect(accepted).toBeLessThan(2000);
  });

  it("the value parsers and the framer never throw on mutated input", () => {
    const rand = prng(42);
    const values = [
      "sip:alice:pw@[2001:db8::1]:5060;transport=tcp;lr?subject=a%20b&x=y",
      "tel:+1-201-555-0123;ext=12;phone-context=example.com",
      '"Quoted \\"x\\"" <sip:a@b;lr>;tag=1;+sip.instance="<urn:x>"',
      "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport;received=[::1], SIP/2.0/TCP h;ttl=1",
    ];
    for (let i = 0; i < 2000; i++) {
      const v = mutate(values[i % values.length]!, rand);
      expect(() => {
        parseUri(v);
        parseNameAddr(v);
        parseVia(v);
        splitHeaderValues(v);
      }, JSON.stringify(v)).not.toThrow();
    }
    const framer = new StreamFramer({ maxMessageBytes: 4000, maxHeaders: 64 });
    for (let i = 0; i < 300; i++) {
      const chunk = mutate(SEEDS[i % SEEDS.length]!, rand);
      expect(() => framer.push(Buffer.from(chunk, "latin1"))).not.toThrow();
    }
  });

  it("stays linear on pathological inputs", () => {
    const pathological = [
      sipText([...requestLines("OPTIONS"), "Subject: a" + " ".repeat(30000) + "\r\n" + " ".repeat(30000) + "b"]),
      sipText([...requestLines("OPTIONS"), "X: " + " \t".repeat(30000) + "x"]),
      sipText(["OPTIONS sip:a@b" + ";x".repeat(20000) + " SIP/2.0", ...requestLines("OPTIONS").slice(1)]),
      sipText([...requestLines("OPTIONS"), "Contact: " + "<".repeat(30000)]),
      sipText([...requestLines("OPTIONS"), "Via: SIP/2.0/UDP h" + ";a=b".repeat(12000)]),
      sipText([...requestLines("OPTIONS"), "From: " + '"\\'.repeat(20000)]),
      "\r\n".repeat(30000),
      "A".repeat(65000),
    ];
    for (const input of pathological) {
      const started = performance.now();
      parseMessage(input);
      const framer = new StreamFramer();
      framer.push(Buffer.from(input, "latin1"));
      expect(performance.now() - started).toBeLessThan(500);
    }
  });
});
