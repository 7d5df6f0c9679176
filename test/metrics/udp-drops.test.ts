/**
 * ksr_udp_receive_buffer_drops_total's source (host/metrics/udp-drops.ts):
 * a UDP socket of this process with a small receive buffer, flooded by a
 * child process while this process is blocked (spawnSync) and cannot
 * read, has datagrams dropped by the kernel, and they are counted.
 */
import { spawnSync } from "node:child_process";
import dgram from "node:dgram";
import { describe, expect, it } from "vitest";
import { udpReceiveBufferDrops } from "../../host/metrics/udp-drops.js";

const DATAGRAMS = 300;

describe.runIf(process.platform === "linux")("UDP receive-buffer drops", () => {
  it("counts the datagrams the kernel dropped on this process's full socket", async () => {
    const socket = dgram.createSocket({ type: "udp4", recvBufferSize: 4096 });
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
    try {
      const before = udpReceiveBufferDrops()!;
      const port = socket.address().port;
      const sender = `const s = require("node:dgram").createSocket("udp4"); const b = Buffer.alloc(1000); let n = 0;
        const next = () => { if (n++ >= ${DATAGRAMS}) return s.close(); s.send(b, ${port}, "127.0.0.1", next); }; next();`;
      const r = spawnSync(process.execPath, ["-e", sender], { timeout: 20_000 });
      expect(r.status).toBe(0);
      const dropped = udpReceiveBufferDrops()! - before;
      // ~4 KB of buffer (the kernel doubles it) holds a few of 300 × 1000 bytes: most are dropped.
      expect(dropped).toBeGreaterThan(DATAGRAMS / 2);
      expect(dropped).toBeLessThanOrEqual(DATAGRAMS);
    } finally {
      socket.close();
    }
  });
});
