import { describe, expect, it } from "vitest";
import { StreamFramer, type FramedItem } from "../../host/sip/framing.js";
import { parseMessage } from "../../host/sip/parser.js";
import { inviteText, requestLines, sipText } from "./fixtures.js";

const b = (s: string) => Buffer.from(s, "latin1");

function feed(framer: StreamFramer, chunks: string[]): FramedItem[] {
  const out: FramedItem[] = [];
  for (const c of chunks) out.push(...framer.push(b(c)));
  return out;
}

const options = sipText(requestLines("OPTIONS"));
const invite = inviteText();

describe("StreamFramer (RFC 3261 §18.3)", () => {
  it("frames one whole message", () => {
    expect(new StreamFramer().push(b(invite))).toEqual([{ kind: "message", data: invite }]);
  });

  it("frames several messages in one chunk", () => {
    const items = new StreamFramer().push(b(invite + options + invite));
    expect(items).toEqual([
      { kind: "message", data: invite },
      { kind: "message", data: options },
      { kind: "message", data: invite },
    ]);
    for (const item of items) expect(item.kind === "message" && parseMessage(item.data).ok).toBe(true);
  });

  it("reassembles a message split byte by byte", () => {
    const framer = new StreamFramer();
    const items = feed(framer, [...(invite + options)]);
    expect(items).toEqual([
      { kind: "message", data: invite },
      { kind: "message", data: options },
    ]);
  });

  it("handles splits inside the header terminator and inside Content-Length", () => {
    const end = invite.indexOf("\r\n\r\n");
    const cl = invite.indexOf("Content-Length");
    for (const cuts of [[end + 1], [end + 2], [end + 3], [cl + 3, cl + 9], [cl + 16, end + 1]]) {
      const chunks: string[] = [];
      let prev = 0;
      for (const c of cuts) {
        chunks.push(invite.slice(prev, c));
        prev = c;
      }
      chunks.push(invite.slice(prev));
      expect(feed(new StreamFramer(), chunks)).toEqual([{ kind: "message", data: invite }]);
    }
  });

  it("waits for the body announced by Content-Length", () => {
    const framer = new StreamFramer();
    const bodyStart = invite.indexOf("\r\n\r\n") + 4;
    expect(framer.push(b(invite.slice(0, bodyStart + 5)))).toEqual([]);
    expect(framer.push(b(invite.slice(bodyStart + 5) + options.slice(0, 10)))).toEqual([{ kind: "message", data: invite }]);
    expect(framer.push(b(options.slice(10)))).toEqual([{ kind: "message", data: options }]);
  });

  it("ignores single CRLFs between messages and reports CRLFCRLF as a keep-alive (RFC 5626 §3.5.1)", () => {
    const framer = new StreamFramer();
    expect(framer.push(b("\r\n" + options + "\r\n\r\n" + options))).toEqual([
      { kind: "message", data: options },
      { kind: "keepalive" },
      { kind: "message", data: options },
    ]);
    expect(feed(framer, ["\r", "\n", "\r", "\n"])).toEqual([{ kind: "keepalive" }]);
    expect(feed(framer, ["\r\n\r\n\r\n\r\n"])).toEqual([{ kind: "keepalive" }, { kind: "keepalive" }]);
    expect(feed(framer, ["\r\n", options])).toEqual([{ kind: "message", data: options }]);
  });

  it("accepts the compact Content-Length form and folded values", () => {
    const compact = "OPTIONS sip:a@b SIP/2.0\r\nl: 2\r\nX: y\r\n\r\nhi";
    const folded = "OPTIONS sip:a@b SIP/2.0\r\nContent-Length:\r\n 3\r\n\r\nabc";
    expect(new StreamFramer().push(b(compact + folded))).toEqual([
      { kind: "message", data: compact },
      { kind: "message", data: folded },
    ]);
  });

  it("fails fatally without Content-Length and stays failed", () => {
    const framer = new StreamFramer();
    const noCl = sipText(requestLines("OPTIONS").filter((l) => !l.startsWith("Content-Length")));
    expect(framer.push(b(noCl))).toEqual([{ kind: "error", error: "Missing Content-Length", fatal: true }]);
    expect(framer.push(b(options))).toEqual([]);
  });

  it("fails fatally on a malformed or conflicting Content-Length", () => {
    expect(new StreamFramer().push(b("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\n"))).toEqual([
      { kind: "error", error: "Bad Content-Length", fatal: true },
    ]);
    expect(new StreamFramer().push(b("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nab"))).toEqual([
      { kind: "error", error: "Conflicting Content-Length", fatal: true },
    ]);
  });

  it("delivers messages framed before a fatal error", () => {
    expect(new StreamFramer().push(b(options + "BAD sip:a@b SIP/2.0\r\n\r\n"))).toEqual([
      { kind: "message", data: options },
      { kind: "error", error: "Missing Content-Length", fatal: true },
    ]);
  });

  it("rejects oversize headers without buffering them unboundedly", () => {
    const limits = { maxMessageBytes: 1000, maxHeaders: 256 };
    const framer = new StreamFramer(limits);
    const items: FramedItem[] = [];
    // 10 chunks of 300 bytes without a header terminator: must fail once past 1000.
    let pushed = 0;
    for (let i = 0; i < 10 && items.length === 0; i++) {
      items.push(...framer.push(b("X".repeat(300))));
      pushed += 300;
    }
    expect(items).toEqual([{ kind: "error", error: "Message too large (maxMessageBytes 1000)", fatal: true }]);
    expect(pushed).toBeLessThanOrEqual(1200);
  });

  it("rejects a Content-Length that would exceed the limit before the body arrives", () => {
    const framer = new StreamFramer({ maxMessageBytes: 2000, maxHeaders: 256 });
    expect(framer.push(b("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n"))).toEqual([
      { kind: "error", error: "Message too large (maxMessageBytes 2000)", fatal: true },
    ]);
  });

  it("frames random chunkings of a message stream identically", () => {
    // Seeded LCG so failures are reproducible.
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const stream = invite + "\r\n" + options + "\r\n\r\n" + invite;
    for (let round = 0; round < 200; round++) {
      const chunks: string[] = [];
      let i = 0;
      while (i < stream.length) {
        const len = 1 + rand(200);
        chunks.push(stream.slice(i, i + len));
        i += len;
      }
      expect(feed(new StreamFramer(), chunks)).toEqual([
        { kind: "message", data: invite },
        { kind: "message", data: options },
        { kind: "keepalive" },
        { kind: "message", data: invite },
      ]);
    }
  });
});
