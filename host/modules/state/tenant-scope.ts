/**
 * Per-tenant namespaces for the in-memory stores of the state modules
 * (htable, pike). A tenant's data is reached only through the tenant id of
 * the message context being routed (`ctx.tenant.id`), so no KSR call made
 * for one tenant can read or change another tenant's tables.
 *
 * Stores are keyed by tenant id rather than by the TenantState object so
 * that the data survives a reload of the tenant's script (a new runner with
 * a new TenantState for the same tenant), as Kamailio's shared memory
 * survives nothing less than a restart of the server.
 */

/** Something that holds per-tenant data and can forget a tenant. */
interface TenantScopedStore {
  drop(tenantId: string): void;
  clear(): void;
}

const allStores: TenantScopedStore[] = [];

/** One value of type T per tenant, created on first use. */
export class TenantScoped<T> implements TenantScopedStore {
  private readonly byTenant = new Map<string, T>();

  constructor(private readonly create: (tenantId: string) => T) {
    allStores.push(this);
  }

  get(tenantId: string): T {
    let value = this.byTenant.get(tenantId);
    if (value === undefined) {
      value = this.create(tenantId);
      this.byTenant.set(tenantId, value);
    }
    return value;
  }

  /** The tenant's value if it was ever created (no creation). */
  peek(tenantId: string): T | undefined {
    return this.byTenant.get(tenantId);
  }

  tenants(): IterableIterator<[string, T]> {
    return this.byTenant.entries();
  }

  drop(tenantId: string): void {
    this.byTenant.delete(tenantId);
  }

  clear(): void {
    this.byTenant.clear();
  }
}

/**
 * Forget every piece of shared state a tenant has (htable items, pike
 * counters...). For the tenant registry to call when a tenant is removed.
 */
export function dropTenantState(tenantId: string): void {
  for (const store of allStores) store.drop(tenantId);
}

/** Forget all shared state of all tenants (tests, full reset). */
export function clearAllTenantState(): void {
  for (const store of allStores) store.clear();
}
