import { defineConfig } from "vitest/config";

// Default `npm test`: fast in-process suites only. The sipp interop suite
// (test/interop, needs the sipp binary and a built dist/) runs through
// vitest.interop.config.ts; benchmarks live in bench/.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/interop/**", "bench/**", "node_modules/**", "dist/**"],
  },
});
