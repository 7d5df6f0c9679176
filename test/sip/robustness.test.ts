import { describe, expect, it } from "vitest";
import { parseMessage } from "../../host/sip/parser.js";
import { serializeMessage } from "../../host/sip/serialize.js";
import { formatUri, parseUri } from "../../host/sip/uri.js";
import { parseNameAddr } from "../../host/sip/nameaddr.js";
import { parseVia } from "../../host/sip/via.js";
import { splitHeaderValues } from "../../host/sip/headers.js";
import { StreamFramer, type FramedItem } from "../../host/sip/framing.js";
import type { SipMessage } from "../../host/sip/message.js";
import { inviteText, requestLines, sipText } from "./fixtures.js";
import { prng } from "../fuzz/engine.js";

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

/** The fields a parse yields, for comparing two parses of the same message. */
function fieldsOf(m: SipMessage): unknown {
  return {
    kind: m.kind,
    startLine: m.startLine,
    headers: m.headers.map((h) => [h.name, h.value]),
    body: m.body,
    callId: m.callId,
  };
}

/** Several whole messages in one stream, keep-alives between some (RFC 5626 §3.5.1). */
function validStream(rand: (n: number) => number): { stream: string; messages: string[] } {
  const parts: string[] = [];
  const messages: string[] = [];
  const count = 2 + rand(4);
  for (let k = 0; k < count; k++) {
    const m = SEEDS[rand(SEEDS.length)]!;
    messages.push(m);
    parts.push(m);
    if (rand(3) === 0) parts.push("\r\n\r\n");
  }
  return { stream: parts.join(""), messages };
}

/** The stream cut into random pieces, 1-byte pieces included. */
function randomSplit(text: string, rand: (n: number) => number): Buffer[] {
  const pieces: Buffer[] = [];
  let at = 0;
  while (at < text.length) {
    const len = rand(4) === 0 ? 1 : 1 + rand(200);
    pieces.push(Buffer.from(text.slice(at, at + len), "latin1"));
    at += len;
  }
  return pieces;
}

function frameAll(chunks: readonly Buffer[], limits = { maxMessageBytes: 65535, maxHeaders: 256 }): FramedItem[] {
  const framer = new StreamFramer(limits);
  return chunks.flatMap((c) => framer.push(c));
}

describe("robustness: properties over 2000 mutated messages", () => {
  it("a message that parses re-serialises to bytes that parse to the same fields; one that does not names its problem", () => {
    const rand = prng(0x5eed);
    let accepted = 0;
    for (let i = 0; i < 2000; i++) {
      const input = mutate(SEEDS[i % SEEDS.length]!, rand);
      const r = parseMessage(input);
      if (r.ok) {
        accepted++;
        const m = r.message;
        const wire = serializeMessage(m);
        // Unmodified headers are written byte for byte (the raw pieces).
        expect(wire, `case ${i}`).toBe(m.startLine + "\r\n" + m.headers.map((h) => h.raw).join("") + "\r\n" + m.body);
        const again = parseMessage(wire);
        expect(again.ok, `case ${i}: ${JSON.stringify(input)} → ${again.ok ? "" : again.error}`).toBe(true);
        if (again.ok) expect(fieldsOf(again.message), `case ${i}: ${JSON.stringify(input)}`).toEqual(fieldsOf(m));
      } else {
        // The catch-all reason would mean an internal exception was swallowed.
        expect(r.error, `case ${i}: ${JSON.stringify(input)}`).not.toBe("Malformed message");
        expect(r.error.length).toBeGreaterThan(0);
      }
    }
    // The mutations must leave some messages valid, or only rejections are exercised.
    expect(accepted).toBeGreaterThan(50);
    expect(accepted).toBeLessThan(2000);
  });

  it("the value parsers return a value or null on mutated input, never throw", () => {
    const rand = prng(42);
    const values = [
      "sip:alice:pw@[2001:db8::1]:5060;transport=tcp;lr?subject=a%20b&x=y",
      "tel:+1-201-555-0123;ext=12;phone-context=example.com",
      '"Quoted \\"x\\"" <sip:a@b;lr>;tag=1;+sip.instance="<urn:x>"',
      "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport;received=[::1], SIP/2.0/TCP h;ttl=1",
    ];
    let parsedSome = 0;
    for (let i = 0; i < 2000; i++) {
      const v = mutate(values[i % values.length]!, rand);
      const uri = parseUri(v);
      const na = parseNameAddr(v);
      const vias = parseVia(v);
      expect(Array.isArray(splitHeaderValues(v)), JSON.stringify(v)).toBe(true);
      // What parses formats back to text that parses to the same thing.
      if (uri !== null) {
        parsedSome++;
        expect(parseUri(formatUri(uri)), JSON.stringify(v)).toEqual(uri);
      }
      if (na !== null) parsedSome++;
      expect(Array.isArray(vias)).toBe(true);
    }
    expect(parsedSome).toBeGreaterThan(100);
  });
});

describe("robustness: the stream framer", () => {
  it("frames any split of a valid stream into the same items as the whole stream, the messages as sent (200 streams)", () => {
    const rand = prng(7);
    for (let i = 0; i < 200; i++) {
      const { stream, messages } = validStream(rand);
      const whole = frameAll([Buffer.from(stream, "latin1")]);
      expect(whole.filter((x) => x.kind !== "keepalive").map((x) => (x.kind === "message" ? x.data : x)), `stream ${i}`).toEqual(messages);
      expect(frameAll(randomSplit(stream, rand)), `stream ${i}`).toEqual(whole);
    }
  });

  it("no input stalls the framer: after any garbage, valid messages are framed or the stream is declared broken", () => {
    const rand = prng(9);
    const limits = { maxMessageBytes: 4000, maxHeaders: 64 };
    const valid = SEEDS[1]!;
    // More valid bytes than one message may hold: a framer that neither
    // frames them nor fails has stalled.
    const follow = valid.repeat(Math.ceil(limits.maxMessageBytes / valid.length) + 2);
    let recovered = 0;
    for (let i = 0; i < 500; i++) {
      const garbage = mutate(SEEDS[i % SEEDS.length]!, rand);
      const items = frameAll([...randomSplit(garbage, rand), ...randomSplit(follow, rand)], limits);
      const failed = items.some((x) => x.kind === "error");
      const lastMessage = items.filter((x) => x.kind === "message").at(-1);
      expect(failed || lastMessage !== undefined, `case ${i}: ${JSON.stringify(garbage)}`).toBe(true);
      if (!failed) {
        // Framing was kept: the last framed message is one of the valid ones.
        expect(lastMessage!.kind === "message" && lastMessage!.data, `case ${i}: ${JSON.stringify(garbage)}`).toBe(valid);
        recovered++;
      }
    }
    // Both outcomes occur: some garbage breaks the stream, most framing survives.
    expect(recovered).toBeGreaterThan(50);
    expect(recovered).toBeLessThan(500);
  });
});

describe("robustness: pathological inputs", () => {
  // How long these take is measured by bench/parse.bench.ts, not here.
  it("get a specific outcome, never an exception", () => {
    const pathological: [string, string][] = [
      [sipText([...requestLines("OPTIONS"), "Subject: a" + " ".repeat(30000) + "\r\n" + " ".repeat(30000) + "b"]), "parsed"],
      [sipText([...requestLines("OPTIONS"), "X: " + " \t".repeat(30000) + "x"]), "parsed"],
      [sipText(["OPTIONS sip:a@b" + ";x".repeat(20000) + " SIP/2.0", ...requestLines("OPTIONS").slice(1)]), "parsed"],
      [sipText([...requestLines("OPTIONS"), "Contact: " + "<".repeat(30000)]), "parsed"],
      [sipText([...requestLines("OPTIONS"), "Via: SIP/2.0/UDP h" + ";a=b".repeat(12000)]), "parsed"],
      [sipText([...requestLines("OPTIONS"), "From: " + '"\\'.repeat(20000)]), "Duplicate From"],
      ["\r\n".repeat(30000), "Missing end of headers"],
      ["A".repeat(65000), "Missing end of headers"],
    ];
    for (const [input, expected] of pathological) {
      const r = parseMessage(input);
      expect(r.ok ? "parsed" : r.error, input.slice(0, 80)).toBe(expected);
    }
  });
});
