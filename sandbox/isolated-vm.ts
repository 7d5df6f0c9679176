/**
 * The isolated-vm build for the running Node.
 *
 * isolated-vm follows V8's API, so each major builds against a window of
 * Node lines: 7.x ships prebuilt binaries for Node 24 and 26 and declares
 * `node >= 24`; 6.2 is the last major with a prebuilt binary for Node 22.
 * Both are optional dependencies (`isolated-vm` and the alias
 * `isolated-vm-6`): npm skips the one whose engines or build do not fit the
 * Node it installs with, so one lockfile serves every supported line.
 * Node 24 and later use 7.x, whose out-of-memory handling the shard and
 * quarantine code is measured against (README, "Node versions").
 */
import { createRequire } from "node:module";
import type IsolatedVm from "isolated-vm";

/** The first Node major whose isolated-vm is the `isolated-vm` package itself (7.x). */
const FIRST_NODE_OF_ISOLATED_VM_7 = 24;
/** The oldest Node line this server runs on. */
export const OLDEST_SUPPORTED_NODE = 22;

const nodeMajor = Number(process.versions.node.split(".")[0]);

/** The package name that provides isolated-vm on the running Node. */
export const ISOLATED_VM_PACKAGE = nodeMajor >= FIRST_NODE_OF_ISOLATED_VM_7 ? "isolated-vm" : "isolated-vm-6";

function loadIsolatedVm(): typeof IsolatedVm {
  if (nodeMajor < OLDEST_SUPPORTED_NODE) {
    throw new Error(`Node ${process.versions.node} is not supported: ksr-sandbox needs Node ${OLDEST_SUPPORTED_NODE}, 24 or 26 (. scripts/use-node.sh installs Node 24)`);
  }
  const require = createRequire(import.meta.url);
  try {
    return require(ISOLATED_VM_PACKAGE) as typeof IsolatedVm;
  } catch (err) {
    const reason = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new Error(
      `isolated-vm for Node ${process.versions.node} (package ${ISOLATED_VM_PACKAGE}) cannot be loaded: ${reason}. ` +
        `Run npm install (or npm ci) with this Node so its build is installed.`,
    );
  }
}

const ivm = loadIsolatedVm();
export default ivm;
