// Types for kamailio-basic.mjs.
import type { KsrProcess } from "./sipp.mjs";

export declare const KAMAILIO_BASIC_CFG: string;

export interface KamailioSubscriber {
  readonly user: string;
  readonly domain: string;
  readonly password: string;
}

/** Writes the db_text tables (version, subscriber, address, location) into dir; returns "text:///dir". */
export declare function writeKamailioBasicDatabase(dir: string, subscribers: readonly KamailioSubscriber[]): string;

export declare function startKamailioBasic(options: {
  script: string;
  port: number;
  dbDir: string;
  children?: number;
  /** usrloc db_mode 1 on the db_text location table: bindings survive a restart. */
  persistentLocation?: boolean;
  /** redis://127.0.0.1:PORT/0: usrloc db_mode 3 on db_redis (the Redis holding KAMAILIO_REDIS_LOCATION_VERSION). */
  redisUrl?: string;
  readyTimeoutMs?: number;
}): Promise<KsrProcess>;

/** The command that gives a fresh Redis the location table's version row db_redis reads. */
export declare const KAMAILIO_REDIS_LOCATION_VERSION: readonly string[];

export declare function makeKamailioBasicDbDir(): string;
