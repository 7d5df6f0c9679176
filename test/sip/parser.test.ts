import { describe, expect, it } from "vitest";
import {
  DEFAULT_PARSE_LIMITS,
  allVias,
  contentLength,
  firstHeader,
  fromHeader,
  headersByKey,
  parseCSeq,
  parseMessage,
  toHeader,
  topVia,
  type ParseResult,
} from "../../host/sip/parser.js";
import type { SipMessage } from "../../host/sip/message.js";
import { INVITE_LINES, SDP_BODY, inviteText, requestLines, sipText, withLine } from "./fixtures.js";

function ok(data: string): SipMessage {
  const r = parseMessage(data);
  if (!r.ok) throw new Error(`expected a valid message, got: ${r.error}`);
  return r.message;
}

function err(data: string): Extract<ParseResult, { ok: false }> {
  const r = parseMessage(data);
  if (r.ok) throw new Error("expected a parse failure");
  return r;
}

describe("parseMessage: requests", () => {
  it("parses a typical INVITE", () => {
    const text = inviteText();
    const m = ok(text);
    expect(m.kind).toBe("request");
    expect(m.method).toBe("INVITE");
    expect(m.requestUri).toBe("sip:bob@biloxi.example.com");
    expect(m.version).toBe("SIP/2.0");
    expect(m.status).toBe(0);
    expect(m.reason).toBe("");
    expect(m.startLine).toBe("INVITE sip:bob@biloxi.example.com SIP/2.0");
    expect(m.callId).toBe("a84b4c76e66710@pc33.atlanta.example.com");
    expect(m.cseq).toEqual({ seq: 314159, method: "INVITE" });
    expect(m.body).toBe(SDP_BODY);
    expect(m.raw).toBe(text);
    expect(m.headers.map((h) => h.key)).toEqual([
      "via", "max-forwards", "to", "from", "call-id", "cseq", "contact", "content-type", "content-length",
    ]);
    const from = m.headers[3]!;
    expect({ name: from.name, key: from.key, value: from.value, raw: from.raw }).toEqual({
      name: "From",
      key: "from",
      value: '"Alice" <sip:alice@atlanta.example.com>;tag=1928301774',
      raw: 'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774\r\n',
    });
    // Raw pieces rebuild the message exactly.
    expect(m.startLine + "\r\n" + m.headers.map((h) => h.raw).join("") + "\r\n" + m.body).toBe(text);
  });

  it("accepts sips and tel Request-URIs, and URIs with escapes", () => {
    expect(ok(sipText(requestLines("OPTIONS", "sips:bob@[2001:db8::1]:5061;transport=tcp"))).requestUri).toBe(
      "sips:bob@[2001:db8::1]:5061;transport=tcp",
    );
    expect(ok(sipText(requestLines("INVITE", "tel:+1-201-555-0123"))).requestUri).toBe("tel:+1-201-555-0123");
    expect(ok(sipText(requestLines("MESSAGE", "sip:%61lice@example.com;x=%20y"))).method).toBe("MESSAGE");
  });

  it("refuses URI headers in the Request-URI (§19.1.1, RFC 4475 §3.1.2.11)", () => {
    const r = parseMessage(sipText(requestLines("MESSAGE", "sip:%61lice@example.com?subject=hi%20there")));
    expect(r).toMatchObject({ ok: false, error: "Headers in Request-URI" });
  });

  it("accepts extension methods and ACK/CANCEL with their own CSeq method (§8.1.1.5)", () => {
    expect(ok(sipText(requestLines("PUBLISH"))).method).toBe("PUBLISH");
    expect(ok(sipText(requestLines("ACK"))).cseq.method).toBe("ACK");
    expect(ok(sipText(requestLines("CANCEL"))).cseq.method).toBe("CANCEL");
  });

  it("ignores CRLFs before the start line (§7.5)", () => {
    const text = inviteText();
    const m = ok("\r\n\r\n" + text);
    expect(m.raw).toBe(text);
    expect(m.startLine).toBe(INVITE_LINES[0]);
  });
});

describe("parseMessage: responses", () => {
  const responseLines = (status: string) => [
    status,
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc123;received=192.0.2.1",
    "From: <sip:alice@example.com>;tag=aaa",
    "To: <sip:bob@example.com>;tag=bbb",
    "Call-ID: call-1@192.0.2.1",
    "CSeq: 7 INVITE",
    "Content-Length: 0",
  ];

  it("parses the status line; method comes from CSeq", () => {
    const m = ok(sipText(responseLines("SIP/2.0 180 Ringing")));
    expect(m).toMatchObject({ kind: "response", status: 180, reason: "Ringing", method: "INVITE", requestUri: "" });
  });

  it("allows an empty or UTF-8 reason phrase, kept as bytes", () => {
    expect(ok(sipText(responseLines("SIP/2.0 200 "))).reason).toBe("");
    expect(ok(sipText(responseLines("SIP/2.0 200"))).reason).toBe("");
    const utf8 = Buffer.from("Très bien", "utf8").toString("latin1");
    const m = ok(sipText(responseLines(`SIP/2.0 200 ${utf8}`)));
    expect(Buffer.from(m.reason, "latin1").toString("utf8")).toBe("Très bien");
    expect(ok(sipText(responseLines("sip/2.0 404 Not Found"))).status).toBe(404);
  });

  it.each(["SIP/2.0 099 Low", "SIP/2.0 700 High", "SIP/2.0 20 Short", "SIP/2.0 2000 Long", "SIP/2.0 2x0 Bad", "SIP/2.0 200OK", "SIP/2.0"])(
    "rejects status line %j",
    (line) => {
      const e = err(sipText(responseLines(line)));
      expect(e.error).toBe("Bad status line");
      expect(e.kind).toBe("response");
      expect(e.method).toBe("INVITE");
    },
  );

  it("reports an unsupported version distinctly", () => {
    expect(err(sipText(responseLines("SIP/3.0 200 OK"))).error).toBe("Version Not Supported");
  });
});

describe("parseMessage: header fields (§7.3)", () => {
  it("joins folded continuation lines with one space and keeps their raw bytes", () => {
    const lines = withLine(INVITE_LINES, "Contact", "Contact: <sip:alice@pc33.atlanta.example.com>\r\n  ;expires=60,\r\n\t<sip:alice@192.0.2.9> ");
    const text = sipText([...lines, "Subject: I know you're there,\r\n   pick up the phone", "Content-Length: 0"]);
    const m = ok(text);
    const contact = firstHeader(m, "contact")!;
    expect(contact.value).toBe("<sip:alice@pc33.atlanta.example.com> ;expires=60, <sip:alice@192.0.2.9>");
    expect(contact.raw).toBe("Contact: <sip:alice@pc33.atlanta.example.com>\r\n  ;expires=60,\r\n\t<sip:alice@192.0.2.9> \r\n");
    expect(firstHeader(m, "subject")!.value).toBe("I know you're there, pick up the phone");
    expect(m.startLine + "\r\n" + m.headers.map((h) => h.raw).join("") + "\r\n").toBe(text);
  });

  it("expands compact forms and matches names case-insensitively", () => {
    const text = sipText([
      "OPTIONS sip:b@example.com SIP/2.0",
      "v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
      "VIA: SIP/2.0/TCP 192.0.2.2;branch=z9hG4bK2",
      "f: <sip:a@example.com>;tag=1",
      "t: sip:b@example.com",
      "i: cid",
      "cSeQ: 2 OPTIONS",
      "m: <sip:a@192.0.2.1>",
      "k: path, gruu",
      "l: 0",
    ]);
    const m = ok(text);
    expect(m.headers.map((h) => h.key)).toEqual(["via", "via", "from", "to", "call-id", "cseq", "contact", "supported", "content-length"]);
    expect(m.headers.map((h) => h.name)).toEqual(["v", "VIA", "f", "t", "i", "cSeQ", "m", "k", "l"]);
    expect(m.callId).toBe("cid");
    expect(headersByKey(m, "Via").map((h) => h.value)).toEqual(["SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1", "SIP/2.0/TCP 192.0.2.2;branch=z9hG4bK2"]);
    expect(firstHeader(m, "v")?.name).toBe("v");
    expect(firstHeader(m, "CONTENT-LENGTH")?.value).toBe("0");
    expect(contentLength(m)).toBe(0);
    expect(allVias(m).map((v) => v.branch)).toEqual(["z9hG4bK1", "z9hG4bK2"]);
  });

  it("allows whitespace before the colon and empty values", () => {
    const m = ok(sipText([...requestLines("OPTIONS"), "Subject  :", "X-Empty:   ", "Organization\t: Example"]));
    expect(firstHeader(m, "subject")?.value).toBe("");
    expect(firstHeader(m, "x-empty")?.value).toBe("");
    expect(firstHeader(m, "organization")?.value).toBe("Example");
  });

  it("reads several via-parms in one field; topVia is the first", () => {
    const lines = withLine(
      requestLines("BYE"),
      "Via:",
      "Via: SIP/2.0/UDP first.example.com;branch=z9hG4bKtop;rport, SIP/2.0/UDP second.example.com:5070;branch=z9hG4bK2nd",
    );
    const m = ok(sipText(lines));
    expect(topVia(m)).toMatchObject({ host: "first.example.com", branch: "z9hG4bKtop", rport: "" });
    expect(allVias(m)).toHaveLength(2);
    expect(allVias(m)[1]).toMatchObject({ host: "second.example.com", port: 5070 });
  });

  it("exposes parsed From and To", () => {
    const m = ok(inviteText());
    expect(fromHeader(m)).toEqual({
      displayName: "Alice",
      uri: "sip:alice@atlanta.example.com",
      params: [{ name: "tag", value: "1928301774" }],
    });
    expect(toHeader(m)).toEqual({ displayName: "Bob", uri: "sip:bob@biloxi.example.com", params: [] });
  });

  it("derives the parsed fields for copies of a message (no hidden state required)", () => {
    const m = ok(inviteText());
    const copy: SipMessage = { ...m, headers: [...m.headers] };
    expect(fromHeader(copy)).toEqual(fromHeader(m));
    expect(toHeader(copy)).toEqual(toHeader(m));
    expect(topVia(copy)).toEqual(topVia(m));
    expect(contentLength(copy)).toBe(SDP_BODY.length);
    const noFrom: SipMessage = { ...m, headers: m.headers.filter((h) => h.key !== "from") };
    expect(() => fromHeader(noFrom)).toThrow(/From/);
  });

  it("reads From/To in addr-spec form with header params (§20.10)", () => {
    const m = ok(sipText(withLine(requestLines("OPTIONS"), "From:", "From: sip:alice@example.com;tag=xyz")));
    expect(fromHeader(m)).toEqual({ uri: "sip:alice@example.com", params: [{ name: "tag", value: "xyz" }] });
  });

  it.each([
    [" Via: SIP/2.0/UDP x", "Bad header folding"],
    ["Bad Name: x", "Bad header name"],
    ["NoColon", "Bad header name"],
    [": novalue", "Bad header name"],
    ["X-\u00e9: utf8 name", "Bad header name"],
  ])("rejects the header line %j", (line, error) => {
    const lines = requestLines("OPTIONS");
    const text = sipText([lines[0]!, line, ...lines.slice(1)]);
    expect(err(text).error).toBe(error);
  });

  it("rejects bare LF and bare CR line endings", () => {
    expect(err(inviteText().replace("Max-Forwards: 70\r\n", "Max-Forwards: 70\n")).error).toBe("Bad line ending");
    expect(err(inviteText().replace("Max-Forwards: 70\r\n", "Max-Forwards: 7\r0\r\n")).error).toBe("Bad line ending");
    expect(err("OPTIONS sip:a@b SIP/2.0\n\n").error).toBe("Bad line ending");
  });

  it("rejects a message without the empty line after the headers", () => {
    const lines = requestLines("OPTIONS");
    expect(err(lines.join("\r\n") + "\r\n").error).toBe("Missing end of headers");
    expect(err(lines.join("\r\n")).error).toBe("Missing end of headers");
    expect(err("").error).toBe("Missing end of headers");
  });
});

describe("parseMessage: whitespace and folding everywhere (in the spirit of RFC 4475 §3.1.1.2)", () => {
  const body = "v=0\r\n";
  const text = sipText([
    "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0",
    "TO :\r\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
    'from   : "J Rosenberg \\\\\\\""       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8',
    "MaX-fOrWaRdS: 0068",
    "Call-ID: wsinv.ndaksdj@192.0.2.1",
    "Content-Length   : " + body.length,
    "cseq: 0009\r\n  INVITE",
    "Via  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw",
    "s :",
    "NewFangledHeader:   newfangled value\r\n continued newfangled value",
    "UnknownHeaderWithUnusualValue: ;;,,;;,;",
    "Route:\r\n <sip:services.example.com;lr;unknownwith=value;unknown-no-value>",
    "v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239",
    'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =\r\n      newvalue ;\r\n  secondparam ; q = 0.33',
  ], body);

  it("parses and reads every field", () => {
    const m = ok(text);
    expect(m.cseq).toEqual({ seq: 9, method: "INVITE" });
    expect(toHeader(m)).toEqual({ uri: "sip:vivekg@chair-dnrc.example.com", params: [{ name: "tag", value: "1918181833n" }] });
    expect(fromHeader(m)).toEqual({ displayName: 'J Rosenberg \\"', uri: "sip:jdrosen@example.com", params: [{ name: "tag", value: "98asjd8" }] });
    expect(allVias(m).map((v) => [v.transport, v.host, v.branch])).toEqual([
      ["UDP", "192.0.2.2", "390skdjuw"],
      ["TCP", "spindle.example.com", "z9hG4bK9ikj8"],
      ["UDP", "192.168.255.111", "z9hG4bK30239"],
    ]);
    expect(firstHeader(m, "subject")?.value).toBe("");
    expect(firstHeader(m, "newfangledheader")?.value).toBe("newfangled value continued newfangled value");
    expect(firstHeader(m, "contact")?.value).toBe('"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam = newvalue ; secondparam ; q = 0.33');
    expect(m.body).toBe(body);
    expect(m.startLine + "\r\n" + m.headers.map((h) => h.raw).join("") + "\r\n" + m.body).toBe(text);
  });
});

describe("parseMessage: request line", () => {
  it.each([
    ["INVITE  sip:a@b SIP/2.0", "Bad request line"],
    ["INVITE sip:a@b", "Bad request line"],
    ["INVITE sip:a@b SIP/2.0 extra", "Bad request line"],
    ["INV(TE sip:a@b SIP/2.0", "Bad request line"],
    ["INVITE sip:a@b SIP/20", "Bad request line"],
    ["INVITE sip:a@b SIP/3.0", "Version Not Supported"],
    ["INVITE sip:a@b HTTP/1.1", "Bad request line"],
    ["INVITE sip:a b@c SIP/2.0", "Bad request line"],
    ["INVITE sip:@b SIP/2.0", "Bad Request-URI"],
    ["INVITE http://example.com/ SIP/2.0", "Unsupported URI Scheme"],
    ["INVITE soap.beep://192.0.2.103:3002 SIP/2.0", "Unsupported URI Scheme"],
    ["INVITE <sip:a@b> SIP/2.0", "Bad Request-URI"],
    ["INVITE 1http:x SIP/2.0", "Bad Request-URI"],
    ["INVITE sip:a@b:99999 SIP/2.0", "Bad Request-URI"],
  ])("rejects %j as %j, still returning headers and method", (line, error) => {
    const lines = requestLines("INVITE");
    const e = err(sipText([line, ...lines.slice(1)]));
    expect(e.error).toBe(error);
    expect(e.kind).toBe("request");
    expect(e.headers?.map((h) => h.key)).toContain("via");
    if (line.startsWith("INVITE ")) expect(e.method).toBe("INVITE");
  });

  it("accepts a lowercase SIP-Version literal", () => {
    expect(ok(sipText(["OPTIONS sip:a@b sip/2.0", ...requestLines("OPTIONS").slice(1)])).version).toBe("sip/2.0");
  });
});

describe("parseMessage: mandatory headers (§8.1.1)", () => {
  it.each([
    ["Via:", "Missing Via"],
    ["From:", "Missing From"],
    ["To:", "Missing To"],
    ["Call-ID:", "Missing Call-ID"],
    ["CSeq:", "Missing CSeq"],
  ])("reports a missing %s header", (prefix, error) => {
    const e = err(sipText(withLine(requestLines("INVITE"), prefix, undefined)));
    expect(e.error).toBe(error);
    expect(e.method).toBe("INVITE");
    expect(e.headers!.length).toBe(requestLines("INVITE").length - 2);
  });

  it.each([
    ["Via: SIP/2.0/UDP", "Bad Via"],
    ["Via: SIP/2.0/UDP host;ttl=999", "Bad Via"],
    ["Via: ", "Bad Via"],
    ["From: <sip:alice@example.com", "Bad From"],
    ["From: ", "Bad From"],
    ["To: garbage", "Bad To"],
    ["Call-ID: has space", "Bad Call-ID"],
    ["Call-ID: ", "Bad Call-ID"],
    ["CSeq: INVITE", "Bad CSeq"],
    ["CSeq: 1", "Bad CSeq"],
    ["CSeq: 1INVITE", "Bad CSeq"],
    ["CSeq: -1 INVITE", "Bad CSeq"],
    ["CSeq: 2147483648 INVITE", "Bad CSeq"],
    ["CSeq: 12345678901 INVITE", "Bad CSeq"],
    ["CSeq: 1 INVITE x", "Bad CSeq"],
    ["CSeq: 1 BYE", "CSeq method mismatch"],
    ["CSeq: 1 invite", "CSeq method mismatch"],
    ["Max-Forwards: ten", "Bad Max-Forwards"],
    ["Max-Forwards: 256", "Bad Max-Forwards"],
    ["Max-Forwards: -1", "Bad Max-Forwards"],
    ["Content-Length: 1.5", "Bad Content-Length"],
    ["Content-Length: -3", "Bad Content-Length"],
    ["Content-Length: ", "Bad Content-Length"],
  ])("rejects %j as %j", (line, error) => {
    const prefix = line.slice(0, line.indexOf(":") + 1);
    expect(err(sipText(withLine(requestLines("INVITE"), prefix, line))).error).toBe(error);
  });

  it("accepts leading zeros in CSeq, Max-Forwards and Content-Length (1*DIGIT)", () => {
    const lines = withLine(withLine(requestLines("INVITE"), "CSeq:", "CSeq: 000000000000042 INVITE"), "Max-Forwards:", "Max-Forwards: 000070");
    const m = ok(sipText(withLine(lines, "Content-Length:", "Content-Length: 0000000000000003"), "abc"));
    expect(m.cseq.seq).toBe(42);
    expect(m.body).toBe("abc");
    expect(contentLength(m)).toBe(3);
  });

  it("accepts the CSeq boundary value 2^31-1 and Max-Forwards 0 and 255", () => {
    expect(ok(sipText(withLine(requestLines("INVITE"), "CSeq:", "CSeq: 2147483647 INVITE"))).cseq.seq).toBe(2147483647);
    expect(ok(sipText(withLine(requestLines("INVITE"), "Max-Forwards:", "Max-Forwards: 0"))).method).toBe("INVITE");
    expect(ok(sipText(withLine(requestLines("INVITE"), "Max-Forwards:", "Max-Forwards: 255"))).method).toBe("INVITE");
    expect(ok(sipText(withLine(requestLines("INVITE"), "Max-Forwards:", undefined))).method).toBe("INVITE");
  });

  it("rejects a second From, To, Call-ID, CSeq or Content-Length", () => {
    for (const extra of ["From: <sip:x@y>;tag=2", "To: <sip:x@y>", "Call-ID: other", "CSeq: 2 INVITE", "Content-Length: 0"]) {
      const name = extra.slice(0, extra.indexOf(":"));
      expect(err(sipText([...requestLines("INVITE"), extra])).error).toBe(`Duplicate ${name}`);
    }
  });
});

describe("parseMessage: body and Content-Length (§7.4, §18.3)", () => {
  it("takes the body after the empty line", () => {
    expect(ok(inviteText()).body).toBe(SDP_BODY);
    expect(ok(inviteText("")).body).toBe("");
  });

  it("discards datagram bytes beyond Content-Length", () => {
    const text = sipText([...INVITE_LINES, "Content-Length: 4"], "v=0\r\nEXTRA GARBAGE");
    const m = ok(text);
    expect(m.body).toBe("v=0\r");
    expect(m.raw).toBe(text);
  });

  it("rejects a Content-Length larger than the body", () => {
    expect(err(sipText([...INVITE_LINES, `Content-Length: ${SDP_BODY.length + 1}`], SDP_BODY)).error).toBe("Content-Length mismatch");
  });

  it("takes everything after the headers when Content-Length is absent", () => {
    const m = ok(sipText(INVITE_LINES, SDP_BODY));
    expect(m.body).toBe(SDP_BODY);
    expect(contentLength(m)).toBeUndefined();
  });

  it("keeps binary bodies byte for byte", () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString("latin1");
    const m = ok(sipText([...INVITE_LINES, "Content-Length: 256"], bytes));
    expect(m.body).toBe(bytes);
  });
});

describe("parseMessage: limits", () => {
  it("enforces maxMessageBytes and names it", () => {
    const text = inviteText();
    const tight = { maxMessageBytes: text.length - 1, maxHeaders: 256 };
    const r = parseMessage(text, tight);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toBe(`Message too large (maxMessageBytes ${text.length - 1})`);
    expect(parseMessage(text, { maxMessageBytes: text.length, maxHeaders: 256 }).ok).toBe(true);
    // The default limit is 65535 bytes.
    const big = sipText([...INVITE_LINES, "Content-Length: 70000"], "x".repeat(70000));
    expect(err(big).error).toBe("Message too large (maxMessageBytes 65535)");
  });

  it("enforces maxHeaders and names it", () => {
    const lines = requestLines("OPTIONS");
    const headerCount = lines.length - 1;
    const many = [...lines, ...Array.from({ length: 300 }, (_, i) => `X-H${i}: ${i}`)];
    expect(err(sipText(many)).error).toBe(`Too many headers (maxHeaders ${DEFAULT_PARSE_LIMITS.maxHeaders})`);
    const r = parseMessage(sipText(lines), { maxMessageBytes: 65535, maxHeaders: headerCount - 1 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toBe(`Too many headers (maxHeaders ${headerCount - 1})`);
    expect(parseMessage(sipText(lines), { maxMessageBytes: 65535, maxHeaders: headerCount }).ok).toBe(true);
  });
});

describe("parseCSeq", () => {
  it("parses number and method with any LWS between", () => {
    expect(parseCSeq("1\t INVITE")).toEqual({ seq: 1, method: "INVITE" });
    expect(parseCSeq("0 X-EXT")).toEqual({ seq: 0, method: "X-EXT" });
    expect(parseCSeq("")).toBeNull();
  });
});
