/**
 * The connection of one server to the Redis that several servers share
 * (`ksr run --store redis://HOST:PORT[/DB]`).
 *
 * KSR calls are synchronous (a route runs with `applySync`, every KSR call
 * a synchronous callback) and a Redis reply is not: nothing a script asks
 * for can wait for a round trip without stalling the event loop. So every
 * shared store is a replica: each server keeps the shared data in memory,
 * loaded from Redis when the connection becomes ready, and keeps it
 * current from one pub/sub channel on which every write announces the
 * state it left behind (written and announced by one Lua script, so the
 * announcements come in the order Redis executed the writes). Reads are
 * served from the replica; writes change the replica at once and go to
 * Redis in the order they were made.
 *
 * Two ioredis clients: one for commands, one subscribed. While either is
 * not ready, or the replicas have not been reloaded since it came back,
 * the stores are unavailable: the KSR calls using them fail as Kamailio's
 * do when their database is away. ioredis reconnects by itself; a write
 * that was sent but not answered when the connection broke is sent again
 * once it is back (autoResendUnfulfilledCommands), and no request is
 * dropped after a number of retries (maxRetriesPerRequest: null).
 */
import { randomBytes } from "node:crypto";
import type { Redis, RedisOptions } from "ioredis";
import { log } from "../../core/log.js";
import { CHANNEL, parseRedisUrl, StoreUnavailableError, type RedisTarget, type ReplicaMessage } from "./keys.js";


/** A store kept as a replica of Redis data. */
export interface Replica {
  /** Its name in ReplicaMessage.r. */
  readonly name: string;
  /** Load everything from Redis (the connection is ready); replaces the replica's contents. */
  reload(redis: Redis): Promise<void>;
  /** Apply a write announced on the channel. */
  apply(message: ReplicaMessage): void;
}

export interface RedisConnectionOptions {
  /** Longest wait for the first connection, ms (default 5000): `ksr run` stops with an error past it. */
  readonly connectTimeoutMs?: number;
}

export class RedisConnection {
  readonly target: RedisTarget;
  /** This connection's id in the messages it writes (its own are recognised by it). */
  readonly origin = randomBytes(6).toString("base64url");
  readonly commands: Redis;
  private readonly subscriber: Redis;
  private readonly replicas = new Map<string, Replica>();
  /** Whether both clients are ready and every replica reloaded since they became so. */
  private synced = false;
  /** Messages that came while the replicas were being reloaded, applied after the reload in their order. */
  private buffered: ReplicaMessage[] | undefined;
  /** The state last logged ("up" / "down"), so each change is logged once. */
  private reported: "up" | "down" | undefined;
  private closing = false;
  private reloading: Promise<void> | undefined;
  private readonly stateListeners: ((up: boolean) => void)[] = [];

  /**
   * A connection (not yet connected: see connect()). The client library is
   * loaded here, on first use, so that a server without --store never loads it.
   */
  static async create(target: RedisTarget | string, options: RedisConnectionOptions = {}): Promise<RedisConnection> {
    const { Redis } = await import("ioredis");
    return new RedisConnection(Redis, target, options);
  }

  private constructor(RedisClient: typeof Redis, target: RedisTarget | string, options: RedisConnectionOptions) {
    this.target = typeof target === "string" ? parseRedisUrl(target) : target;
    const t = this.target;
    const common: RedisOptions = {
      host: t.host,
      port: t.port,
      db: t.db,
      ...(t.username !== undefined ? { username: t.username } : {}),
      ...(t.password !== undefined ? { password: t.password } : {}),
      lazyConnect: true,
      maxRetriesPerRequest: null,
      autoResendUnfulfilledCommands: true,
      enableOfflineQueue: true,
      connectTimeout: options.connectTimeoutMs ?? 5000,
      // Reconnect forever, backing off to one attempt per second.
      retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
    };
    this.commands = new RedisClient({ ...common, connectionName: `ksr-${this.origin}` });
    this.subscriber = new RedisClient({ ...common, connectionName: `ksr-${this.origin}-sub` });
    for (const client of [this.commands, this.subscriber]) {
      // An error event without a listener would throw; the state change is logged once instead.
      client.on("error", () => this.lost());
      client.on("close", () => this.lost());
      client.on("end", () => this.lost());
      client.on("ready", () => this.maybeResync());
    }
    this.subscriber.on("message", (channel: string, text: string) => {
      if (channel !== CHANNEL) return;
      let message: ReplicaMessage;
      try {
        message = JSON.parse(text) as ReplicaMessage;
      } catch {
        return;
      }
      if (this.buffered !== undefined) this.buffered.push(message);
      else this.deliver(message);
    });
  }

  /** Add a replica; it is loaded at the next (re)sync. Register before connect(). */
  register(replica: Replica): void {
    this.replicas.set(replica.name, replica);
  }

  /** Called with true when the stores become available, false when they stop being so. */
  onStateChange(listener: (up: boolean) => void): void {
    this.stateListeners.push(listener);
  }

  /** Connect both clients, subscribe and load every replica; rejects when Redis cannot be reached. */
  async connect(): Promise<void> {
    const timeout = (this.commands.options.connectTimeout ?? 5000) + 1000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        (async () => {
          if (this.commands.status === "wait") await this.commands.connect();
          if (this.subscriber.status === "wait") await this.subscriber.connect();
          await this.maybeResync();
          if (!this.synced) throw new Error("the connection did not stay up");
        })(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeout} ms`)), timeout);
        }),
      ]);
    } catch (err) {
      this.close();
      throw new Error(`cannot connect to ${this.target.display}: ${(err as Error)?.message ?? String(err)}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Whether the shared stores may be used now. */
  get available(): boolean {
    return this.synced && !this.closing;
  }

  /** Throws StoreUnavailableError unless available. */
  ensureAvailable(): void {
    if (!this.available) throw new StoreUnavailableError();
  }

  /** Stop both clients (pending writes are flushed by QUIT). */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    this.synced = false;
    for (const client of [this.commands, this.subscriber]) {
      client.quit().catch(() => client.disconnect());
    }
  }

  private lost(): void {
    this.synced = false;
    // Before the first connection the start-up error says it (connect() rejects).
    if (this.closing || this.reported === undefined) return;
    if (this.reported !== "down") {
      this.reported = "down";
      log("err", "redis", `${this.target.display} unreachable: shared registrations and tables unavailable until it is back (reconnecting)`);
      for (const listener of this.stateListeners) listener(false);
    }
  }

  /** Once both clients are ready: reload every replica, then mark the stores available. */
  private maybeResync(): Promise<void> {
    if (this.closing || this.commands.status !== "ready" || this.subscriber.status !== "ready") return Promise.resolve();
    this.reloading ??= this.resync().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async resync(): Promise<void> {
    // Messages published from here on are held back until the reload is done:
    // each carries the whole state of its key after a write, so replaying
    // them in order over the loaded data ends at the newest state.
    this.buffered = [];
    try {
      // Subscribed before anything is read (again after a reconnect, where
      // ioredis resubscribes on its own; a second SUBSCRIBE changes nothing),
      // so that no write after a read can go unheard.
      await this.subscriber.subscribe(CHANNEL);
      for (const replica of this.replicas.values()) await replica.reload(this.commands);
    } catch (err) {
      this.buffered = undefined;
      log("err", "redis", `reloading from ${this.target.display} failed: ${(err as Error)?.message ?? String(err)}; retrying at the next reconnect`);
      // A reconnect brings the next attempt; make one happen.
      this.commands.disconnect(true);
      return;
    }
    const held = this.buffered;
    this.buffered = undefined;
    for (const message of held) this.deliver(message);
    if (this.commands.status !== "ready" || this.subscriber.status !== "ready" || this.closing) return;
    this.synced = true;
    if (this.reported !== "up") {
      const wasDown = this.reported === "down";
      this.reported = "up";
      log("notice", "redis", `${this.target.display} ${wasDown ? "reachable again" : "connected"}: shared data reloaded`);
      for (const listener of this.stateListeners) listener(true);
    }
  }

  private deliver(message: ReplicaMessage): void {
    const replica = this.replicas.get(message.r);
    if (replica === undefined) return;
    try {
      replica.apply(message);
    } catch (err) {
      log("err", "redis", `applying a ${message.r} change of ${message.k} failed: ${(err as Error)?.message ?? String(err)}`);
    }
  }
}
