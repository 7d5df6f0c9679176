import { defineConfig } from "vitest/config";

// `npm run test:interop`: the server as a child process (`ksr run`) under load
// from sipp. Files run one after another so that two sipp loads never share
// the CPUs, and timeouts cover a bounded load run plus server start-up.
export default defineConfig({
  test: {
    include: ["test/interop/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
