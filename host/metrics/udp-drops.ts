/**
 * Datagrams the kernel dropped because one of this process's UDP sockets
 * had its receive buffer full (Linux: the `drops` column of /proc/net/udp
 * and /proc/net/udp6, per socket; the sockets are this process's by their
 * inode, from /proc/self/fd). Read when the metrics are scraped; undefined
 * where /proc does not say (another OS).
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

function ownSocketInodes(): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m !== null) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  return inodes;
}

/** Drops of the process's UDP sockets since they were opened, or undefined without /proc. */
export function udpReceiveBufferDrops(): number | undefined {
  let inodes: Set<string>;
  try {
    inodes = ownSocketInodes();
  } catch {
    return undefined;
  }
  let drops = 0;
  for (const file of ["/proc/net/udp", "/proc/net/udp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "latin1");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
      if (fields.length < 13 || !inodes.has(fields[9]!)) continue;
      drops += Number(fields[12]) || 0;
    }
  }
  return drops;
}
