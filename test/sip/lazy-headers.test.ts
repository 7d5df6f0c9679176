// Header fields of a parsed message are cut out of the received text only
// when read (host/sip/parser.ts, WireHeader); what RFC 3261 makes mandatory
// is still checked on receipt. These tests pin what a reader sees and what
// is refused when.
import { describe, expect, it } from "vitest";
import { fromHeader, messageMemo, parseMessage, receivedRun } from "../../host/sip/parser.js";
import { headerParam, parseNameAddr } from "../../host/sip/nameaddr.js";
import { toBody } from "../../host/modules/msgutil.js";
import { emptyEdits, type Header, type SipMessage } from "../../host/sip/message.js";
import { serializeMessage } from "../../host/sip/serialize.js";
import { sanityModule } from "../../host/modules/sanity.js";
import { makeContext, request } from "../helpers/context.js";
import { caller } from "../modules/call.js";
import { INVITE_LINES, inviteText, requestLines, sipText } from "./fixtures.js";

function parse(text: string): SipMessage {
  const r = parseMessage(text);
  if (!r.ok) throw new Error(r.error);
  return r.message;
}

const sanity = caller(sanityModule);

describe("lazy header fields: what a reader sees", () => {
  it("keys every spelling and compact form without reading the value; name, value and raw as received", () => {
    const m = parse(
      sipText([
        "OPTIONS sip:b@h SIP/2.0",
        "vIA: SIP/2.0/UDP h;branch=z9hG4bK1",
        "f: <sip:a@h>;tag=1",
        "TO :  <sip:b@h>  ",
        "i: x",
        "cSeQ: 1 OPTIONS",
        "X-Custom-Thing: \t one two \t",
        "Content-LENGTH: 0",
      ]),
    );
    expect(m.headers.map((h) => h.key)).toEqual(["via", "from", "to", "call-id", "cseq", "x-custom-thing", "content-length"]);
    const to = m.headers[2]!;
    expect(to.name).toBe("TO");
    expect(to.value).toBe("<sip:b@h>");
    expect(to.raw).toBe("TO :  <sip:b@h>  \r\n");
    const custom = m.headers[5]!;
    expect(custom.name).toBe("X-Custom-Thing");
    expect(custom.value).toBe("one two");
    expect(custom.value).toBe(custom.value); // the same string on every read
  });

  it("a folded field's value is unfolded on read (§7.3.1), its raw text keeps the folds", () => {
    const m = parse(sipText([...requestLines("OPTIONS"), "Subject: first\r\n   second\r\n\tthird"]));
    const subject = m.headers.find((h) => h.key === "subject")!;
    expect(subject.value).toBe("first second third");
    expect(subject.raw).toBe("Subject: first\r\n   second\r\n\tthird\r\n");
  });

  it("reads after edits see the received field: edits apply only when the message is written", () => {
    const m = parse(inviteText());
    const index = m.headers.findIndex((h) => h.key === "max-forwards");
    const edits = emptyEdits();
    edits.replaced.set(index, "Max-Forwards: 69\r\n");
    edits.insertedBefore.set(index, ["X-Before: 1\r\n"]);
    const before = m.headers[index]!.value;
    const out = serializeMessage(m, edits);
    expect(out).toContain("X-Before: 1\r\nMax-Forwards: 69\r\n");
    expect(m.headers[index]!.value).toBe(before);
    expect(m.headers[index]!.raw).toBe(`Max-Forwards: ${before}\r\n`);
    // A header read for the first time after the edits gives the received value too.
    const cseq = m.headers.find((h) => h.key === "cseq")!;
    expect(cseq.value).toBe("314159 INVITE");
  });

  it("prints as its four parts", () => {
    const m = parse(sipText([...requestLines("OPTIONS"), "X-A: b"]));
    const h = m.headers.at(-1)!;
    expect(JSON.parse(JSON.stringify(h))).toEqual({ name: "X-A", key: "x-a", value: "b", raw: "X-A: b\r\n" });
  });
});

describe("lazy header fields: what is refused on receipt, what when read", () => {
  it("the fields of §8.1.1 and framing are checked on receipt, whichever is read later", () => {
    const secondViaBad = sipText([...requestLines("OPTIONS"), "Via: SIP/2.0/UDP ;;,"]);
    expect(parseMessage(secondViaBad)).toMatchObject({ ok: false, error: "Bad Via" });
    const badTo = sipText(requestLines("OPTIONS").map((l) => (l.startsWith("To:") ? "To: <sip:b@h" : l)));
    expect(parseMessage(badTo)).toMatchObject({ ok: false, error: "Bad To" });
    const badMaxForwards = sipText(requestLines("OPTIONS").map((l) => (l.startsWith("Max-Forwards:") ? "Max-Forwards: 256" : l)));
    expect(parseMessage(badMaxForwards)).toMatchObject({ ok: false, error: "Bad Max-Forwards" });
    // RFC 4475 §3.1.2.13: an addr-spec Contact with URI headers, here folded over two lines.
    const badContact = sipText([...requestLines("OPTIONS"), "Contact: sip:a@h\r\n ?Subject=x"]);
    expect(parseMessage(badContact)).toMatchObject({ ok: false, error: "Bad Contact" });
    // Refused before any field was read: the failure still carries them, readable, to address the 400.
    const failure = parseMessage(badTo);
    if (failure.ok) throw new Error("expected a failure");
    expect(failure.headers!.find((h) => h.key === "call-id")!.value).toBe(
      requestLines("OPTIONS").find((l) => l.startsWith("Call-ID:"))!.slice("Call-ID: ".length),
    );
  });

  it("a malformed field no one must check on receipt parses, and is answered 400 when a module reads it", () => {
    const text = request({ method: "REGISTER", extraHeaders: ["Expires: soon"] });
    expect(parseMessage(text).ok).toBe(true);
    const { ctx, host } = makeContext(text);
    expect(sanity("sanity_check", ctx, 1511, 7)).toBe(-1);
    expect(host.replies).toMatchObject([{ status: 400 }]);
  });
});

describe("lazy header fields: writing runs of untouched fields", () => {
  it("a parsed message's consecutive fields are one slice of the received text", () => {
    const text = inviteText();
    const m = parse(text);
    const all = receivedRun(m.headers, 0, m.headers.length)!;
    expect(all).toBe(m.headers.map((h) => h.raw).join(""));
    expect(text.startsWith(INVITE_LINES[0] + "\r\n" + all + "\r\n")).toBe(true);
    expect(receivedRun(m.headers, 2, 4)).toBe(m.headers[2]!.raw + m.headers[3]!.raw);
  });

  it("fields that are not consecutive, or not all from one parsed message, are joined field by field", () => {
    const m = parse(inviteText());
    const other = parse(sipText([...requestLines("OPTIONS"), "X-Other: 1"]));
    const handMade: Header = { name: "X-Hand", key: "x-hand", value: "made", raw: "X-Hand: made\r\n" };
    expect(receivedRun([m.headers[0]!, m.headers[2]!], 0, 2)).toBeUndefined();
    expect(receivedRun([m.headers[0]!, other.headers.at(-1)!], 0, 2)).toBeUndefined();
    expect(receivedRun([m.headers[0]!, handMade], 0, 2)).toBeUndefined();
    // A message whose list was changed by hand (as tests and modules build them) is written as listed.
    const mixed: SipMessage = { ...m, headers: [m.headers[0]!, handMade, ...m.headers.slice(2)] };
    const out = serializeMessage(mixed, emptyEdits(), { requestUri: "sip:x@y" });
    const head = out.slice(0, out.indexOf("\r\n\r\n") + 2);
    expect(head).toBe(`INVITE sip:x@y SIP/2.0\r\n` + mixed.headers.map((h) => h.raw).join(""));
  });
});

describe("what modules derive from a message stays with it (messageMemo)", () => {
  it("a parsed message's memo is its own; a hand-built copy gets another", () => {
    const a = parse(inviteText());
    const b = parse(inviteText());
    messageMemo(a)["test.slot"] = 1;
    expect(messageMemo(a)["test.slot"]).toBe(1);
    expect(messageMemo(b)["test.slot"]).toBeUndefined();
    const copy: SipMessage = { ...a, headers: [...a.headers] };
    expect(messageMemo(copy)["test.slot"]).toBeUndefined();
    messageMemo(copy)["test.slot"] = 2;
    expect(messageMemo(copy)["test.slot"]).toBe(2);
    expect(messageMemo(a)["test.slot"]).toBe(1);
  });

  it("toBody of a parsed message reads the From and To the parser checked; of a hand-built one parses what is there", () => {
    const m = parse(inviteText());
    expect(toBody(m, "from")!.tag).toBe(headerParam(fromHeader(m), "tag"));
    expect(toBody(m, "from")!.nameAddr).toEqual(parseNameAddr(m.headers.find((h) => h.key === "from")!.value));
    expect(toBody(m, "to")!.tag).toBeUndefined();
    const badTo: Header = { name: "To", key: "to", value: "<sip:b@h", raw: "To: <sip:b@h\r\n" };
    const handMade: SipMessage = { ...m, headers: m.headers.map((h) => (h.key === "to" ? badTo : h)) };
    expect(toBody(handMade, "to")).toBeNull();
    expect(toBody(handMade, "from")!.tag).toBe(toBody(m, "from")!.tag);
  });
});
