/**
 * Fuzz targets: each takes arbitrary bytes and throws when a property the
 * code promises does not hold (an exception escaping a parser counts too).
 * scripts/fuzz.mjs runs them coverage-guided (`npm run fuzz -- --target
 * parser --time 60`); test/fuzz/regressions.test.ts replays every input
 * kept in test/fuzz/regressions/<target>/ and the seeds through them, so an
 * input the fuzzer found failing stays a failing test until fixed.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseCredentials } from "../../host/modules/msgutil.js";
import { parseSdpBody } from "../../host/modules/nathelper.js";
import { StreamFramer, type FramedItem } from "../../host/sip/framing.js";
import { splitHeaderValues } from "../../host/sip/headers.js";
import { formatNameAddr, parseNameAddr } from "../../host/sip/nameaddr.js";
import { parseMessage } from "../../host/sip/parser.js";
import { serializeMessage } from "../../host/sip/serialize.js";
import { formatUri, parseUri } from "../../host/sip/uri.js";
import { formatVia, parseVia } from "../../host/sip/via.js";
import { handshakeRefusal } from "../../host/transport/ws.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RFC4475 = path.join(HERE, "..", "rfc4475", "messages");

export interface FuzzTarget {
  /** What the target checks. */
  readonly about: string;
  /** Inputs to start from. */
  seeds(): Buffer[];
  /** Throws when a property is violated. */
  run(data: Buffer): void;
}

export class PropertyViolation extends Error {}

function check(ok: boolean, what: string): void {
  if (!ok) throw new PropertyViolation(what);
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

const latin1 = (data: Buffer): string => data.toString("latin1");

/** The RFC 4475 messages and a few ordinary ones. */
function messageSeeds(): Buffer[] {
  const files = fs.readdirSync(RFC4475).filter((f) => f.endsWith(".dat"));
  return files.map((f) => fs.readFileSync(path.join(RFC4475, f)));
}

const bytes = (texts: readonly string[]): Buffer[] => texts.map((t) => Buffer.from(t, "latin1"));

function fieldsOf(m: { kind: string; startLine: string; headers: readonly { name: string; value: string }[]; body: string }): unknown {
  return { kind: m.kind, startLine: m.startLine, headers: m.headers.map((h) => [h.name, h.value]), body: m.body };
}

function messagesOf(items: readonly FramedItem[]): string[] {
  return items.flatMap((x) => (x.kind === "message" ? [x.data] : x.kind === "error" ? [`<error ${x.error}>`] : []));
}

export const TARGETS: Readonly<Record<string, FuzzTarget>> = {
  parser: {
    about: "parseMessage: a message that parses re-serialises to bytes that parse to the same fields; a failure has a specific reason",
    seeds: messageSeeds,
    run(data) {
      const text = latin1(data);
      const r = parseMessage(text);
      if (!r.ok) {
        check(r.error.length > 0 && r.error !== "Malformed message", `unspecific parse error "${r.error}"`);
        return;
      }
      const wire = serializeMessage(r.message);
      const again = parseMessage(wire);
      check(again.ok, `re-serialised message does not parse: ${again.ok ? "" : again.error}`);
      if (again.ok) check(same(fieldsOf(again.message), fieldsOf(r.message)), "re-serialised message parses to other fields");
    },
  },
  framer: {
    about: "StreamFramer: the same items whether the bytes come at once or one by one",
    seeds: messageSeeds,
    run(data) {
      const limits = { maxMessageBytes: 8192, maxHeaders: 64 };
      const whole = new StreamFramer(limits).push(data);
      const split = new StreamFramer(limits);
      const pieces: FramedItem[] = [];
      // Cut points from the data itself, so the fuzzer controls them.
      const step = 1 + (data.length > 0 ? data[0]! % 7 : 0);
      for (let at = 0; at < data.length; at += step) pieces.push(...split.push(data.subarray(at, at + step)));
      check(same(messagesOf(pieces), messagesOf(whole)), "split framing differs from whole framing");
      let framed = 0;
      for (const m of messagesOf(whole)) if (!m.startsWith("<error")) framed += m.length;
      check(framed <= data.length, "framed more bytes than were pushed");
    },
  },
  uri: {
    about: "parseUri: a URI that parses formats back to text that parses to the same URI",
    seeds: () =>
      bytes([
        "sip:alice:pw@[2001:db8::1]:5060;transport=tcp;lr?subject=a%20b&x=y",
        "sips:bob@example.com",
        "tel:+1-201-555-0123;ext=12;phone-context=example.com",
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
        "sip:user;par=u%40example.net@example.com",
      ]),
    run(data) {
      const u = parseUri(latin1(data));
      if (u === null) return;
      const text = formatUri(u);
      check(same(parseUri(text), u), `formatUri(${JSON.stringify(text)}) parses to another URI`);
    },
  },
  nameaddr: {
    about: "parseNameAddr: a value that parses formats back to text that parses to the same name-addr",
    seeds: () =>
      bytes([
        '"Quoted \\"x\\"" <sip:a@b;lr>;tag=1;+sip.instance="<urn:x>"',
        "sip:caller@example.net;tag=141334",
        "caller<sip:caller@example.com>;tag=323",
        "<sip:%00@host5.example.com>;expires=60;q=0.5",
      ]),
    run(data) {
      const na = parseNameAddr(latin1(data));
      if (na === null) return;
      const text = formatNameAddr(na);
      // An empty quoted display name says what no display name says: the
      // formatter leaves it out (RFC 3261 §25.1 display-name).
      const normal = (x: typeof na | null) => (x !== null && x.displayName === "" ? { uri: x.uri, params: x.params } : x);
      check(same(normal(parseNameAddr(text)), normal(na)), `formatNameAddr(${JSON.stringify(text)}) parses to another name-addr`);
      splitHeaderValues(latin1(data));
    },
  },
  via: {
    about: "parseVia: via-parms that parse format back to text that parses to the same via-parms",
    seeds: () =>
      bytes([
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport;received=[::1], SIP/2.0/TCP h;ttl=1",
        "SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw",
        "SIP/2.0/TLS [2001:db8::9:1]:5061;branch=z9hG4bKx;maddr=224.2.0.1",
      ]),
    run(data) {
      const vias = parseVia(latin1(data));
      if (vias.length === 0) return;
      const text = vias.map(formatVia).join(", ");
      check(same(parseVia(text), vias), `formatVia gave ${JSON.stringify(text)}, which parses to other via-parms`);
    },
  },
  sdp: {
    about: "SDP c= lines: one stream per m= line, every address found is on a c= line of the body",
    seeds: () =>
      bytes([
        "v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n",
        "v=0\nc=IN IP6 ::\nm=audio 1 RTP/AVP 0\nc=IN IP4 10.0.0.1/127\n",
      ]),
    run(data) {
      const body = latin1(data);
      const sdp = parseSdpBody(body);
      const lines = body.split(/\r?\n/);
      check(sdp.streams.length === lines.filter((l) => l.startsWith("m=")).length, "stream count differs from the m= lines");
      const cLines = lines.filter((l) => l.startsWith("c="));
      for (const c of [sdp.connection, ...sdp.streams.map((s) => s.connection)]) {
        if (c !== undefined) check(cLines.some((l) => l.includes(c.address)), `address ${c.address} is on no c= line`);
      }
    },
  },
  "ws-handshake": {
    about:
      "handshakeRefusal: never throws; a handshake is accepted only with the sip subprotocol, a listed path and a listed Origin; a refusal is 400, 403 or 404",
    // Three lines: request target, Origin, Sec-WebSocket-Protocol.
    seeds: () => bytes(["/sip\nhttps://app.example.test\nsip", "/sip?x=1\nhttps://evil.example\nsip, chat", "/other\n\n", "%zz\nnull\nSIP"]),
    run(data) {
      const [url = "", origin = "", protocols = ""] = latin1(data).split("\n");
      const settings = { allowedPaths: ["/sip"], allowedOrigins: ["https://app.example.test"] };
      const headers = { origin: origin === "" ? undefined : origin, "sec-websocket-protocol": protocols === "" ? undefined : protocols };
      const refusal = handshakeRefusal({ url, headers }, settings);
      if (refusal !== undefined) {
        check([400, 403, 404].includes(refusal.status), `status ${refusal.status}`);
        return;
      }
      let path: string | undefined;
      try {
        path = new URL(url, "http://localhost").pathname;
      } catch {
        path = undefined;
      }
      check(path === "/sip", `accepted path ${JSON.stringify(path)}`);
      check(origin === "https://app.example.test", `accepted Origin ${JSON.stringify(origin)}`);
      check(protocols.split(",").some((p) => p.trim().toLowerCase() === "sip"), `accepted subprotocols ${JSON.stringify(protocols)}`);
    },
  },
  digest: {
    about: "parseCredentials: parameter values are found verbatim in the header (quoted ones unescaped)",
    seeds: () =>
      bytes([
        'Digest username="alice",realm="127.0.0.1",cnonce="6b8b4567",nc=00000001,qop=auth,uri="sip:127.0.0.1:15099",nonce="abc123",response="625cb2b97021fe35e3298ab8ed623bbb",algorithm=MD5;',
        'Digest username="a\\"b", realm=example.com ,, nonce = "x" ; opaque=""',
        "NoOneKnowsThisScheme opaque-data=here",
      ]),
    run(data) {
      const text = latin1(data);
      const c = parseCredentials(text);
      if (c === null) return;
      for (const [name, value] of c.params) {
        check(name.length > 0 && text.toLowerCase().includes(name), `parameter name ${JSON.stringify(name)} not in the header`);
        const unescapedSource = text.replace(/\\([\s\S])/g, "$1");
        check(text.includes(value) || unescapedSource.includes(value), `value ${JSON.stringify(value)} not in the header`);
      }
      check(c.username === c.params.get("username"), "username differs from its parameter");
    },
  },
};
