// Which allocations V8 survives as an ordinary out-of-memory error and which
// abort the process, with the isolated-vm the running Node line loads
// (sandbox/isolated-vm.ts). Each case runs in a fresh child process with a
// 32 MB isolate, as the README's "Node versions" table reports:
//
//   node --experimental-strip-types bench/oom-probe.mjs
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const CASES = [
  ["small allocations in a loop", "const a = []; for (;;) a.push({ x: Math.random() })"],
  ["one large array", "new Array(2 ** 26).fill(1.5)"],
  ["a huge string split", '"ab".repeat(2 ** 27).split("")'],
];
const MEMORY_LIMIT_MB = 32;

if (process.argv[2] === "--case") {
  const { default: ivm } = await import("../sandbox/isolated-vm.ts");
  const isolate = new ivm.Isolate({ memoryLimit: MEMORY_LIMIT_MB });
  const context = isolate.createContextSync();
  try {
    context.evalSync(process.argv[3], { timeout: 10_000 });
    console.log("completed");
  } catch (err) {
    console.log(`ordinary error: ${err.message}`);
  }
} else {
  const self = fileURLToPath(import.meta.url);
  console.log(`node ${process.version}, isolate limit ${MEMORY_LIMIT_MB} MB`);
  for (const [name, code] of CASES) {
    const child = spawnSync(process.execPath, ["--no-node-snapshot", "--experimental-strip-types", "--no-warnings", self, "--case", code], { encoding: "utf8" });
    const verdict = child.status === 0 ? child.stdout.trim() : `process aborted (${child.signal ?? `exit ${child.status}`})`;
    console.log(`${name.padEnd(28)} ${verdict}`);
  }
}
