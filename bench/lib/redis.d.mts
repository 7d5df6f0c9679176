// Types for redis.mjs.

export declare const REDIS_SERVER: string;

export declare function redisServerInstalled(): boolean;

/** One command to the Redis on 127.0.0.1:port; its raw RESP reply. */
export declare function redisCommand(port: number, ...args: string[]): Promise<string>;

/** The elements of an array reply of bulk strings (KEYS). */
export declare function bulkStrings(reply: string): string[];

export interface RedisServer {
  readonly port: number;
  readonly pid: number;
  /** redis://127.0.0.1:port/0 */
  readonly url: string;
  output(): string;
  /** SHUTDOWN SAVE: the dump is written for the next start in the same directory. */
  stopSaving(): Promise<void>;
  kill(): Promise<void>;
}

export declare function startRedis(port: number, dir: string): Promise<RedisServer>;
