/** Shared fixtures of the rr tests: requests with Route sets and the rr module caller. */
import { caller } from "../modules/call.js";
import { rrModule } from "../../host/modules/rr.js";
import { request } from "../helpers/context.js";

export const rr = caller(rrModule);

/** The From tag of `request()`'s default From header (the caller's tag). */
export const CALLER_TAG = "from-tag-1";

/**
 * An in-dialog request (To tag present) unless `initial`, with the given
 * Route header fields (one string per field) and Request-URI.
 */
export function routedRequest(opts: {
  uri: string;
  routes: string[];
  method?: string;
  initial?: boolean;
  from?: string;
  to?: string;
}): string {
  return request({
    method: opts.method ?? "BYE",
    uri: opts.uri,
    from: opts.from,
    to: opts.to ?? (opts.initial ? "<sip:bob@example.org>" : "<sip:bob@example.org>;tag=to-tag-2"),
    extraHeaders: opts.routes.map((r) => `Route: ${r}`),
  });
}
