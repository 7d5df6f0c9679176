export declare const BARRIER_CALL_ID_PREFIX: string;
export declare function barrierOptions(n: number, port: number, proto?: "UDP" | "TCP"): string;
