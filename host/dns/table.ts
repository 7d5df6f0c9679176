/**
 * DNS answers from a table instead of a server: for the script test
 * harness (its `hosts` option) and unit tests. A name absent from the table
 * does not exist (an empty answer, as NXDOMAIN).
 */
import { isIP } from "node:net";
import type { Answer, DnsLookups, NaptrRecord, SrvRecord } from "./rfc3263.js";

export interface DnsTable {
  /** name → IPv4 and/or IPv6 addresses. */
  readonly hosts?: Readonly<Record<string, string | readonly string[]>>;
  readonly srv?: Readonly<Record<string, readonly SrvRecord[]>>;
  readonly naptr?: Readonly<Record<string, readonly NaptrRecord[]>>;
  /** TTL of every answer, seconds (default 300). */
  readonly ttlS?: number;
}

export class TableDnsLookups implements DnsLookups {
  /** Every name asked, in order ("a/name", "srv/_sip._udp.name", ...). */
  readonly asked: string[] = [];

  constructor(private readonly table: DnsTable) {}

  naptr(name: string): Promise<Answer<NaptrRecord>> {
    return this.answer("naptr", name, this.table.naptr?.[name.toLowerCase()] ?? []);
  }

  srv(name: string): Promise<Answer<SrvRecord>> {
    return this.answer("srv", name, this.table.srv?.[name.toLowerCase()] ?? []);
  }

  a(name: string): Promise<Answer<string>> {
    return this.answer("a", name, this.addresses(name, 4));
  }

  aaaa(name: string): Promise<Answer<string>> {
    return this.answer("aaaa", name, this.addresses(name, 6));
  }

  private addresses(name: string, family: 4 | 6): string[] {
    const hosts = this.table.hosts ?? {};
    const key = Object.keys(hosts).find((k) => k.toLowerCase() === name.toLowerCase());
    const v = key === undefined ? [] : hosts[key]!;
    return (typeof v === "string" ? [v] : [...v]).filter((ip) => isIP(ip) === family);
  }

  private answer<T>(type: string, name: string, records: readonly T[]): Promise<Answer<T>> {
    this.asked.push(`${type}/${name}`);
    return Promise.resolve({ records, ttlS: this.table.ttlS ?? 300 });
  }
}
