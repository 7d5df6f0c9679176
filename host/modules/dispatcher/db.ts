/**
 * Destination lists kept in the SQLite database instead of a file, as
 * Kamailio's dispatcher reads its `dispatcher` table from `db_url`: a list
 * named `sqlite:FILE` is the rows of the tenant in the dispatcher table of
 * that database file (`ksr dispatcher add|rm|list` manage them), read at
 * start and again by ds_reload / `ksr ctl dispatcher reload`.
 */
import Database from "better-sqlite3";
import { SqliteDispatcherStore, type DispatcherRow } from "../../storage/sqlite.js";
import { DispatcherListError, loadDispatcherList, parseDispatcherList, type DispatcherList } from "./list.js";

/** How a list names a database instead of a file. */
export const DISPATCHER_DB_PREFIX = "sqlite:";

/** The database file of a `sqlite:FILE` list, or undefined for a list file. */
export function dispatcherDbFile(list: string): string | undefined {
  return list.startsWith(DISPATCHER_DB_PREFIX) ? list.slice(DISPATCHER_DB_PREFIX.length) : undefined;
}

/** The list with its file name made absolute by `resolve` (a list file, or the database of `sqlite:FILE`). */
export function resolveDispatcherList(list: string, resolve: (path: string) => string): string {
  const dbFile = dispatcherDbFile(list);
  return dbFile === undefined ? resolve(list) : DISPATCHER_DB_PREFIX + resolve(dbFile);
}

/** A row as a line of Kamailio's list format (the description is not part of it). */
export function rowLine(row: Omit<DispatcherRow, "id" | "description">): string {
  return [row.setid, row.destination, row.flags, row.priority, ...(row.attrs === "" ? [] : [row.attrs])].join(" ");
}

/**
 * The tenant's list: the file, or its rows of a `sqlite:FILE` database.
 * Throws DispatcherListError naming the file and line, or the database and
 * the row id.
 */
export function loadDispatcherSource(list: string, tenantId: string, random?: () => number): DispatcherList {
  const dbFile = dispatcherDbFile(list);
  if (dbFile === undefined) return loadDispatcherList(list, random);
  const where = `${list} (table dispatcher, tenant ${tenantId})`;
  let rows: DispatcherRow[];
  try {
    // Read-only: the server never writes the table, `ksr dispatcher` does.
    const db = new Database(dbFile, { readonly: true, fileMustExist: true });
    try {
      rows = new SqliteDispatcherStore(db).list(tenantId);
    } finally {
      db.close();
    }
  } catch (err) {
    throw new DispatcherListError(where, 0, `cannot read: ${(err as Error).message}`);
  }
  try {
    return { ...parseDispatcherList(rows.map(rowLine).join("\n"), where, random), file: list };
  } catch (err) {
    if (!(err instanceof DispatcherListError)) throw err;
    // The parser counts lines; each line is a row.
    throw new DispatcherListError(`${where} row id ${rows[err.line - 1]?.id ?? "?"}`, 0, err.reason);
  }
}
