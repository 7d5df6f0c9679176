/**
 * RFC 5626 flow tokens (host/proxy/flow-token.ts): what a token names comes
 * back only from a token this server made, unchanged.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { cameOver, decodeFlowToken, encodeFlowToken, flowUri, setFlowTokenKey } from "../../host/proxy/flow-token.js";
import type { ReceiveInfo } from "../../host/core/context.js";

const RCV: ReceiveInfo = { proto: "ws", srcIp: "198.51.100.7", srcPort: 50001, localIp: "127.0.0.1", localPort: 8080, connectionId: 12 };

describe("flow tokens", () => {
  it("name the flow a message came on, as a URI user part", () => {
    const token = encodeFlowToken(RCV);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const flow = decodeFlowToken(token);
    expect(flow).toEqual({ proto: "ws", ip: "198.51.100.7", port: 50001, localIp: "127.0.0.1", localPort: 8080 });
    expect(flowUri(flow!)).toBe("sip:198.51.100.7:50001;transport=ws");
    expect(cameOver(RCV, flow!)).toBe(true);
    expect(cameOver({ ...RCV, srcPort: 50002 }, flow!)).toBe(false);
    expect(flowUri(decodeFlowToken(encodeFlowToken({ ...RCV, proto: "udp", srcIp: "2001:db8::7" }))!)).toBe("sip:[2001:db8::7]:50001");
  });

  it("refuse a changed token, another key's token and anything else", () => {
    const token = encodeFlowToken(RCV);
    const [mac, data] = token.split(".");
    const forged = Buffer.from(Buffer.from(data!, "base64url").toString("latin1").replace("198.51.100.7", "10.0.0.1"), "latin1").toString("base64url");
    expect(decodeFlowToken(`${mac}.${forged}`)).toBeUndefined();
    const flipped = mac!.startsWith("A") ? `B${mac!.slice(1)}` : `A${mac!.slice(1)}`;
    expect(decodeFlowToken(`${flipped}.${data}`)).toBeUndefined();
    for (const junk of ["", ".", "alice", "a.b", "x".repeat(600), "AAAAAAAAAAAAAA.dWRwfHh8eXx6fHc"]) expect(decodeFlowToken(junk)).toBeUndefined();
    setFlowTokenKey(randomBytes(32));
    expect(decodeFlowToken(token)).toBeUndefined();
    expect(decodeFlowToken(encodeFlowToken(RCV))).toBeDefined();
  });
});
