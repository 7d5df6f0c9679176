/**
 * Path per branch (RFC 3327 §5.3): with several bindings of an AoR, each
 * registered through another edge proxy, lookup() + t_relay() sends every
 * branch to its own binding's first Path hop with that binding's Path, and
 * only it, as Route (Kamailio keeps a path vector per branch). Before, every
 * appended branch carried the best binding's Path.
 */
import { afterEach, describe, expect, it } from "vitest";
import { headerValues, loadScriptSource, type ScriptHarness } from "../../host/testing/index.js";

const harnesses: ScriptHarness[] = [];
afterEach(() => {
  for (const h of harnesses.splice(0)) h.close();
});

const SCRIPT = `
function ksr_request_route() {
  if (KSR.is_REGISTER()) {
    KSR.registrar.save("location", 0);
    return;
  }
  if (KSR.registrar.lookup("location") < 0) {
    KSR.sl.sl_send_reply(404, "Not Found");
    return;
  }
  KSR.corex.append_branch_uri("sip:voicemail@127.0.0.1:5090");
  KSR.tm.t_relay();
}`;

describe("registrar Path with several bindings", () => {
  it("gives each branch its own binding's Path as Route and first hop; a branch appended after lookup keeps the R-URI's", async () => {
    const h = await loadScriptSource(SCRIPT, "path.js");
    harnesses.push(h);
    const paths = { "sip:bob@192.0.2.21:5062": "<sip:127.0.0.2:5070;lr>", "sip:bob@192.0.2.22:5062": "<sip:127.0.0.3:5070;lr>" };
    let cseq = 1;
    for (const [contact, path] of Object.entries(paths)) {
      const r = await h.send({
        method: "REGISTER",
        ruri: "sip:example.com",
        to: "<sip:bob@example.com>",
        from: "<sip:bob@example.com>;tag=r" + cseq,
        callId: `reg-${contact}`,
        cseq: cseq++,
        contact: `<${contact}>;q=${contact.endsWith("21:5062") ? "0.9" : "0.5"}`,
        headers: [`Path: ${path}`, "Supported: path"],
      });
      expect(r.replies.map((x) => x.status)).toEqual([200]);
    }
    const r = await h.send({ method: "INVITE", ruri: "sip:bob@example.com" });
    const sent = r.forwarded.filter((f) => f.kind === "request").map((f) => ({
      uri: f.requestUri,
      to: `${f.destination.ip}:${f.destination.port}`,
      routes: headerValues(f, "route"),
    }));
    expect(sent).toEqual([
      { uri: "sip:bob@192.0.2.21:5062", to: "127.0.0.2:5070", routes: ["<sip:127.0.0.2:5070;lr>"] },
      { uri: "sip:bob@192.0.2.22:5062", to: "127.0.0.3:5070", routes: ["<sip:127.0.0.3:5070;lr>"] },
      { uri: "sip:voicemail@127.0.0.1:5090", to: "127.0.0.2:5070", routes: ["<sip:127.0.0.2:5070;lr>"] },
    ]);
  });
});
