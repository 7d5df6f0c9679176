/**
 * Every KEMI module this server provides. The one list from which the
 * isolate facade, KSR.x.modf, `ksr api`, `ksr check` and ksr.d.ts derive.
 */
import type { KemiModule } from "./types.js";

export const KEMI_MODULES: readonly KemiModule[] = [];
