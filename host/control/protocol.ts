/**
 * The wire format of the control socket: JSON-RPC 2.0
 * (https://www.jsonrpc.org/specification), one JSON text per line in each
 * direction (newline-delimited, like Kamailio's jsonrpcs over a FIFO or
 * socket, one request per line).
 */

/** Error codes of JSON-RPC 2.0 §5.1. */
export const RPC_PARSE_ERROR = -32700;
export const RPC_INVALID_REQUEST = -32600;
export const RPC_METHOD_NOT_FOUND = -32601;
export const RPC_INVALID_PARAMS = -32602;
export const RPC_INTERNAL_ERROR = -32603;

/** Longest request line the server reads (bytes, without the newline); a longer one closes the connection. */
export const MAX_REQUEST_LINE_BYTES = 64 * 1024;

/** Longest response line the client reads (bytes): counters of many tenants fit many times over. */
export const MAX_RESPONSE_LINE_BYTES = 16 * 1024 * 1024;

/** JSON-RPC 2.0 §4: a string, a number or null; absent for a notification. */
export type RpcId = string | number | null;

export interface RpcErrorObject {
  readonly code: number;
  readonly message: string;
  readonly data?: unknown;
}

export type RpcResponse =
  | { readonly jsonrpc: "2.0"; readonly id: RpcId; readonly result: unknown }
  | { readonly jsonrpc: "2.0"; readonly id: RpcId; readonly error: RpcErrorObject };

export interface RpcRequest {
  readonly jsonrpc: "2.0";
  readonly id?: RpcId;
  readonly method: string;
  readonly params?: unknown;
}

export function isRpcId(value: unknown): value is RpcId {
  return value === null || typeof value === "string" || (typeof value === "number" && Number.isFinite(value));
}
