// Types for kamailio.mjs.
import type { KsrProcess } from "./sipp.mjs";

export declare const KAMAILIO_BENCH_DIR: string;
export declare function kamailioVersion(): string | null;
export declare function startKamailio(options: {
  script: string;
  port: number;
  /** UDP worker processes (the configuration's own value when absent). */
  children?: number;
  shmMb?: number;
  pkgMb?: number;
  readyTimeoutMs?: number;
  /** Configuration template instead of the shared kamailio-kemi.cfg (same listen/alias/children lines). */
  cfgTemplate?: string;
  /** Extra `-A` preprocessor definitions: "NAME" or 'NAME="value"'. */
  defines?: string[];
}): Promise<KsrProcess>;
