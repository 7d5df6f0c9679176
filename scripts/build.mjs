// Bundles the CLI into dist/ksr.js so `ksr` starts without a TypeScript loader.
import { bundleForNode } from "./node-bundle.mjs";

await bundleForNode("host/cli/main.ts", "dist/ksr.js");
