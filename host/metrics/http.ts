/**
 * `ksr run --metrics [ip:]port`: GET /metrics in the Prometheus text
 * exposition format (version 0.0.4), built by prom-client from what
 * `gather` returns: the metric families of this process and, for the
 * front of tenant worker processes, of every worker, summed per label set
 * (prom-client's AggregatorRegistry.aggregate).
 *
 * Off unless asked for; on the loopback address unless an address is
 * given, since the metrics name the tenants and their load.
 */
import http from "node:http";
import { isIP } from "node:net";
import { AggregatorRegistry, Registry, type MetricObjectWithValues, type MetricValueWithName } from "prom-client";
import { log } from "../core/log.js";

export const DEFAULT_METRICS_PORT = 9464;
export const DEFAULT_METRICS_HOST = "127.0.0.1";

export type MetricsJson = MetricObjectWithValues<MetricValueWithName<string>>[];

/** Every process's (or part's) metric families; families of one name are summed (or max'ed, per their aggregator). */
export type MetricsGatherer = () => Promise<MetricsJson[]>;

export interface MetricsAddress {
  readonly host: string;
  readonly port: number;
}

/** `--metrics` value: "port", "ip:port" or "[v6]:port"; `true` (no value) is the default address. */
export function parseMetricsAddress(value: string | true): MetricsAddress {
  if (value === true) return { host: DEFAULT_METRICS_HOST, port: DEFAULT_METRICS_PORT };
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[0-9.]+):)?(\d{1,5})$/.exec(value);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || port > 65535) throw new Error(`"${value}" is not [ip:]port (e.g. 9464 or 127.0.0.1:9464)`);
  const host = m[1] === undefined ? DEFAULT_METRICS_HOST : m[1].replace(/^\[|\]$/g, "");
  if (isIP(host) === 0) throw new Error(`"${value}": ${host} is not an IP address`);
  return { host, port };
}

/** The Prometheus text of the gathered families. */
export async function renderMetrics(gather: MetricsGatherer): Promise<string> {
  const parts = await gather();
  return AggregatorRegistry.aggregate(parts).metrics();
}

export interface MetricsServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Another resource served on the metrics listener (the control methods, host/control/http.ts). */
export interface ExtraRoute {
  readonly path: string;
  readonly handle: (req: http.IncomingMessage, res: http.ServerResponse) => void;
}

export async function startMetricsServer(address: MetricsAddress, gather: MetricsGatherer, extra?: ExtraRoute): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (extra !== undefined && path === extra.path) {
      extra.handle(req, res);
      return;
    }
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: metrics are at /metrics\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("only GET /metrics\n");
      return;
    }
    renderMetrics(gather).then(
      (text) => {
        res.writeHead(200, { "content-type": Registry.PROMETHEUS_CONTENT_TYPE });
        res.end(req.method === "HEAD" ? undefined : text);
      },
      (err: unknown) => {
        log("err", "metrics", `cannot gather the metrics: ${(err as Error)?.message ?? String(err)}`);
        res.writeHead(500, { "content-type": "text/plain" }).end("cannot gather the metrics\n");
      },
    );
  });
  // A scraper that stalls must not hold sockets for long.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(address.port, address.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (err) => log("err", "metrics", `metrics listener: ${err.message}`));
  const bound = server.address();
  const port = typeof bound === "object" && bound !== null ? bound.port : address.port;
  const origin = `http://${address.host.includes(":") ? `[${address.host}]` : address.host}:${port}`;
  log("info", "metrics", `serving /metrics on ${origin}/metrics${extra === undefined ? "" : ` and ${extra.path} on ${origin}${extra.path}`}`);
  return {
    host: address.host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
