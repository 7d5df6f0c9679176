export declare const DNSMASQ: string;
export declare function dnsmasqInstalled(): boolean;
export interface Dnsmasq {
  readonly port: number;
  output(): string;
  stop(): Promise<void>;
}
export declare function startDnsmasq(records: readonly string[]): Promise<Dnsmasq>;
