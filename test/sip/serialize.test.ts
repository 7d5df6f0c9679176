import { describe, expect, it } from "vitest";
import { buildResponse, generateBranch, generateTag, serializeMessage } from "../../host/sip/serialize.js";
import { emptyEdits, ownCopy, type SipMessage } from "../../host/sip/message.js";
import { firstHeader, parseMessage, toHeader } from "../../host/sip/parser.js";
import { headerParam } from "../../host/sip/nameaddr.js";
import { INVITE_LINES, SDP_BODY, inviteText, requestLines, sipText, withLine } from "./fixtures.js";

function parse(text: string): SipMessage {
  const r = parseMessage(text);
  if (!r.ok) throw new Error(r.error);
  return r.message;
}

describe("serializeMessage: round trip", () => {
  const samples: Record<string, string> = {
    invite: inviteText(),
    folded: sipText([...withLine(INVITE_LINES, "Contact", "Contact: <sip:a@b>\r\n  ;expires=60,\r\n\t<sip:c@d>"), "Content-Length: 0"]),
    compact: sipText(["OPTIONS sip:b@h SIP/2.0", "v: SIP/2.0/UDP h;branch=z9hG4bK1", "f: <sip:a@h>;tag=1", "t: <sip:b@h>", "i: x", "CSeq: 1 OPTIONS", "l: 0"]),
    noContentLength: sipText(INVITE_LINES, SDP_BODY),
    weirdSpacing: sipText([...requestLines("OPTIONS"), "Subject   :   spaced   ", "X-Empty:"]),
    response: sipText(["SIP/2.0 200 OK", "Via: SIP/2.0/UDP h;branch=z9hG4bK1", "From: <sip:a@h>;tag=1", "To: <sip:b@h>;tag=2", "Call-ID: x", "CSeq: 1 INVITE", "Content-Length: 3"], "abc"),
  };
  for (const [name, text] of Object.entries(samples)) {
    it(`is byte-exact for ${name}`, () => {
      const m = parse(text);
      expect(serializeMessage(m)).toBe(text);
      expect(serializeMessage(m, emptyEdits())).toBe(text);
      expect(serializeMessage(m, emptyEdits(), {})).toBe(text);
    });
  }

  it("cuts datagram bytes beyond Content-Length", () => {
    const text = sipText([...INVITE_LINES, "Content-Length: 3"], "abcdef");
    expect(serializeMessage(parse(text))).toBe(text.slice(0, -3));
  });

  it("drops leading CRLFs", () => {
    expect(serializeMessage(parse("\r\n" + inviteText()))).toBe(inviteText());
  });
});

describe("serializeMessage: edits", () => {
  const m = parse(inviteText());
  const idx = (key: string) => m.headers.findIndex((h) => h.key === key);

  it("replaces, removes and inserts headers around the untouched ones", () => {
    const edits = emptyEdits();
    edits.replaced.set(idx("max-forwards"), "Max-Forwards: 69\r\n");
    edits.replaced.set(idx("contact"), "");
    edits.insertedBefore.set(0, ["Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKnew\r\n"]);
    edits.insertedAfter.set(idx("call-id"), ["X-After-CallID: 1\r\n", "X-After-CallID: 2\r\n"]);
    edits.prepended.push("Record-Route: <sip:proxy.example.com;lr>\r\n");
    edits.appended.push("X-Last: yes\r\n");
    const out = serializeMessage(m, edits);
    const lines = out.slice(0, out.indexOf("\r\n\r\n")).split("\r\n");
    expect(lines).toEqual([
      INVITE_LINES[0],
      "Record-Route: <sip:proxy.example.com;lr>",
      "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKnew",
      INVITE_LINES[1],
      "Max-Forwards: 69",
      INVITE_LINES[3],
      INVITE_LINES[4],
      INVITE_LINES[5],
      "X-After-CallID: 1",
      "X-After-CallID: 2",
      INVITE_LINES[6],
      INVITE_LINES[8],
      `Content-Length: ${SDP_BODY.length}`,
      "X-Last: yes",
    ]);
    expect(out.endsWith("\r\n\r\n" + SDP_BODY)).toBe(true);
    const reparsed = parse(out);
    expect(reparsed.body).toBe(SDP_BODY);
    expect(reparsed.headers.filter((h) => h.key === "via")).toHaveLength(2);
  });

  it("adds the CRLF a raw edit line forgot", () => {
    const edits = emptyEdits();
    edits.appended.push("X-No-Crlf: 1");
    expect(parse(serializeMessage(m, edits)).headers.at(-1)?.raw).toBe("X-No-Crlf: 1\r\n");
  });

  it("rewrites Content-Length in place when the body changes, keeping the field name", () => {
    const compact = parse(sipText([...INVITE_LINES, `l: ${SDP_BODY.length}`], SDP_BODY));
    const edits = emptyEdits();
    edits.body = "new body";
    const out = serializeMessage(compact, edits);
    const re = parse(out);
    expect(re.body).toBe("new body");
    expect(re.headers.at(-1)).toMatchObject({ name: "l", value: "8" });
    expect(re.headers.map((h) => h.key)).toEqual(compact.headers.map((h) => h.key));
  });

  it("writes Content-Length: 0 when the body is removed", () => {
    const edits = emptyEdits();
    edits.body = "";
    const re = parse(serializeMessage(m, edits));
    expect(re.body).toBe("");
    expect(firstHeader(re, "content-length")?.value).toBe("0");
  });

  it("adds Content-Length when a body is present without one", () => {
    const noCl = parse(sipText(INVITE_LINES, SDP_BODY));
    const edits = emptyEdits();
    edits.appended.push("X-A: 1\r\n");
    const out = serializeMessage(noCl, edits);
    expect(out).toContain(`X-A: 1\r\nContent-Length: ${SDP_BODY.length}\r\n\r\n`);
  });

  it("writes a new Content-Length at the end when an edit removed the received one", () => {
    const edits = emptyEdits();
    edits.replaced.set(idx("content-length"), "");
    const out = serializeMessage(m, edits);
    expect(out.endsWith(`Content-Type: application/sdp\r\nContent-Length: ${SDP_BODY.length}\r\n\r\n${SDP_BODY}`)).toBe(true);
  });

  it("adds Content-Length for stream transports even without edits", () => {
    const noBody = parse(sipText(requestLines("OPTIONS").filter((l) => !l.startsWith("Content-Length"))));
    const out = serializeMessage(noBody, undefined, { stream: true });
    expect(out.endsWith("Content-Length: 0\r\n\r\n")).toBe(true);
    // A correct one is left untouched.
    expect(serializeMessage(m, undefined, { stream: true })).toBe(inviteText());
  });

  it("drops Content-Length lines added by edits when it writes its own", () => {
    const edits = emptyEdits();
    edits.appended.push("Content-Length: 999\r\n");
    edits.body = "xy";
    const out = serializeMessage(m, edits);
    expect(out.match(/Content-Length/g)).toHaveLength(1);
    expect(parse(out).body).toBe("xy");
  });

  it("changes the Request-URI or the whole start line", () => {
    const out = serializeMessage(m, undefined, { requestUri: "sip:bob@192.0.2.4:5070;transport=udp" });
    expect(out.startsWith("INVITE sip:bob@192.0.2.4:5070;transport=udp SIP/2.0\r\n")).toBe(true);
    expect(out.slice(out.indexOf("\r\n"))).toBe(inviteText().slice(inviteText().indexOf("\r\n")));
    expect(serializeMessage(m, undefined, { startLine: "INVITE sip:x@y SIP/2.0" }).split("\r\n")[0]).toBe("INVITE sip:x@y SIP/2.0");
  });
});

describe("buildResponse (§8.2.6.2)", () => {
  const text = sipText([
    "INVITE sip:bob@example.com SIP/2.0",
    "v: SIP/2.0/UDP first.example.com;branch=z9hG4bK1",
    "Via: SIP/2.0/UDP second.example.com;branch=z9hG4bK2, SIP/2.0/TCP third.example.com;branch=z9hG4bK3",
    "Max-Forwards: 70",
    'From: "A" <sip:a@example.com>;tag=ftag',
    "To: <sip:bob@example.com>",
    "Call-ID: abc@host",
    "CSeq: 5 INVITE",
    "Timestamp: 54",
    "Contact: <sip:a@192.0.2.1>",
    "Content-Length: 0",
  ]);
  const req = parse(text);

  it("copies Via (in order), From, To, Call-ID, CSeq and adds a To tag", () => {
    const out = buildResponse(req, 486, "Busy Here", { toTag: "tt1" });
    expect(out).toBe(
      "SIP/2.0 486 Busy Here\r\n" +
        "v: SIP/2.0/UDP first.example.com;branch=z9hG4bK1\r\n" +
        "Via: SIP/2.0/UDP second.example.com;branch=z9hG4bK2, SIP/2.0/TCP third.example.com;branch=z9hG4bK3\r\n" +
        'From: "A" <sip:a@example.com>;tag=ftag\r\n' +
        "To: <sip:bob@example.com>;tag=tt1\r\n" +
        "Call-ID: abc@host\r\n" +
        "CSeq: 5 INVITE\r\n" +
        "Content-Length: 0\r\n\r\n",
    );
    const resp = parse(out);
    expect(resp).toMatchObject({ kind: "response", status: 486, reason: "Busy Here", method: "INVITE", callId: "abc@host" });
  });

  it("generates a To tag when none is given and keeps an existing one", () => {
    const tag = headerParam(toHeader(parse(buildResponse(req, 200, "OK"))), "tag");
    expect(tag).toMatch(/^[0-9a-f]{16}$/);
    const inDialog = parse(sipText(withLine(text.split("\r\n").slice(0, 11), "To:", "To: <sip:bob@example.com>;tag=existing")));
    expect(buildResponse(inDialog, 200, "OK", { toTag: "other" })).toContain("To: <sip:bob@example.com>;tag=existing\r\n");
  });

  it("adds no tag to 100 Trying and copies Timestamp (§8.2.6.1)", () => {
    const out = buildResponse(req, 100, "Trying", { toTag: "x" });
    expect(out).toContain("To: <sip:bob@example.com>\r\n");
    expect(out).toContain("Timestamp: 54\r\n");
    expect(buildResponse(req, 180, "Ringing")).not.toContain("Timestamp");
  });

  it("uses viaOverride, extra headers, body and Content-Type", () => {
    const out = buildResponse(req, 200, "OK", {
      toTag: "t",
      viaOverride: ["Via: SIP/2.0/UDP first.example.com;branch=z9hG4bK1;received=192.0.2.9\r\n"],
      extraHeaders: ["Contact: <sip:bob@192.0.2.4>\r\n", "Allow: INVITE, ACK"],
      body: SDP_BODY,
      contentType: "application/sdp",
    });
    const resp = parse(out);
    expect(resp.headers.map((h) => h.key)).toEqual(["via", "from", "to", "call-id", "cseq", "contact", "allow", "content-type", "content-length"]);
    expect(resp.headers[0]!.value).toContain("received=192.0.2.9");
    expect(resp.body).toBe(SDP_BODY);
    expect(firstHeader(resp, "content-length")?.value).toBe(String(SDP_BODY.length));
  });

  it("adds the tag to an addr-spec To as a header parameter", () => {
    const r = parse(sipText(withLine(requestLines("OPTIONS"), "To:", "To: sip:bob@example.com")));
    const resp = parse(buildResponse(r, 200, "OK", { toTag: "zz" }));
    expect(toHeader(resp)).toEqual({ uri: "sip:bob@example.com", params: [{ name: "tag", value: "zz" }] });
  });
});

describe("generateTag / generateBranch", () => {
  it("produce unique tokens of the expected form", () => {
    const tags = new Set<string>();
    const branches = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const t = generateTag();
      const b = generateBranch();
      expect(t).toMatch(/^[0-9a-f]{16}$/);
      expect(b).toMatch(/^z9hG4bK[0-9a-f]{24}$/);
      tags.add(t);
      branches.add(b);
    }
    expect(tags.size).toBe(2000);
    expect(branches.size).toBe(2000);
  });
});

describe("ownCopy", () => {
  it("returns the same text, whatever its length, cut from a larger message or not", () => {
    const raw = "INVITE sip:bob@example.com SIP/2.0\r\nCall-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\r\n";
    for (let start = 0; start < 40; start += 7) {
      for (let end = start; end <= raw.length; end += 5) {
        const cut = raw.slice(start, end);
        expect(ownCopy(cut)).toBe(cut);
      }
    }
  });
});
