/**
 * Every KEMI module this server provides. The one list from which the
 * isolate facade, KSR.x.modf, `ksr api`, `ksr check` and ksr.d.ts derive.
 */
import type { KemiModule } from "./types.js";
import { coreModule } from "./core.js";
import { pvModule } from "./pv.js";
import { hdrModule } from "./hdr.js";
import { kxModule } from "./kx.js";
import { slModule } from "./sl.js";
import { maxfwdModule } from "./maxfwd.js";
import { sanityModule } from "./sanity.js";
import { siputilsModule } from "./siputils.js";
import { corexModule } from "./corex.js";
import { tmModule } from "./tm.js";
import { tmxModule } from "./tmx.js";
import { rrModule } from "./rr.js";
import { htableModule } from "./htable.js";
import { pikeModule } from "./pike.js";
import { nathelperModule } from "./nathelper.js";
import { rtpproxyModule } from "./rtpproxy.js";
import { registrarModule } from "./registrar.js";
import { authModule } from "./auth.js";
import { authDbModule } from "./auth_db.js";
import { permissionsModule } from "./permissions.js";
import { xhttpPromModule } from "./xhttp_prom.js";
import { dispatcherModule } from "./dispatcher/module.js";
import { tlsModule } from "./tls.js";
import { registerPvClasses } from "./pv.js";
import { ipopsModule } from "./ipops.js";
import { ndbRedisModule } from "./ndb_redis.js";

export const KEMI_MODULES: readonly KemiModule[] = [
  coreModule,
  pvModule,
  hdrModule,
  kxModule,
  slModule,
  maxfwdModule,
  sanityModule,
  siputilsModule,
  corexModule,
  tmModule,
  tmxModule,
  rrModule,
  htableModule,
  pikeModule,
  nathelperModule,
  rtpproxyModule,
  registrarModule,
  authModule,
  authDbModule,
  permissionsModule,
  xhttpPromModule,
  dispatcherModule,
  tlsModule,
  ipopsModule,
  ndbRedisModule,
];

// Every module's pseudo-variables (`pvs`) are looked up by host/modules/pv.ts.
registerPvClasses(...KEMI_MODULES);
