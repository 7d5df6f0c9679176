import { afterEach, describe, expect, it } from "vitest";
import { kxModule, setKxEnvAllowList } from "../../host/modules/kx.js";
import { makeContext, request, response } from "../helpers/context.js";
import { caller } from "./call.js";

const call = caller(kxModule);

describe("kx getters on a request", () => {
  const text = request({
    method: "REGISTER",
    uri: "sip:example.org",
    extraHeaders: [
      "Contact: <sip:alice@10.0.0.1:5070;ob>;expires=60",
      'Authorization: Digest username="alice", realm="example.org", nonce="n", uri="sip:example.org", response="r"',
    ],
    body: "hello",
  });

  it("R-URI, From, To, Contact and transport values", () => {
    const { ctx } = makeContext(text, { rcv: { proto: "tcp", connectionId: 17, srcIp: "10.0.0.1", srcPort: 40000 } });
    expect(call("get_ruri", ctx)).toBe("sip:example.org");
    expect(call("get_ruser", ctx)).toBeNull();
    expect(call("gete_ruser", ctx)).toBe("");
    expect(call("getw_ruser", ctx)).toBe("<null>");
    expect(call("get_rhost", ctx)).toBe("example.org");
    expect(call("get_furi", ctx)).toBe("sip:alice@example.com");
    expect(call("get_fuser", ctx)).toBe("alice");
    expect(call("get_thost", ctx)).toBe("example.org");
    expect(call("get_cturi", ctx)).toBe("sip:alice@10.0.0.1:5070;ob");
    expect(call("get_srcip", ctx)).toBe("10.0.0.1");
    expect(call("get_srcport", ctx)).toBe(40000);
    expect(call("get_srcuri", ctx)).toBe("sip:10.0.0.1:40000;transport=tcp");
    expect(call("get_rcvport", ctx)).toBe(5060);
    expect(call("get_rcvaddr_sock", ctx)).toBe("tcp:127.0.0.1:5060");
    expect(call("get_proto", ctx)).toBe("tcp");
    expect(call("get_protoid", ctx)).toBe(2);
    expect(call("get_conid", ctx)).toBe(17);
    expect(call("get_au", ctx)).toBe("alice");
    expect(call("get_method", ctx)).toBe("REGISTER");
    expect(call("get_msgtype", ctx)).toBe(1);
    expect(call("get_body", ctx)).toBe("hello");
    expect(call("get_bodylen", ctx)).toBe(5);
    expect(call("get_callid", ctx)).toBe("call-1@10.0.0.1");
    expect(call("get_msglen", ctx)).toBe(ctx.msg.raw.length);
    expect(call("get_msgbuf", ctx)).toBe(ctx.msg.raw);
  });

  it("status getters: -1 / null for requests", () => {
    const { ctx } = makeContext(request());
    expect(call("get_status", ctx)).toBe(-1);
    expect(call("gets_status", ctx)).toBeNull();
    expect(call("get_conid", ctx)).toBe(-1);
  });

  it("$du-based getters and next hop", () => {
    const { ctx } = makeContext(request({ uri: "sip:bob@example.org" }));
    expect(call("get_duri", ctx)).toBeNull();
    expect(call("getw_duri", ctx)).toBe("<null>");
    expect(call("get_nhuri", ctx)).toBe("sip:bob@example.org");
    ctx.dstUri = "sip:10.0.0.9";
    expect(call("get_nhuri", ctx)).toBe("sip:10.0.0.9");
    expect(call("get_ouri", ctx)).toBe("sip:bob@example.org");
  });

  it("missing body and User-Agent use the null forms", () => {
    const { ctx } = makeContext(request());
    expect(call("get_body", ctx)).toBeNull();
    expect(call("gete_body", ctx)).toBe("");
    expect(call("get_bodylen", ctx)).toBe(0);
    expect(call("get_ua", ctx)).toBeNull();
    expect(call("getw_ua", ctx)).toBe("<null>");
    expect(call("get_au", ctx)).toBeNull();
  });

  it("timestamp comes from the host clock", () => {
    const { ctx } = makeContext(request(), { now: 1_650_000_000_999 });
    expect(call("get_timestamp", ctx)).toBe(1_650_000_000);
  });
});

describe("kx on a reply", () => {
  it("status code as int and string; no R-URI", () => {
    const { ctx } = makeContext(response(183, "Session Progress"));
    expect(call("get_status", ctx)).toBe(183);
    expect(call("gets_status", ctx)).toBe("183");
    expect(call("get_ruri", ctx)).toBeNull();
    expect(call("get_method", ctx)).toBe("INVITE");
    expect(call("get_msgtype", ctx)).toBe(2);
  });
});

describe("defines and environment", () => {
  afterEach(() => setKxEnvAllowList([]));

  it("no cfg defines exist", () => {
    const { ctx } = makeContext(request());
    expect(call("get_def", ctx, "WITH_AUTH")).toBe("");
    expect(call("get_defn", ctx, "WITH_AUTH")).toBe(0);
    expect(call("ifdef", ctx, "WITH_AUTH")).toBe(false);
    expect(call("ifndef", ctx, "WITH_AUTH")).toBe(true);
  });

  it("environment variables are hidden unless allow-listed", () => {
    process.env.KSR_TEST_ENV_VALUE = "42";
    const { ctx } = makeContext(request());
    expect(call("get_env", ctx, "KSR_TEST_ENV_VALUE")).toBe("");
    expect(call("get_envn", ctx, "KSR_TEST_ENV_VALUE")).toBe(0);
    expect(call("get_env", ctx, "PATH")).toBe("");
    setKxEnvAllowList(["KSR_TEST_ENV_VALUE"]);
    expect(call("get_env", ctx, "KSR_TEST_ENV_VALUE")).toBe("42");
    expect(call("get_envn", ctx, "KSR_TEST_ENV_VALUE")).toBe(42);
    delete process.env.KSR_TEST_ENV_VALUE;
  });
});
