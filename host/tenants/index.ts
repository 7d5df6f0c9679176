/**
 * Multi-tenant routing: the tenants file, tenant selection and the registry
 * of loaded tenants (runners, state, CPU budgets, counters, reload).
 */
export {
  DEFAULT_CPU_BURST_MS,
  DEFAULT_CPU_SHARE,
  DEFAULT_ERROR_STATUS,
  TenantsConfigError,
  formatIssue,
  loadTenantsFile,
  singleScriptConfig,
  type LoadTenantsOptions,
  type SocketPattern,
  type TenantEntry,
  type TenantErrorPolicy,
  type TenantLimits,
  type TenantMatchRule,
  type TenantsConfig,
  type TenantsConfigIssue,
} from "./config.js";
export { TenantSelector } from "./select.js";
export {
  Tenant,
  TenantCounters,
  TenantRegistry,
  type ReloadResult,
  type ReplyClass,
  type RunnerLease,
  type TenantRegistryOptions,
  type TenantRouteOutcome,
  type TenantRunner,
} from "./registry.js";
