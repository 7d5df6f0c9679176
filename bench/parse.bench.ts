/**
 * Parser micro-benchmark (not a test):
 *   npx vitest bench --run bench/parse.bench.ts
 * Input strings are made flat the way the transport produces them
 * (Buffer → latin1 string), not concatenation ropes.
 */
import { bench, describe } from "vitest";
import { allVias, fromHeader, parseMessage, toHeader } from "../host/sip/parser.js";
import { serializeMessage } from "../host/sip/serialize.js";
import { emptyEdits } from "../host/sip/message.js";
import { StreamFramer } from "../host/sip/framing.js";
import { inviteText, requestLines, sipText } from "../test/sip/fixtures.js";

const flat = (s: string): string => Buffer.from(s, "latin1").toString("latin1");

const invite = flat(inviteText());
const options = flat(sipText(requestLines("OPTIONS")));
const parsedInvite = (() => {
  const r = parseMessage(invite);
  if (!r.ok) throw new Error(r.error);
  return r.message;
})();
const proxyEdits = emptyEdits();
proxyEdits.insertedBefore.set(0, ["Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKproxy1\r\n"]);
proxyEdits.replaced.set(1, "Max-Forwards: 69\r\n");
const streamBytes = Buffer.from(invite + options + invite, "latin1");
const response200 = flat(
  sipText(
    [
      "SIP/2.0 200 OK",
      "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKproxy1",
      "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;received=192.0.2.1",
      "Record-Route: <sip:192.0.2.10;lr>",
      "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf",
      "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
      "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
      "CSeq: 314159 INVITE",
      "Contact: <sip:bob@192.0.2.4>",
      "Content-Type: application/sdp",
      "Content-Length: 0",
    ],
    "",
  ),
);
const responseEdits = emptyEdits();
responseEdits.replaced.set(0, "");

describe("sip", () => {
  bench("parseMessage: typical INVITE with SDP", () => {
    parseMessage(invite);
  });
  bench("parseMessage: OPTIONS", () => {
    parseMessage(options);
  });
  bench("serializeMessage: INVITE with a Via added and Max-Forwards replaced", () => {
    serializeMessage(parsedInvite, proxyEdits);
  });
  // What a stateful relay does with each message: parse, read what
  // transaction matching reads (Vias, From and To tags, Call-ID, CSeq),
  // write it on with its edits and turn that into the datagram's bytes.
  bench("relay an INVITE: parse, read the matching fields, add a Via, to bytes", () => {
    const r = parseMessage(invite);
    if (!r.ok) throw new Error(r.error);
    allVias(r.message);
    fromHeader(r.message);
    toHeader(r.message);
    Buffer.from(serializeMessage(r.message, proxyEdits), "latin1");
  });
  bench("relay a 200: parse, read the matching fields, remove our Via, to bytes", () => {
    const r = parseMessage(response200);
    if (!r.ok) throw new Error(r.error);
    allVias(r.message);
    toHeader(r.message);
    Buffer.from(serializeMessage(r.message, responseEdits), "latin1");
  });
  bench("StreamFramer: three messages in one chunk", () => {
    new StreamFramer().push(streamBytes);
  });
});

// Inputs built to hit quadratic behaviour in a naive parser (long folded
// white space, thousands of parameters, unbalanced quotes and brackets): each
// should cost about as much per byte as an ordinary message. The tests check
// their outcome (test/sip/robustness.test.ts), this measures their time.
const pathological: [string, string][] = [
  ["60 KB of folded white space in one value", sipText([...requestLines("OPTIONS"), "Subject: a" + " ".repeat(30000) + "\r\n" + " ".repeat(30000) + "b"])],
  ["30 000 SP/HT pairs", sipText([...requestLines("OPTIONS"), "X: " + " \t".repeat(30000) + "x"])],
  ["20 000 R-URI parameters", sipText(["OPTIONS sip:a@b" + ";x".repeat(20000) + " SIP/2.0", ...requestLines("OPTIONS").slice(1)])],
  ["12 000 Via parameters", sipText([...requestLines("OPTIONS"), "Via: SIP/2.0/UDP h" + ";a=b".repeat(12000)])],
  ["20 000 unbalanced quotes in From", sipText([...requestLines("OPTIONS"), "From: " + '"\\'.repeat(20000)])],
  ["30 000 CRLFs", "\r\n".repeat(30000)],
].map(([name, text]) => [name!, flat(text!)]);

describe("sip, pathological inputs (per parse and per framing)", () => {
  for (const [name, text] of pathological) {
    const bytes = Buffer.from(text!, "latin1");
    bench(`parseMessage: ${name} (${text!.length} bytes)`, () => {
      parseMessage(text!);
    });
    bench(`StreamFramer: ${name}`, () => {
      new StreamFramer().push(bytes);
    });
  }
});
