// Generated from the KEMI export tables (host/modules) and the interpreter table (runtime/interpreter.ts)
// by scripts/gen-dts.mjs; do not edit.
// Reference it from a TypeScript routing script:
//   /// <reference path="node_modules/ksr-sandbox/runtime/ksr.d.ts" />
// or list it in the "include" (or "files") of your tsconfig.json.
//
// A routing script is a plain script, not a module: it defines global functions,
// which the server calls by name:
//   ksr_request_route(): every SIP request received (required).
//   ksr_reply_route(): every SIP reply received, before it is forwarded by its Via; KSR.x.drop() keeps it from being forwarded (optional; renamed or turned off by kemi.reply_route_callback).
//   ksr_onsend_route(): each request about to be sent, $snd(ip|port|proto|buf) describing the send; KSR.x.drop() keeps it from being sent (optional; renamed or turned off by kemi.onsend_route_callback).
//   the function kemi.event_route_callback names (evname: string): called with the event name, "core:worker-one-init", once the script is loaded (on a faked request) (none by default).
//   the function KSR.tm.t_on_branch("name") names (): each branch of a stateful relay, before it is sent.
//   the function KSR.tm.t_on_reply("name") names (): each reply a stateful relay's branch receives.
//   the function KSR.tm.t_on_failure("name") names (): once a stateful relay's branches all failed, on the request, with the winning reply's status in $T_reply_code.
//   the function KSR.tm.t_on_branch_failure("name") names (): each branch of a stateful relay that fails (tm:branch-failure).
// Their return values are ignored; KSR.x.exit() ends a route early.

declare namespace KSRTypes {
  /** The KEMI interpreter functions (Kamailio app_jsdt's KSR.x). */
  interface XModule {
    /** Ends the route execution here, like `exit` in kamailio.cfg. Every later KSR call of this execution is refused. */
    exit(): never;
    /** Ends the route execution and drops the message, like `drop` in kamailio.cfg: a reply is not forwarded. */
    drop(): never;
    /**
     * Calls a module's native kamailio.cfg function, found by name and parameter count, every
     * parameter given as a string and converted as its fixup does (`ksr api --native` lists them).
     * -1 for a KEMI-only name, an unknown name or count, or a function Kamailio's modf refuses
     * (fixup without free: sl_send_reply, t_reply, save, ...). Prefer the dedicated KSR function.
     */
    modf(fname: string, ...params: string[]): number;
  }

  /** KSR.auth: Kamailio module auth. */
  interface AuthModule {
    /**
     * Challenge: 401 with WWW-Authenticate for REGISTER, 407 with Proxy-Authenticate otherwise. Flags: 1 qop=auth, 2 qop=auth-int, 16 stale=true. 1 sent, -3 send failed; ACK/CANCEL: 1, nothing sent.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE, ONREPLY_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    auth_challenge(p1: string, p2: number): number;
    /**
     * Remove the credentials header that the last auth check used from the forwarded request. 1 ok, -1 none (or ACK/CANCEL/PRACK).
     * KSR.x.modf reaches it as "consume_credentials" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    consume_credentials(): number;
    /**
     * 1 if a Proxy-Authorization or Authorization header has digest credentials for the realm, -1 otherwise.
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    has_credentials(p1: string): number;
    /**
     * Send 407 Proxy Authentication Required with a Proxy-Authenticate digest challenge (flags as auth_challenge). 1 sent, -3 send failed.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE, ONREPLY_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    proxy_challenge(p1: string, p2: number): number;
    /**
     * Check credentials (Authorization for REGISTER, else Proxy-Authorization) against the given password (flags 1: it is an HA1). checks 1: auth user must match From/To. Codes as auth_db.auth_check.
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    pv_auth_check(p1: string, p2: string, p3: number, p4: number): number;
    /**
     * Send 401 Unauthorized with a WWW-Authenticate digest challenge (flags as auth_challenge). 1 sent, -3 send failed.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE, ONREPLY_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    www_challenge(p1: string, p2: number): number;
  }

  /** KSR.auth_db: Kamailio module auth_db. */
  interface AuthDbModule {
    /**
     * Digest check (Authorization for REGISTER, Proxy-Authorization otherwise) against the subscriber table; flags 1: auth user must be the To (REGISTER/PUBLISH) or From user, 2: not for INVITE/BYE/PRACK/UPDATE/MESSAGE. 1 ok; -1 error, -2 wrong password, -3 unknown user, -4 stale nonce, -5 no credentials, -6 nonce reused, -8 user mismatch.
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    auth_check(p1: string, p2: string, p3: number): number;
    /**
     * 1 if the URI's user (and domain with flag 1) is in the subscriber table, -1 if not (or on error).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_subscriber(p1: string, p2: string, p3: number): number;
    /**
     * Digest check of the Proxy-Authorization header against the subscriber table. Codes as auth_check.
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    proxy_authenticate(p1: string, p2: string): number;
    /**
     * Digest check of the Authorization header against the subscriber table. Codes as auth_check.
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    www_authenticate(p1: string, p2: string): number;
    /**
     * www_authenticate with the given method in the digest (A2) instead of the request's. Codes as auth_check.
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    www_authenticate_method(p1: string, p2: string, p3: string): number;
  }

  /** KSR.corex: Kamailio module corex. */
  interface CorexModule {
    /**
     * Move the R-URI branch (with $du, $fs and its branch flags) into the destination set. 1 ok, -1 error (set full).
     * KSR.x.modf reaches it as "append_branch" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    append_branch(): number;
    /**
     * Add a branch to the URI (inheriting $du, $fs and the R-URI branch flags); "" = append_branch(). 1 ok, -1 error.
     * KSR.x.modf reaches it as "append_branch" (1).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    append_branch_uri(p1: string): number;
    /**
     * Like append_branch_uri with a q-value ("0.5"). 1 ok, -1 error (bad q, set full).
     * KSR.x.modf reaches it as "append_branch" (2).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    append_branch_uri_q(p1: string, p2: string): number;
    /**
     * 1 if the R-URI has a user part, -1 otherwise (also for replies).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    has_ruri_user(): number;
    /**
     * 1 if a non-empty User-Agent header is present, -1 otherwise.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    has_user_agent(): number;
    /**
     * 1 for the faked request of an event route (kemi.event_route_callback), -1 otherwise. Failure routes answer -1, as in Kamailio (tm's copy of the request is not that message).
     * KSR.x.modf reaches it as "is_faked_msg" (0).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_faked_msg(): number;
    /**
     * 1 if extended flag f is set, -1 if not or out of range.
     * KSR.x.modf reaches it as "isxflagset" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    isxflagset(p1: number): number;
    /**
     * Reset extended flag f (0..63). 1 ok, -1 if out of range.
     * KSR.x.modf reaches it as "resetxflag" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    resetxflag(p1: number): number;
    /**
     * Set extended flag f (0..63). 1 ok, -1 if out of range.
     * KSR.x.modf reaches it as "setxflag" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    setxflag(p1: number): number;
  }

  /** KSR.dispatcher: Kamailio module dispatcher. */
  interface DispatcherModule {
    /**
     * 1 if the set has an active destination (not inactive, not disabled), -1 otherwise.
     * KSR.x.modf reaches it as "ds_is_active" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_is_active(p1: number): number;
    /**
     * 1 if the destination with this exact URI in the set is active, -1 otherwise.
     * KSR.x.modf reaches it as "ds_is_active" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_is_active_uri(p1: number, p2: string): number;
    /**
     * 1 if the source IP and port are a destination of the set (any transport; -1 = any set).
     * KSR.x.modf reaches it as "ds_is_from_list" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_is_from_list(p1: number): number;
    /**
     * ds_is_from_list with match mode bits: 1 any port, 2 any transport, 4 active destinations only.
     * KSR.x.modf reaches it as "ds_is_from_list" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_is_from_list_mode(p1: number, p2: number): number;
    /**
     * ds_is_from_list_mode for the address of a URI (an IP address: no DNS lookup) instead of the source.
     * KSR.x.modf reaches it as "ds_is_from_list" (3).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_is_from_list_uri(p1: number, p2: number, p3: string): number;
    /**
     * 1 if the source IP and port are a destination of any set (any transport), -1 otherwise.
     * KSR.x.modf reaches it as "ds_is_from_list" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE, ONREPLY_ROUTE, BRANCH_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_is_from_lists(): number;
    /**
     * 1 if the set exists in the list, -1 otherwise.
     * KSR.x.modf reaches it as "ds_list_exists" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_list_exists(p1: number): number;
    /**
     * Algorithm 10: remove the load of the call (an INVITE that failed). 0, or -1 when the call is not tracked (Kamailio's KEMI values).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_load_unset(): number;
    /**
     * Algorithm 10: on a BYE or CANCEL remove the call's load from its destination; on a 2xx reply to the INVITE mark the call answered. 0 (Kamailio's KEMI value).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_load_update(): number;
    /**
     * Mark the current destination inactive (and probing with ds_probing_mode 1). 1 or -1.
     * KSR.x.modf reaches it as "ds_mark_dst" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE, ONREPLY_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_mark_dst(): number;
    /**
     * Mark the current destination with state letters: a active, i inactive, t trying, d disabled, p probing ("ip").
     * KSR.x.modf reaches it as "ds_mark_dst" (1).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE, ONREPLY_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_mark_dst_state(p1: string): number;
    /**
     * As ds_next_dst, putting the next destination's host:port in the R-URI.
     * KSR.x.modf reaches it as "ds_next_domain" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_next_domain(): number;
    /**
     * Drop the current destination record and set $du to the next; -1 when none is left or failover (flags 2) is off.
     * KSR.x.modf reaches it as "ds_next_dst" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_next_dst(): number;
    /**
     * Read the list file again (states start again from the file), at most once per reload_delta s; the old list stays when the new one is bad. 1 or -1.
     * KSR.x.modf reaches it as "ds_reload" (0).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_reload(): number;
    /**
     * Select destinations into the records only ($du and R-URI unchanged); ds_set_dst applies the first.
     * KSR.x.modf reaches it as "ds_select" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_select(p1: number, p2: number): number;
    /**
     * Select a destination and put its host:port in the R-URI.
     * KSR.x.modf reaches it as "ds_select_domain" (2).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_select_domain(p1: number, p2: number): number;
    /**
     * ds_select_domain keeping at most limit destinations (0 = no limit).
     * KSR.x.modf reaches it as "ds_select_domain" (3).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_select_domain_limit(p1: number, p2: number, p3: number): number;
    /**
     * Select a destination of the set with the algorithm and set $du to it; with flags 2 the others are kept for ds_next_dst. 1 or -1.
     * KSR.x.modf reaches it as "ds_select_dst" (2).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_select_dst(p1: number, p2: number): number;
    /**
     * ds_select_dst keeping at most limit destinations (0 = no limit).
     * KSR.x.modf reaches it as "ds_select_dst" (3).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_select_dst_limit(p1: number, p2: number, p3: number): number;
    /**
     * ds_select keeping at most limit destinations (0 = no limit).
     * KSR.x.modf reaches it as "ds_select" (3).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_select_limit(p1: number, p2: number, p3: number): number;
    /** @deprecated Not available here: not provided yet. Logs an error and returns a failure value. */
    ds_select_routes(p1: string, p2: string): number;
    /** @deprecated Not available here: not provided yet. Logs an error and returns a failure value. */
    ds_select_routes_limit(p1: string, p2: string, p3: number): number;
    /**
     * Put the current destination record's host:port in the R-URI.
     * KSR.x.modf reaches it as "ds_set_domain" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_set_domain(): number;
    /**
     * Set $du to the current destination record.
     * KSR.x.modf reaches it as "ds_set_dst" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ds_set_dst(): number;
  }

  /** KSR.hdr: Kamailio module core. */
  interface HdrModule {
    /**
     * Add header line(s) after the last header. 1 ok.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    append(p1: string): number;
    /**
     * Add header line(s) after the first header named hname (at the end if there is none). 1 ok.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    append_after(p1: string, p2: string): number;
    /**
     * Alias of hdr.append (not in Kamailio's KEMI list, but its JS example calls it).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    append_hf(p1: string): number;
    /**
     * Add header line(s) to the reply this server generates for the message (sl/tm). 1 ok.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    append_to_reply(p1: string): number;
    /**
     * Body of the first header with that name as received, null if none.
     * @returns a string, a number, or null.
     */
    get(p1: string): string | number | null;
    /**
     * Body of the idx-th header with that name (0 = first, -1 = last), null if none.
     * @returns a string, a number, or null.
     */
    get_idx(p1: string, p2: number): string | number | null;
    /**
     * Body of the first header with that name as received, "" if none.
     * @returns a string, a number, or null.
     */
    gete(p1: string): string | number | null;
    /**
     * Body of the idx-th header with that name (0 = first, -1 = last), "" if none.
     * @returns a string, a number, or null.
     */
    gete_idx(p1: string, p2: number): string | number | null;
    /**
     * Body of the first header with that name as received, "<null>" if none.
     * @returns a string, a number, or null.
     */
    getw(p1: string): string | number | null;
    /**
     * Body of the idx-th header with that name (0 = first, -1 = last), "<null>" if none.
     * @returns a string, a number, or null.
     */
    getw_idx(p1: string, p2: number): string | number | null;
    /**
     * Add header line(s) before the first header. 1 ok.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    insert(p1: string): number;
    /**
     * Add header line(s) before the first header named hname (at the top if there is none). 1 ok.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    insert_before(p1: string, p2: string): number;
    /**
     * 1 if a header with that name is present, -1 if not.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_present(p1: string): number;
    /** Compare header bodies: op eq|ne|sw|in (case-insensitive), idxmode f(irst)|l(ast)|a(ll)|o(ne). */
    match_content(p1: string, p2: string, p3: string, p4: string): boolean;
    /**
     * Remove all headers with that name (compact forms match). 1 even when none existed; -1 on a bad name.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    remove(p1: string): number;
    /**
     * Remove headers named hrm, then append the text.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    rmappend(p1: string, p2: string): number;
    /**
     * Remove headers named hrm, then insert the text at the top.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    rminsert(p1: string, p2: string): number;
  }

  /** KSR.htable: Kamailio module htable. */
  interface HtableModule {
    /**
     * Subtract 1 from an integer item; the new value, or -255 when the item is missing (and no initVal) or a string.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_dec(p1: string, p2: string): number;
    /**
     * Item value: number for integer items, string otherwise; null when missing (the table's initVal if it has one).
     * @returns a string, a number, or null.
     */
    sht_get(p1: string, p2: string): string | number | null;
    /**
     * Like sht_get, but "" when missing.
     * @returns a string, a number, or null.
     */
    sht_gete(p1: string, p2: string): string | number | null;
    /**
     * Like sht_get, but "<null>" when missing.
     * @returns a string, a number, or null.
     */
    sht_getw(p1: string, p2: string): string | number | null;
    /**
     * Add 1 to an integer item; the new value, or -255 when the item is missing (and the table has no initVal) or a string.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_inc(p1: string, p2: string): number;
    /**
     * 1 if the item is missing, -1 if present; -2 when the table has an initVal (never null); 2 for an empty table name.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_is_null(p1: string, p2: string): number;
    /**
     * Close the iterator. 1 ok, -1 unknown iterator.
     * KSR.x.modf reaches it as "sht_iterator_end" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_iterator_end(p1: string): number;
    /**
     * Move the iterator to the next item ($shtitkey/$shtitval). 1 ok, -1 no more items or unknown iterator.
     * KSR.x.modf reaches it as "sht_iterator_next" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_iterator_next(p1: string): number;
    /**
     * Remove the current item and move on: 1 next item exists, -2 no more items, -1 error.
     * KSR.x.modf reaches it as "sht_iterator_rm" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_iterator_rm(p1: string): number;
    /**
     * Make the current item expire after the given seconds. 1 ok, -1 error.
     * KSR.x.modf reaches it as "sht_iterator_setex" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_iterator_setex(p1: string, p2: number): number;
    /**
     * Set the current item to an integer. 1 ok, -1 error.
     * KSR.x.modf reaches it as "sht_iterator_seti" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_iterator_seti(p1: string, p2: number): number;
    /**
     * Set the current item to a string. 1 ok, -1 error.
     * KSR.x.modf reaches it as "sht_iterator_sets" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_iterator_sets(p1: string, p2: string): number;
    /**
     * Start (or restart) iterator `name` over the table's items (up to 4 iterators). 1 ok, -1 error.
     * KSR.x.modf reaches it as "sht_iterator_start" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_iterator_start(p1: string, p2: string): number;
    /**
     * Take the re-entrant lock of a key (never blocks: executions of a tenant run one at a time). 1.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_lock(p1: string, p2: string): number;
    /**
     * Whether some item name matches: op "eq", "ne", "re" (regex), "sw" (starts with). 1 match, -1 none or error.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_match_name(p1: string, p2: string, p3: string): number;
    /**
     * Whether some string item value matches: op "eq", "ne", "re", "sw". 1 match, -1 none or error.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_match_str_value(p1: string, p2: string, p3: string): number;
    /**
     * Remove every item of the table. 0 on success, as Kamailio's KEMI export; -1 for an empty name.
     * KSR.x.modf reaches it as "sht_reset" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_reset(p1: string): number;
    /**
     * Remove an item. 1, also when it was missing.
     * KSR.x.modf reaches it as "sht_rm" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_rm(p1: string, p2: string): number;
    /**
     * Remove the items whose name matches: op "re" regex, "sw" starts with, "ew" ends with, "in" contains. 1 ok; -1 bad op/regex.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_rm_name(p1: string, p2: string, p3: string): number;
    /**
     * Remove the items whose name matches the regular expression (case-insensitive). 1 ok; -1 bad or too slow expression.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_rm_name_re(p1: string, p2: string): number;
    /**
     * Remove the items whose string value matches: op "re", "sw", "ew", "in". 1 ok; -1 bad op/regex.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_rm_value(p1: string, p2: string, p3: string): number;
    /**
     * Remove the items whose string value matches the regular expression (case-insensitive). 1 ok; -1 bad or too slow expression.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_rm_value_re(p1: string, p2: string): number;
    /**
     * Make an existing item expire after the given seconds (0: never). 1, also when the item is missing.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_setex(p1: string, p2: string, p3: number): number;
    /**
     * Store an integer item. 1 ok; -1 when the tenant's htable memory bound is reached.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_seti(p1: string, p2: string, p3: number): number;
    /**
     * Store a string item. 1 ok; -1 when the tenant's htable memory bound is reached.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_sets(p1: string, p2: string, p3: string): number;
    /**
     * Store an integer item that expires after the given seconds (0: the table's autoexpire). 1 ok, -1 error.
     * KSR.x.modf reaches it as "sht_setxi" (4).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_setxi(p1: string, p2: string, p3: number, p4: number): number;
    /**
     * Store a string item that expires after the given seconds (0: the table's autoexpire). 1 ok, -1 error.
     * KSR.x.modf reaches it as "sht_setxs" (4).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_setxs(p1: string, p2: string, p3: string, p4: number): number;
    /**
     * Release one level of a key's lock. 1 (an unlock without lock is logged).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sht_unlock(p1: string, p2: string): number;
  }

  /** KSR.ipops: Kamailio module ipops. */
  interface IpopsModule {
    /**
     * 1 if both are the same address (IPv6 references allowed); -1 if not or invalid.
     * KSR.x.modf reaches it as "compare_ips" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    compare_ips(p1: string, p2: string): number;
    /**
     * 1 if both are the same address (no references); -1 if not or invalid.
     * KSR.x.modf reaches it as "compare_pure_ips" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    compare_pure_ips(p1: string, p2: string): number;
    /**
     * 1 and the address's type (either family) in the PV named; -1 not an address.
     * KSR.x.modf reaches it as "detailed_ip_type" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    detailed_ip_type(p1: string, p2: string): number;
    /**
     * 1 and the IPv4 address's type (PUBLIC, PRIVATE, LOOPBACK, TEST-NET, ...) in the PV named; -1 not an IPv4 address.
     * KSR.x.modf reaches it as "detailed_ipv4_type" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    detailed_ipv4_type(p1: string, p2: string): number;
    /**
     * 1 and the IPv6 address's type (GLOBAL-UNICAST, LOOPBACK, DOCUMENTATION, ...) in the PV named; -1 not an IPv6 address.
     * KSR.x.modf reaches it as "detailed_ipv6_type" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    detailed_ipv6_type(p1: string, p2: string): number;
    /**
     * 1 if the name resolves to the address; -1 if not; -3 invalid address; -4 not resolved (or not in the DNS cache yet: looked up in the background).
     * KSR.x.modf reaches it as "dns_int_match_ip" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    dns_int_match_ip(p1: string, p2: string): number;
    /**
     * 1 and $dns(pvid=>addr[i]/type[i]/ipv4/ipv6/count) filled; -2 name too long; -3 too many containers; -4 not resolved (or not in the DNS cache yet).
     * KSR.x.modf reaches it as "dns_query" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    dns_query(p1: string, p2: string): number;
    /**
     * 1 if the name resolves to the address; -1 if not; -3 invalid address; -4 not resolved (or not in the DNS cache yet: looked up in the background).
     * KSR.x.modf reaches it as "dns_sys_match_ip" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    dns_sys_match_ip(p1: string, p2: string): number;
    /**
     * 1 if the address is in one of the comma-separated subnets (net/bits); -1 if not or invalid.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ip_is_in_subnet(p1: string, p2: string): number;
    /**
     * 1 IPv4, 2 IPv6, 3 IPv6 reference, -1 not an address.
     * KSR.x.modf reaches it as "ip_type" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    ip_type(p1: string): number;
    /**
     * Same as ip_is_in_subnet.
     * KSR.x.modf reaches it as "is_in_subnet" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_in_subnet(p1: string, p2: string): number;
    /**
     * 1 if an IPv4 address, IPv6 address or IPv6 reference ([...]); -1 if not.
     * KSR.x.modf reaches it as "is_ip" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_ip(p1: string): number;
    /**
     * 1 if an IPv4 address; -1 if not.
     * KSR.x.modf reaches it as "is_ipv4" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_ip4(p1: string): number;
    /**
     * 1 if an IPv6 address (not a reference); -1 if not.
     * KSR.x.modf reaches it as "is_ipv6" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_ip6(p1: string): number;
    /**
     * 1 if an IPv6 reference ([...]); -1 if not.
     * KSR.x.modf reaches it as "is_ipv6_reference" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_ip6_reference(p1: string): number;
    /**
     * 1 if an IPv4 address in RFC 1918 private space; -1 if not.
     * KSR.x.modf reaches it as "is_ip_rfc1918" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_ip_rfc1918(p1: string): number;
    /**
     * 1 if an IPv4 or IPv6 address (no reference); -1 if not.
     * KSR.x.modf reaches it as "is_pure_ip" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_pure_ip(p1: string): number;
    /**
     * 1 and $naptrquery(pvid=>count/order[i]/pref[i]/flags[i]/services[i]/regex[i]/replace[i]) filled; -2 no name; -1 not in the DNS cache yet.
     * KSR.x.modf reaches it as "naptr_query" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    naptr_query(p1: string, p2: string): number;
    /**
     * 1 and $srvquery(pvid=>count/target[i]/port[i]/priority[i]/weight[i]) filled, RFC 2782 order; -2 no name; -1 not in the DNS cache yet.
     * KSR.x.modf reaches it as "srv_query" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    srv_query(p1: string, p2: string): number;
  }

  /** KSR.kx: Kamailio module kemix. */
  interface KxModule {
    /**
     * Digest username (user part) from Proxy-Authorization / Authorization; null when missing.
     * @returns a string, a number, or null.
     */
    get_au(): string | number | null;
    /**
     * Message body; null when missing.
     * @returns a string, a number, or null.
     */
    get_body(): string | number | null;
    /**
     * Body length in bytes; 0 if none.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    get_bodylen(): number;
    /**
     * Call-ID; "" if missing.
     * @returns a string, a number, or null.
     */
    get_callid(): string | number | null;
    /**
     * TCP connection id; -1 for UDP.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    get_conid(): number;
    /**
     * URI of the first Contact (not for Contact: *); null when missing.
     * @returns a string, a number, or null.
     */
    get_cturi(): string | number | null;
    /**
     * Value of a cfg #!define: there are none here, so always "".
     * @returns a string, a number, or null.
     */
    get_def(p1: string): string | number | null;
    /**
     * Integer value of a cfg #!define: there are none here, so always 0.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    get_defn(p1: string): number;
    /**
     * Destination URI ($du); null when missing.
     * @returns a string, a number, or null.
     */
    get_duri(): string | number | null;
    /**
     * Environment variable, only if on the host allow-list (none by default); "" otherwise.
     * @returns a string, a number, or null.
     */
    get_env(p1: string): string | number | null;
    /**
     * Environment variable as an integer, only if on the host allow-list; 0 otherwise.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    get_envn(p1: string): number;
    /**
     * From URI host; null when missing.
     * @returns a string, a number, or null.
     */
    get_fhost(): string | number | null;
    /**
     * From URI; null if no valid From.
     * @returns a string, a number, or null.
     */
    get_furi(): string | number | null;
    /**
     * From URI user; null when missing.
     * @returns a string, a number, or null.
     */
    get_fuser(): string | number | null;
    /**
     * Request method, or the CSeq method of a reply.
     * @returns a string, a number, or null.
     */
    get_method(): string | number | null;
    /**
     * The whole message as received.
     * @returns a string, a number, or null.
     */
    get_msgbuf(): string | number | null;
    /**
     * Length of the message as received.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    get_msglen(): number;
    /**
     * 1 for a request, 2 for a reply.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    get_msgtype(): number;
    /**
     * Next hop: $du if set, else the R-URI.
     * @returns a string, a number, or null.
     */
    get_nhuri(): string | number | null;
    /**
     * Original (received) R-URI; null for replies.
     * @returns a string, a number, or null.
     */
    get_ouri(): string | number | null;
    /**
     * Receive transport ("udp", "tcp").
     * @returns a string, a number, or null.
     */
    get_proto(): string | number | null;
    /**
     * Receive transport id (1 udp, 2 tcp, 3 tls, 4 sctp, 5 ws, 6 wss).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    get_protoid(): number;
    /**
     * Name of the receiving socket: null (sockets have no names here).
     * @returns a string, a number, or null.
     */
    get_rcv_sock_name(): string | number | null;
    /**
     * Receiving socket as proto:ip:port.
     * @returns a string, a number, or null.
     */
    get_rcvaddr_sock(): string | number | null;
    /**
     * Advertised IP of the receiving socket (its own IP: no advertised addresses here).
     * @returns a string, a number, or null.
     */
    get_rcvadvip(): string | number | null;
    /**
     * Advertised port of the receiving socket (its own port here).
     * @returns a string, a number, or null.
     */
    get_rcvadvport(): string | number | null;
    /**
     * Local IP the message was received on.
     * @returns a string, a number, or null.
     */
    get_rcvip(): string | number | null;
    /**
     * Local port the message was received on (a number).
     * @returns a string, a number, or null.
     */
    get_rcvport(): string | number | null;
    /**
     * R-URI host; null when missing.
     * @returns a string, a number, or null.
     */
    get_rhost(): string | number | null;
    /**
     * R-URI (the rewritten one if changed); null for replies.
     * @returns a string, a number, or null.
     */
    get_ruri(): string | number | null;
    /**
     * R-URI user; null when missing.
     * @returns a string, a number, or null.
     */
    get_ruser(): string | number | null;
    /**
     * Forced send socket ($fs) as proto:ip:port; null if none.
     * @returns a string, a number, or null.
     */
    get_send_sock(): string | number | null;
    /**
     * Name of the forced send socket: null (sockets have no names here).
     * @returns a string, a number, or null.
     */
    get_send_sock_name(): string | number | null;
    /**
     * Port of the forced send socket; 0 if none.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    get_send_sock_port(): number;
    /**
     * Source address as proto:ip:port.
     * @returns a string, a number, or null.
     */
    get_srcaddr_sock(): string | number | null;
    /**
     * Source IP address.
     * @returns a string, a number, or null.
     */
    get_srcip(): string | number | null;
    /**
     * Source port (a number).
     * @returns a string, a number, or null.
     */
    get_srcport(): string | number | null;
    /**
     * Source address as sip:ip:port (;transport=... when not UDP).
     * @returns a string, a number, or null.
     */
    get_srcuri(): string | number | null;
    /**
     * Reply status code; -1 for requests.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    get_status(): number;
    /**
     * To URI host; null when missing.
     * @returns a string, a number, or null.
     */
    get_thost(): string | number | null;
    /**
     * Current Unix time in seconds.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    get_timestamp(): number;
    /**
     * To URI; null if no valid To.
     * @returns a string, a number, or null.
     */
    get_turi(): string | number | null;
    /**
     * To URI user; null when missing.
     * @returns a string, a number, or null.
     */
    get_tuser(): string | number | null;
    /**
     * User-Agent header body; null when missing.
     * @returns a string, a number, or null.
     */
    get_ua(): string | number | null;
    /**
     * Digest username (user part) from Proxy-Authorization / Authorization; "" when missing.
     * @returns a string, a number, or null.
     */
    gete_au(): string | number | null;
    /**
     * Message body; "" when missing.
     * @returns a string, a number, or null.
     */
    gete_body(): string | number | null;
    /**
     * URI of the first Contact (not for Contact: *); "" when missing.
     * @returns a string, a number, or null.
     */
    gete_cturi(): string | number | null;
    /**
     * Destination URI ($du); "" when missing.
     * @returns a string, a number, or null.
     */
    gete_duri(): string | number | null;
    /**
     * From URI host; "" when missing.
     * @returns a string, a number, or null.
     */
    gete_fhost(): string | number | null;
    /**
     * From URI user; "" when missing.
     * @returns a string, a number, or null.
     */
    gete_fuser(): string | number | null;
    /**
     * R-URI host; "" when missing.
     * @returns a string, a number, or null.
     */
    gete_rhost(): string | number | null;
    /**
     * R-URI user; "" when missing.
     * @returns a string, a number, or null.
     */
    gete_ruser(): string | number | null;
    /**
     * To URI host; "" when missing.
     * @returns a string, a number, or null.
     */
    gete_thost(): string | number | null;
    /**
     * To URI user; "" when missing.
     * @returns a string, a number, or null.
     */
    gete_tuser(): string | number | null;
    /**
     * User-Agent header body; "" when missing.
     * @returns a string, a number, or null.
     */
    gete_ua(): string | number | null;
    /**
     * Reply status code as a string; null for requests.
     * @returns a string, a number, or null.
     */
    gets_status(): string | number | null;
    /**
     * Digest username (user part) from Proxy-Authorization / Authorization; "<null>" when missing.
     * @returns a string, a number, or null.
     */
    getw_au(): string | number | null;
    /**
     * Message body; "<null>" when missing.
     * @returns a string, a number, or null.
     */
    getw_body(): string | number | null;
    /**
     * URI of the first Contact (not for Contact: *); "<null>" when missing.
     * @returns a string, a number, or null.
     */
    getw_cturi(): string | number | null;
    /**
     * Destination URI ($du); "<null>" when missing.
     * @returns a string, a number, or null.
     */
    getw_duri(): string | number | null;
    /**
     * From URI host; "<null>" when missing.
     * @returns a string, a number, or null.
     */
    getw_fhost(): string | number | null;
    /**
     * From URI user; "<null>" when missing.
     * @returns a string, a number, or null.
     */
    getw_fuser(): string | number | null;
    /**
     * R-URI host; "<null>" when missing.
     * @returns a string, a number, or null.
     */
    getw_rhost(): string | number | null;
    /**
     * R-URI user; "<null>" when missing.
     * @returns a string, a number, or null.
     */
    getw_ruser(): string | number | null;
    /**
     * To URI host; "<null>" when missing.
     * @returns a string, a number, or null.
     */
    getw_thost(): string | number | null;
    /**
     * To URI user; "<null>" when missing.
     * @returns a string, a number, or null.
     */
    getw_tuser(): string | number | null;
    /**
     * User-Agent header body; "<null>" when missing.
     * @returns a string, a number, or null.
     */
    getw_ua(): string | number | null;
    /** True if a cfg #!define exists: there are none here, so always false. */
    ifdef(p1: string): boolean;
    /** True if a cfg #!define does not exist: always true here. */
    ifndef(p1: string): boolean;
  }

  /** KSR.maxfwd: Kamailio module maxfwd. */
  interface MaxfwdModule {
    /**
     * 1 if Max-Forwards is below the limit; -1 if not; -2 if there is no header; -3 if it is invalid.
     * KSR.x.modf reaches it as "is_maxfwd_lt" (1), "maxfwd_at_least" (1), "mf_lowlimit" (1).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE, BRANCH_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_maxfwd_lt(p1: number): number;
    /**
     * 2 = Max-Forwards added with the limit; 1 = decremented; -1 = value is 0 (reply 483); -2 = error/invalid header.
     * KSR.x.modf reaches it as "process_maxfwd" (1), "maxfwd_process" (1), "mf_process_maxfwd_header" (1).
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    process_maxfwd(p1: number): number;
  }

  /** KSR.nathelper: Kamailio module nathelper. */
  interface NathelperModule {
    /**
     * Insert ;alias=srcip~srcport~proto after the Contact URI's host:port unless it already is the source. 1 added, 2 not needed or no Contact, -1 error.
     * KSR.x.modf reaches it as "add_contact_alias" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, ONREPLY_ROUTE, BRANCH_ROUTE, LOCAL_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    add_contact_alias(): number;
    /**
     * Insert ;alias=ip~port~proto with the given address into the Contact URI. 1 added, 2 no Contact, -1 invalid address/port/proto.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, ONREPLY_ROUTE, BRANCH_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    add_contact_alias_addr(p1: string, p2: string, p3: string): number;
    /**
     * Add received="sip:srcip:port;transport" to every Contact as a header parameter, or (flag 1, UDP only) as a URI parameter. 1 ok, -1 error.
     * KSR.x.modf reaches it as "add_rcv_param" (1).
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    add_rcv_param(p1: number): number;
    /**
     * Rewrite the Contact URI's host:port to the source address (maddr dropped). 1 ok; -1 no Contact or already rewritten.
     * KSR.x.modf reaches it as "fix_nated_contact" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, ONREPLY_ROUTE, BRANCH_ROUTE, LOCAL_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    fix_nated_contact(): number;
    /**
     * Record the source address (sip:ip:port;transport) as the received address the registrar saves with the contacts. 1.
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    fix_nated_register(): number;
    /** @deprecated Not available here: SDP rewriting (fix_nated_sdp) is not implemented. Logs an error and returns a failure value. */
    fix_nated_sdp(p1: number): number;
    /** @deprecated Not available here: SDP rewriting (fix_nated_sdp_ip) is not implemented. Logs an error and returns a failure value. */
    fix_nated_sdp_ip(p1: number, p2: string): number;
    /**
     * If the R-URI has an alias parameter: $du = sip:ip:port;transport from it, and the parameter is removed. 1 done, 2 no alias, -1 malformed.
     * KSR.x.modf reaches it as "handle_ruri_alias" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, BRANCH_ROUTE, LOCAL_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    handle_ruri_alias(): number;
    /**
     * handle_ruri_alias using the first (mode 0) or the last (other modes) alias parameter. 1 / 2 / -1.
     * KSR.x.modf reaches it as "handle_ruri_alias" (1).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, BRANCH_ROUTE, LOCAL_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    handle_ruri_alias_mode(p1: number): number;
    /**
     * 1 if the IPv4 address is private (RFC 1918, RFC 6598 100.64/10, 192.0.0.0/24), -1 otherwise or when not an IPv4 address.
     * KSR.x.modf reaches it as "is_rfc1918" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_rfc1918(p1: string): number;
    /**
     * 1 if any test of the bitmask says the sender is behind NAT, else -1: 1 Contact private IP, 2 Via address != source, 4 Via private IP, 8 SDP private IP, 16 source port != Via port, 32 source private IP, 64 WebSocket, 128 source port != Contact port, 256 SDP c= != source, 512 destination != R-URI.
     * KSR.x.modf reaches it as "nat_uac_test" (1).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, ONREPLY_ROUTE, FAILURE_ROUTE, BRANCH_ROUTE, LOCAL_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    nat_uac_test(p1: number): number;
    /**
     * Write the URI encoded in the (single) Contact's alias parameter, sip:ip:port;transport=proto, into the given PV. 1 ok, -1 error.
     * KSR.x.modf reaches it as "set_alias_to_pv" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    set_alias_to_pv(p1: string): number;
    /**
     * Append ;alias=srcip~srcport~proto to the Contact URI (put in <> if needed). 1 ok; -1 no Contact or already rewritten.
     * KSR.x.modf reaches it as "set_contact_alias" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, ONREPLY_ROUTE, BRANCH_ROUTE, LOCAL_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    set_contact_alias(): number;
    /**
     * Like set_contact_alias, first removing an alias parameter the URI already has. 1 ok; -1 error.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    set_contact_alias_trim(): number;
  }

  /** KSR.ndb_redis: Kamailio module ndb_redis. */
  interface NdbRedisModule {
    /**
     * Run a Redis command line (server, command, reply name) on the shared store; keys must start with $redisd(prefix). 0 answered, -1 error.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    redis_cmd(p1: string, p2: string, p3: string): number;
    /**
     * redis_cmd with one %s parameter (server, command, p1, reply name).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    redis_cmd_p1(p1: string, p2: string, p3: string, p4: string): number;
    /**
     * redis_cmd with two %s parameters (server, command, p1, p2, reply name).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    redis_cmd_p2(p1: string, p2: string, p3: string, p4: string, p5: string): number;
    /**
     * redis_cmd with three %s parameters (server, command, p1, p2, p3, reply name).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    redis_cmd_p3(p1: string, p2: string, p3: string, p4: string, p5: string, p6: string): number;
    /**
     * Forget the reply kept under that name. 1, or -1 when there is none.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    redis_free(p1: string): number;
  }

  /** KSR.permissions: Kamailio module permissions. */
  interface PermissionsModule {
    /**
     * 1 if the IP address and port match an entry of the address group (port 0 = any), -1 otherwise.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    allow_address(p1: number, p2: string, p3: number): number;
    /**
     * The group of the first address entry matching the IP address and port, -1 when none.
     * KSR.x.modf reaches it as "allow_address_group" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    allow_address_group(p1: string, p2: number): number;
    /**
     * 1 if the source IP and port of the message match an entry of the address group (port 0 = any), -1 otherwise.
     * KSR.x.modf reaches it as "allow_source_address" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    allow_source_address(p1: number): number;
    /**
     * The group of the first address entry matching the source IP and port, -1 when none.
     * KSR.x.modf reaches it as "allow_source_address_group" (0).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    allow_source_address_group(): number;
  }

  /** KSR.pike: Kamailio module pike. */
  interface PikeModule {
    /**
     * Like pike_check_req for the given IPv4 address: 1 / -1 / -2; -1 with an error for anything else (IPv6 too, as in Kamailio 5.6).
     * KSR.x.modf reaches it as "pike_check_ip" (1).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, ONREPLY_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    pike_check_ip(p1: string): number;
    /**
     * Count this request against its source address: 1 not flooding, -1 already flooding, -2 newly detected as flooding.
     * KSR.x.modf reaches it as "pike_check_req" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, ONREPLY_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    pike_check_req(): number;
  }

  /** KSR.pv: Kamailio module core. */
  interface PvModule {
    /**
     * Value of the PV: number for integer PVs, else string; null if missing or the name is invalid.
     * @returns a string, a number, or null.
     */
    get(p1: string): string | number | null;
    /**
     * Like get, but "" when missing.
     * @returns a string, a number, or null.
     */
    gete(p1: string): string | number | null;
    /**
     * Integer value: strings are parsed as integers; missing, invalid or non-numeric gives 0.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    geti(p1: string): number;
    /**
     * Like get, but the given number when missing.
     * @returns a string, a number, or null.
     */
    getvn(p1: string, p2: number): string | number | null;
    /**
     * Like get, but the given string when missing.
     * @returns a string, a number, or null.
     */
    getvs(p1: string, p2: string): string | number | null;
    /**
     * Like get, but "<null>" when missing.
     * @returns a string, a number, or null.
     */
    getw(p1: string): string | number | null;
    /** True if the PV has no value; also true for an invalid name. */
    is_null(p1: string): boolean;
    /** Assign an integer to a writable PV. */
    seti(p1: string, p2: number): boolean;
    /** Assign a string to a writable PV ($ru $rU $rd $rp $du $fs $var $shv $avp). */
    sets(p1: string, p2: string): boolean;
    /**
     * Assign null: clears $du/$fs, removes the newest $avp value, resets $var/$shv to 0.
     * KSR.x.modf reaches it as "pv_unset" (1).
     */
    unset(p1: string): boolean;
  }

  /** KSR.registrar: Kamailio module registrar. */
  interface RegistrarModule {
    /**
     * R-URI := best binding of the R-URI's AoR (its Path/received as $du), the others appended as branches by q. 1 found, -1 none, -2 none accepts the method, -3 error.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    lookup(p1: string): number;
    /**
     * lookup() for the R-URI and every appended branch that has only a URI. 1 if any was found, else the last lookup's code.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    lookup_branches(p1: string): number;
    /**
     * Append every binding of the URI's AoR (R-URI when "") as branches; the R-URI stays. Codes as lookup().
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    lookup_to_dset(p1: string, p2: string): number;
    /**
     * lookup() for the AoR of the given URI.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    lookup_uri(p1: string, p2: string): number;
    /**
     * Send the 200 OK a save() with flag 0x02 left unsent. 1 sent, -1 nothing pending or send failed.
     * KSR.x.modf reaches it as "reg_send_reply" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    reg_send_reply(): number;
    /**
     * 1 if the R-URI's AoR (To URI for replies) has a valid binding, -1 otherwise.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    registered(p1: string): number;
    /**
     * 1 if the URI's AoR has a valid binding, -1 otherwise.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    registered_uri(p1: string, p2: string): number;
    /**
     * Process the REGISTER's contacts for its To AoR and reply (200 with the bindings, or the error). Flags: 0x01 memory only, 0x02 no reply, 0x04 one contact per AoR, 0x10 with 0x02 put the reply headers on the next reply. 1 inserted, 2 updated, 3 deleted, 4 returned; -1 error, -2 too many contacts.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE, ONREPLY_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    save(p1: string, p2: number): number;
    /**
     * save() for the AoR of the given URI instead of the To URI.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE, ONREPLY_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    save_uri(p1: string, p2: number, p3: string): number;
    /**
     * q-value ("0.5") that the next save() of this message gives every contact. 1 ok, -1 invalid.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    set_q_override(p1: string): number;
    /**
     * Remove every binding of the URI's AoR (To URI when ""). 1 done, -1 bad AoR.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    unregister(p1: string, p2: string): number;
    /**
     * Remove the binding with that ruid (of the URI's AoR, or any AoR when the URI is ""). 1 done, -1 bad AoR, -3 not found.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    unregister_ruid(p1: string, p2: string, p3: string): number;
  }

  /** KSR.rr: Kamailio module rr. */
  interface RrModule {
    /**
     * Append a parameter (";name=value") to the Record-Route URI, before or after record_route(). 1 ok; -1 on error.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, BRANCH_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    add_rr_param(p1: string): number;
    /**
     * Match a regex (case-insensitive) against the parameters of our Route (";lr;ftag=..."). 1 match; -1 otherwise.
     * KSR.x.modf reaches it as "check_route_param" (1).
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    check_route_param(p1: string): number;
    /**
     * In-dialog request direction by our Route's ftag: "downstream" (caller to callee) or "upstream". 1 if it is; -1 if not; -6 unknown direction.
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_direction(p1: string): number;
    /**
     * Route by the Route headers (RFC 3261 §16.4/§16.12, strict-router interworking). 1 routed; -1 no Route/error; -3 only our Route in an initial request (removed).
     * KSR.x.modf reaches it as "loose_route" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    loose_route(): number;
    /**
     * loose_route(); mode 1 skips the strict-router check of an R-URI of ours. Same return codes.
     * KSR.x.modf reaches it as "loose_route_mode" (1).
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    loose_route_mode(p1: number): number;
    /**
     * loose_route() for initial requests: 1 when the Route set was a preloaded one of ours (-3 of loose_route), else -1.
     * KSR.x.modf reaches it as "loose_route_preloaded" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    loose_route_preloaded(): number;
    /**
     * After loose_route(): 1 when the next hop was taken from a Route header after ours, else -1.
     * KSR.x.modf reaches it as "rr_next_hop_route" (0).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    next_hop_route(): number;
    /**
     * Record-Route this request (two headers with ;r2=on when it leaves by another socket). 1 ok; -1 if already record-routed or on error.
     * KSR.x.modf reaches it as "record_route" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, BRANCH_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    record_route(): number;
    /**
     * Record-Route with this address instead of the socket's (doubled when the transport changes). 1 ok; -1 on error.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, BRANCH_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    record_route_advertised_address(p1: string): number;
    /**
     * record_route() with URI parameters appended to the Record-Route URI (";name=value"). 1 ok; -1 on error.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, BRANCH_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    record_route_params(p1: string): number;
    /**
     * Record-Route with the given "host[:port][;params]" texts (the second, if not empty, as a second header). 1 ok; -1 on error.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, BRANCH_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    record_route_preset(p1: string, p2: string): number;
    /**
     * Record-Route with the given "host[:port][;params]" text. 1 ok; -1 on error.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, BRANCH_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    record_route_preset_one(p1: string): number;
    /**
     * Drop the Record-Route header(s) this request was going to get. Always 1.
     * KSR.x.modf reaches it as "remove_record_route" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    remove_record_route(): number;
  }

  /** KSR.rtpproxy: Kamailio module rtpproxy. */
  interface RtpproxyModule {
    /** @deprecated Not available here: no RTP proxy is configured. Logs an error and returns a failure value. */
    rtpproxy_answer(p1: string): number;
    /** @deprecated Not available here: no RTP proxy is configured. Logs an error and returns a failure value. */
    rtpproxy_answer0(): number;
    /** @deprecated Not available here: no RTP proxy is configured. Logs an error and returns a failure value. */
    rtpproxy_answer_ip(p1: string, p2: string): number;
    /** @deprecated Not available here: no RTP proxy is configured. Logs an error and returns a failure value. */
    rtpproxy_destroy(p1: string): number;
    /** @deprecated Not available here: no RTP proxy is configured. Logs an error and returns a failure value. */
    rtpproxy_destroy0(): number;
    /** @deprecated Not available here: no RTP proxy is configured. Logs an error and returns a failure value. */
    rtpproxy_manage(p1: string): number;
    /** @deprecated Not available here: no RTP proxy is configured. Logs an error and returns a failure value. */
    rtpproxy_manage0(): number;
    /** @deprecated Not available here: no RTP proxy is configured. Logs an error and returns a failure value. */
    rtpproxy_manage_ip(p1: string, p2: string): number;
    /** @deprecated Not available here: no RTP proxy is configured. Logs an error and returns a failure value. */
    rtpproxy_offer(p1: string): number;
    /** @deprecated Not available here: no RTP proxy is configured. Logs an error and returns a failure value. */
    rtpproxy_offer0(): number;
    /** @deprecated Not available here: no RTP proxy is configured. Logs an error and returns a failure value. */
    rtpproxy_offer_ip(p1: string, p2: string): number;
    /** @deprecated Not available here: no RTP proxy is configured. Logs an error and returns a failure value. */
    rtpproxy_stop_stream2uac(): number;
    /** @deprecated Not available here: no RTP proxy is configured. Logs an error and returns a failure value. */
    rtpproxy_stop_stream2uas(): number;
    /** @deprecated Not available here: no RTP proxy is configured. Logs an error and returns a failure value. */
    rtpproxy_stream2uac(p1: string, p2: number): number;
    /** @deprecated Not available here: no RTP proxy is configured. Logs an error and returns a failure value. */
    rtpproxy_stream2uas(p1: string, p2: number): number;
    /** @deprecated Not available here: no RTP proxy is configured. Logs an error and returns a failure value. */
    set_rtpproxy_set(p1: number): number;
    /** @deprecated Not available here: no RTP proxy is configured. Logs an error and returns a failure value. */
    start_recording(): number;
  }

  /** KSR.sanity: Kamailio module sanity. */
  interface SanityModule {
    /**
     * Run the checks selected by msg_flags/uri_flags. 1 passed; -1 failed (error reply already sent; just exit).
     * KSR.x.modf reaches it as "sanity_check" (2).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, ONREPLY_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sanity_check(p1: number, p2: number): number;
    /**
     * sanity_check with the default flags (3047, 7).
     * KSR.x.modf reaches it as "sanity_check" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, ONREPLY_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sanity_check_defaults(): number;
    /**
     * In noreply mode, send the reply of the last failed check (500 Server Sanity Failure if none). Returns 1; -1 if sending failed.
     * KSR.x.modf reaches it as "sanity_reply" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, ONREPLY_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sanity_reply(): number;
  }

  /** KSR.siputils: Kamailio module siputils. */
  interface SiputilsModule {
    /**
     * Add ";param" (name or name=value) to the R-URI. 1 ok (also for ""), -1 on error.
     * KSR.x.modf reaches it as "add_uri_param" (1).
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    add_uri_param(p1: string): number;
    /**
     * 1 if user, host and port (default 5060) match, -1 if not, -2 if one does not parse.
     * KSR.x.modf reaches it as "cmp_aor" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    cmp_aor(p1: string, p2: string): number;
    /**
     * 1 if both name the same header (case-insensitive, compact forms), -1 if not, -2 if invalid.
     * KSR.x.modf reaches it as "cmp_hdr_name" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    cmp_hdr_name(p1: string, p2: string): number;
    /**
     * 1 if the URIs are equal (RFC 3261 §19.1.4), -1 if not, -2 if one does not parse.
     * KSR.x.modf reaches it as "cmp_uri" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    cmp_uri(p1: string, p2: string): number;
    /**
     * 1 if the To header has a tag, -1 otherwise.
     * KSR.x.modf reaches it as "has_totag" (0).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    has_totag(): number;
    /**
     * 1 if the text is non-empty [0-9A-Za-z]; -2 if empty, -3 on another character.
     * KSR.x.modf reaches it as "is_alphanum" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_alphanum(p1: string): number;
    /**
     * Like is_alphanum, also allowing the characters of the second text.
     * KSR.x.modf reaches it as "is_alphanumex" (2).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_alphanumex(p1: string, p2: string): number;
    /**
     * 1 if the message did not pass another proxy (one Via; for replies: see is_first_hop_mode 0), else -1.
     * KSR.x.modf reaches it as "is_first_hop" (0).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_first_hop(): number;
    /**
     * is_first_hop; for replies mode 0 also requires the top Record-Route to be an IP and not the source.
     * KSR.x.modf reaches it as "is_first_hop" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_first_hop_mode(p1: number): number;
    /**
     * 1 if the R-URI has a gr parameter with a value, 2 if gr has no value, -1 otherwise (RFC 5627).
     * KSR.x.modf reaches it as "is_gruu" (0).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_gruu(): number;
    /**
     * 1 if the text is non-empty decimal digits only; -2 otherwise.
     * KSR.x.modf reaches it as "is_numeric" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_numeric(p1: string): number;
    /**
     * 1 for a reply, -1 for a request.
     * KSR.x.modf reaches it as "is_reply" (0).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_reply(): number;
    /**
     * 1 for a request, -1 for a reply.
     * KSR.x.modf reaches it as "is_request" (0).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_request(): number;
    /**
     * 1 if the text is an optional '+' (then 1-9) followed by digits only; -2 otherwise.
     * KSR.x.modf reaches it as "is_tel_number" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_tel_number(p1: string): number;
    /**
     * 1 if the text is a valid sip/sips/tel URI, -1 otherwise.
     * KSR.x.modf reaches it as "is_uri" (1).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_uri(p1: string): number;
    /**
     * Answer an OPTIONS addressed to this server (no R-URI user) with 200 OK + Accept/Accept-Encoding/Accept-Language/Supported. 1 ok, -1 otherwise.
     * KSR.x.modf reaches it as "options_reply" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    options_reply(): number;
    /**
     * 1 if the R-URI has the parameter (exact name) without a value, -1 otherwise.
     * KSR.x.modf reaches it as "uri_param" (1).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, BRANCH_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    uri_param(p1: string): number;
    /**
     * 1 if the R-URI has the parameter (case-insensitive name), with or without value; -1 otherwise.
     * KSR.x.modf reaches it as "uri_param_any" (1).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, BRANCH_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    uri_param_any(p1: string): number;
    /**
     * Remove the first R-URI parameter with that name (case-insensitive). 1 (also when absent), -1 on error.
     * KSR.x.modf reaches it as "uri_param_rm" (1).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, BRANCH_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    uri_param_rm(p1: string): number;
    /**
     * 1 if the R-URI has the parameter (exact name) with exactly that value, -1 otherwise.
     * KSR.x.modf reaches it as "uri_param" (2).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, BRANCH_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    uri_param_value(p1: string, p2: string): number;
  }

  /** KSR.sl: Kamailio module sl. */
  interface SlModule {
    /**
     * Reply statefully if the message has a transaction (t_newtran/t_relay ran, or a transaction route), else statelessly. 1 ok, -1 error, -2 if the message must not be answered.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, ONREPLY_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    send_reply(p1: number, p2: string): number;
    /**
     * Reply with the last internal error (e.g. after a failed relay), else 500 with Kamailio's text for an unspecified error. Returns 1.
     * KSR.x.modf reaches it as "sl_reply_error" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sl_reply_error(): number;
    /**
     * Send a stateless reply. 1 ok, -1 error (reply, ACK, code outside 100..699, send failure), -2 if the message must not be answered.
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    sl_send_reply(p1: number, p2: string): number;
  }

  /** KSR.tls: Kamailio module tls. */
  interface TlsModule {
    /**
     * The value of a $tls_* variable by its name without "$" (e.g. "tls_peer_subject_cn"); "" when not over TLS, absent or unknown.
     * @returns a string, a number, or null.
     */
    cget(p1: string): string | number | null;
    /**
     * 1 when the message came over TLS and the peer presented a certificate that verified against the CA file; -1 otherwise.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    is_peer_verified(): number;
  }

  /** KSR.tm: Kamailio module tm. */
  interface TmModule {
    /**
     * Failure route: 1 if any branch received a response, -1 otherwise.
     * KSR.x.modf reaches it as "t_any_replied" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, TM_ONREPLY_ROUTE, FAILURE_ROUTE, BRANCH_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_any_replied(): number;
    /**
     * Failure route: 1 if any branch timed out, -1 otherwise.
     * KSR.x.modf reaches it as "t_any_timeout" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, TM_ONREPLY_ROUTE, FAILURE_ROUTE, BRANCH_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_any_timeout(): number;
    /**
     * Failure route: 1 if the failed branch received a response, -1 otherwise.
     * KSR.x.modf reaches it as "t_branch_replied" (0).
     * Kamailio 5.6 allows it in FAILURE_ROUTE, EVENT_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_branch_replied(): number;
    /**
     * Failure route: 1 if the failed branch timed out, -1 otherwise.
     * KSR.x.modf reaches it as "t_branch_timeout" (0).
     * Kamailio 5.6 allows it in FAILURE_ROUTE, EVENT_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_branch_timeout(): number;
    /**
     * 1 if the status (see t_get_status_code) matches the extended, case-insensitive regex; -1 otherwise.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE, ONREPLY_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_check_status(p1: string): number;
    /**
     * Request: 0 retransmission (last reply resent) or hop-by-hop ACK (absorbed) — stop; 1 ACK of a relayed 2xx / CANCEL whose INVITE exists; -1 none. Reply: 1/-1. Transaction routes: 1.
     * KSR.x.modf reaches it as "t_check_trans" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, ONREPLY_ROUTE, BRANCH_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_check_trans(): number;
    /**
     * Branch index: the branch of a branch/onreply/branch-failure route; in a request route the number of appended branches; in a failure route the branches so far plus appended ones; -1 undefined.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_get_branch_index(): number;
    /**
     * Status of the last reply sent (request route), of the current reply (reply routes), of the winning reply (failure route); -1 without a transaction.
     * KSR.x.modf reaches it as "t_get_status_code" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, ONREPLY_ROUTE, FAILURE_ROUTE, BRANCH_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_get_status_code(): number;
    /**
     * 1 if a CANCEL arrived for the transaction, -1 otherwise.
     * KSR.x.modf reaches it as "t_is_canceled" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, TM_ONREPLY_ROUTE, FAILURE_ROUTE, BRANCH_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_is_canceled(): number;
    /**
     * Whether "branch_route", "failure_route" or "onreply_route" is armed: 1 yes, -1 no.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_is_set(p1: string): number;
    /**
     * Create the transaction: 1 created, 0 retransmission absorbed (stop), -10 already created for this message, <0 error.
     * KSR.x.modf reaches it as "t_newtran" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_newtran(): number;
    /**
     * Arm the branch route (JS function name) run for each outgoing branch of the next relay; "" disarms. 1.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_on_branch(p1: string): number;
    /**
     * Arm the branch-failure route run when one branch ends negatively; "" disarms. 1.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE, TM_ONREPLY_ROUTE, BRANCH_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_on_branch_failure(p1: string): number;
    /**
     * Arm the failure route run when every branch ended negatively (or timed out / was cancelled); "" disarms. 1.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE, TM_ONREPLY_ROUTE, BRANCH_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_on_failure(p1: string): number;
    /**
     * Arm the onreply route run for each response of the transaction; "" disarms. 1.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE, TM_ONREPLY_ROUTE, BRANCH_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_on_reply(p1: string): number;
    /**
     * Relay statefully to $du / R-URI / the branch set. Request route: 1 ok, 0 retransmission or hop-by-hop ACK absorbed, <0 error (reply with sl_reply_error). Failure route: sends the new branches, 1 or -1.
     * KSR.x.modf reaches it as "t_relay" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_relay(): number;
    /**
     * Like t_relay, over the given transport ("udp", "tcp", "tls", "ws" or "wss").
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_relay_to_proto(p1: string): number;
    /**
     * Like t_relay, every branch sent to proto:addr:port.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_relay_to_proto_addr(p1: string, p2: string, p3: number): number;
    /**
     * Like t_relay, every branch sent to the given next hop ("[proto:]host[:port]" or a SIP URI).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_relay_to_proxy(p1: string): number;
    /**
     * Stateful reply on the existing transaction (t_newtran/t_relay first). 1 ok, -1 error or no transaction, -2 if the message must not be answered.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, ONREPLY_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_reply(p1: number, p2: string): number;
    /**
     * Back to the default fr_timer and fr_inv_timer. 1.
     * KSR.x.modf reaches it as "t_reset_fr" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, TM_ONREPLY_ROUTE, FAILURE_ROUTE, BRANCH_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_reset_fr(): number;
    /**
     * Stateful reply, creating the transaction if needed. 1 ok, -1 error.
     * Kamailio 5.6 allows it in REQUEST_ROUTE, ONREPLY_ROUTE, FAILURE_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_send_reply(p1: number, p2: string): number;
    /**
     * 1: a 6xx from a branch no longer cancels the other branches (0 restores). 1.
     * KSR.x.modf reaches it as "t_set_disable_6xx" (1).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, TM_ONREPLY_ROUTE, FAILURE_ROUTE, BRANCH_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_set_disable_6xx(p1: number): number;
    /**
     * Set fr_inv_timer and fr_timer (ms, 0 = default) of the transaction (or the one about to be created). 1 ok, -1 invalid.
     * KSR.x.modf reaches it as "t_set_fr" (2).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, TM_ONREPLY_ROUTE, FAILURE_ROUTE, BRANCH_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_set_fr(p1: number, p2: number): number;
    /**
     * t_set_fr(ms, 0).
     * KSR.x.modf reaches it as "t_set_fr" (1).
     * Kamailio 5.6 allows it in REQUEST_ROUTE, TM_ONREPLY_ROUTE, FAILURE_ROUTE, BRANCH_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_set_fr_inv(p1: number): number;
  }

  /** KSR.tmx: Kamailio module tmx. */
  interface TmxModule {
    /**
     * Copy the message flags into the transaction (seen by its later routes). 1 ok, -1 without a transaction.
     * KSR.x.modf reaches it as "t_flush_flags" (0).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_flush_flags(): number;
    /**
     * 1 in a branch route, -1 elsewhere.
     * KSR.x.modf reaches it as "t_is_branch_route" (0).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_is_branch_route(): number;
    /**
     * 1 in a failure route, -1 elsewhere.
     * KSR.x.modf reaches it as "t_is_failure_route" (0).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_is_failure_route(): number;
    /**
     * 1 in the core reply route or a tm onreply route, -1 elsewhere.
     * KSR.x.modf reaches it as "t_is_reply_route" (0).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_is_reply_route(): number;
    /**
     * 1 in the request route, -1 elsewhere.
     * KSR.x.modf reaches it as "t_is_request_route" (0).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_is_request_route(): number;
    /**
     * 1 if another worker is processing the same request right now (a racing retransmission), -1 otherwise. Routes run one at a time here, so no request is ever in process elsewhere: -1.
     * KSR.x.modf reaches it as "t_precheck_trans" (0).
     * Kamailio 5.6 allows it in REQUEST_ROUTE (ksr check reports calls in other routes; the call runs).
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    t_precheck_trans(): number;
  }

  /** KSR.xhttp_prom: Kamailio module xhttp_prom. */
  interface XhttpPromModule {
    /** @deprecated Not available here: this server serves /metrics itself (ksr run --metrics); scripts do not handle HTTP. Logs an error and returns a failure value. */
    check_uri(): number;
    /**
     * Add a non-negative integer to the script counter named by the first argument, without labels. 1 on success, -1 on failure.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    counter_inc_l0(p1: string, p2: number): number;
    /**
     * Add a non-negative integer to the script counter named by the first argument, with 1 label value. 1 on success, -1 on failure.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    counter_inc_l1(p1: string, p2: number, p3: string): number;
    /**
     * Add a non-negative integer to the script counter named by the first argument, with 2 label values. 1 on success, -1 on failure.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    counter_inc_l2(p1: string, p2: number, p3: string, p4: string): number;
    /**
     * Add a non-negative integer to the script counter named by the first argument, with 3 label values. 1 on success, -1 on failure.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    counter_inc_l3(p1: string, p2: number, p3: string, p4: string, p5: string): number;
    /**
     * Set the script counter's series without labels back to 0. 1 on success, -1 when it does not exist.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    counter_reset_l0(p1: string): number;
    /**
     * Set the script counter's series with 1 label value back to 0. 1 on success, -1 when it does not exist.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    counter_reset_l1(p1: string, p2: string): number;
    /**
     * Set the script counter's series with 2 label values back to 0. 1 on success, -1 when it does not exist.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    counter_reset_l2(p1: string, p2: string, p3: string): number;
    /**
     * Set the script counter's series with 3 label values back to 0. 1 on success, -1 when it does not exist.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    counter_reset_l3(p1: string, p2: string, p3: string, p4: string): number;
    /** @deprecated Not available here: this server serves /metrics itself (ksr run --metrics); scripts do not handle HTTP. Logs an error and returns a failure value. */
    dispatch(): number;
    /**
     * Set the script gauge's series without labels back to 0. 1 on success, -1 when it does not exist.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    gauge_reset_l0(p1: string): number;
    /**
     * Set the script gauge's series with 1 label value back to 0. 1 on success, -1 when it does not exist.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    gauge_reset_l1(p1: string, p2: string): number;
    /**
     * Set the script gauge's series with 2 label values back to 0. 1 on success, -1 when it does not exist.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    gauge_reset_l2(p1: string, p2: string, p3: string): number;
    /**
     * Set the script gauge's series with 3 label values back to 0. 1 on success, -1 when it does not exist.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    gauge_reset_l3(p1: string, p2: string, p3: string, p4: string): number;
    /**
     * Set the script gauge, without labels, to the number written in the second argument. 1 on success, -1 on failure.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    gauge_set_l0(p1: string, p2: string): number;
    /**
     * Set the script gauge, with 1 label value, to the number written in the second argument. 1 on success, -1 on failure.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    gauge_set_l1(p1: string, p2: string, p3: string): number;
    /**
     * Set the script gauge, with 2 label values, to the number written in the second argument. 1 on success, -1 on failure.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    gauge_set_l2(p1: string, p2: string, p3: string, p4: string): number;
    /**
     * Set the script gauge, with 3 label values, to the number written in the second argument. 1 on success, -1 on failure.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    gauge_set_l3(p1: string, p2: string, p3: string, p4: string, p5: string): number;
    /**
     * Observe the number written in the second argument in the script histogram, without labels (buckets 0.005 … 10). 1 on success, -1 on failure.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    histogram_observe_l0(p1: string, p2: string): number;
    /**
     * Observe the number written in the second argument in the script histogram, with 1 label value (buckets 0.005 … 10). 1 on success, -1 on failure.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    histogram_observe_l1(p1: string, p2: string, p3: string): number;
    /**
     * Observe the number written in the second argument in the script histogram, with 2 label values (buckets 0.005 … 10). 1 on success, -1 on failure.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    histogram_observe_l2(p1: string, p2: string, p3: string, p4: string): number;
    /**
     * Observe the number written in the second argument in the script histogram, with 3 label values (buckets 0.005 … 10). 1 on success, -1 on failure.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    histogram_observe_l3(p1: string, p2: string, p3: string, p4: string, p5: string): number;
  }

  /** The KSR object: core functions and one member per module. */
  interface KSR {
    readonly x: XModule;
    readonly auth: AuthModule;
    readonly auth_db: AuthDbModule;
    readonly corex: CorexModule;
    readonly dispatcher: DispatcherModule;
    readonly hdr: HdrModule;
    readonly htable: HtableModule;
    readonly ipops: IpopsModule;
    readonly kx: KxModule;
    readonly maxfwd: MaxfwdModule;
    readonly nathelper: NathelperModule;
    readonly ndb_redis: NdbRedisModule;
    readonly permissions: PermissionsModule;
    readonly pike: PikeModule;
    readonly pv: PvModule;
    readonly registrar: RegistrarModule;
    readonly rr: RrModule;
    readonly rtpproxy: RtpproxyModule;
    readonly sanity: SanityModule;
    readonly siputils: SiputilsModule;
    readonly sl: SlModule;
    readonly tls: TlsModule;
    readonly tm: TmModule;
    readonly tmx: TmxModule;
    readonly xhttp_prom: XhttpPromModule;
    /** Add the rport parameter to the Via this proxy inserts (RFC 3581 §3). */
    add_local_rport(): boolean;
    /** Write the text to the log at level crit (no newline is added). */
    crit(p1: string): void;
    /** Write the text to the log at level dbg (no newline is added). */
    dbg(p1: string): void;
    /** Write the text to the log at level err (no newline is added). */
    err(p1: string): void;
    /** Add received/rport to the top Via and reply to the source port (RFC 3581 symmetric response routing). */
    force_rport(): boolean;
    /**
     * Stateless forward to $du, else the R-URI (a reply goes by its Via). 1 ok, -1 error.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    forward(): number;
    /**
     * Stateless forward to the given URI (empty = like forward()). 1 ok, -1 error.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    forward_uri(p1: string): number;
    /** Write the text to the log at level info (no newline is added). */
    info(p1: string): void;
    /** True if the request method (CSeq method for a reply) is ACK. */
    is_ACK(): boolean;
    /** True if the request method (CSeq method for a reply) is BYE. */
    is_BYE(): boolean;
    /** True if the request method (CSeq method for a reply) is CANCEL. */
    is_CANCEL(): boolean;
    /** True if the request method (CSeq method for a reply) is DELETE. */
    is_DELETE(): boolean;
    /** True if the request method (CSeq method for a reply) is GET. */
    is_GET(): boolean;
    /** True if the request method (CSeq method for a reply) is INFO. */
    is_INFO(): boolean;
    /** True if the request method (CSeq method for a reply) is INVITE. */
    is_INVITE(): boolean;
    /** True if the message was received on an IPv4 socket. */
    is_IPv4(): boolean;
    /** True if the message was received on an IPv6 socket. */
    is_IPv6(): boolean;
    /** True if the request method (CSeq method for a reply) is KDMQ. */
    is_KDMQ(): boolean;
    /** True if the request method (CSeq method for a reply) is MESSAGE. */
    is_MESSAGE(): boolean;
    /** True if the request method (CSeq method for a reply) is NOTIFY. */
    is_NOTIFY(): boolean;
    /** True if the request method (CSeq method for a reply) is OPTIONS. */
    is_OPTIONS(): boolean;
    /** True if the request method (CSeq method for a reply) is POST. */
    is_POST(): boolean;
    /** True if the request method (CSeq method for a reply) is PRACK. */
    is_PRACK(): boolean;
    /** True if the request method (CSeq method for a reply) is PUBLISH. */
    is_PUBLISH(): boolean;
    /** True if the request method (CSeq method for a reply) is PUT. */
    is_PUT(): boolean;
    /** True if the request method (CSeq method for a reply) is REFER. */
    is_REFER(): boolean;
    /** True if the request method (CSeq method for a reply) is REGISTER. */
    is_REGISTER(): boolean;
    /** True if the message was received over SCTP. */
    is_SCTP(): boolean;
    /** True if the request method (CSeq method for a reply) is SUBSCRIBE. */
    is_SUBSCRIBE(): boolean;
    /** True if the message was received over TCP. */
    is_TCP(): boolean;
    /** True if the message was received over TLS. */
    is_TLS(): boolean;
    /** True if the message was received over UDP. */
    is_UDP(): boolean;
    /** True if the request method (CSeq method for a reply) is UPDATE. */
    is_UPDATE(): boolean;
    /** True if the message was received over WS. */
    is_WS(): boolean;
    /** True if the message was received over WSS. */
    is_WSS(): boolean;
    /** True if the message was received over WS or WSS. */
    is_WSX(): boolean;
    /** True if the local port the message arrived on equals p. */
    is_dst_port(p1: number): boolean;
    /** Case-insensitive method test (CSeq method for replies); "INVITE|BYE" lists take standard methods only. */
    is_method(p1: string): boolean;
    /** True if the method matches a letter: I A B C R M O S P N F U E K G T V D (case-insensitive). */
    is_method_in(p1: string): boolean;
    /**
     * True if the host (or sip:/sips: URI host, port, transport) is a local listen address or alias. No port = any port.
     * KSR.x.modf reaches it as "is_myself" (1).
     */
    is_myself(p1: string): boolean;
    /** True if $du is set and points to this server. */
    is_myself_duri(): boolean;
    /** True if the From URI points to this server. */
    is_myself_furi(): boolean;
    /** True if the next hop ($du if set, else the R-URI) points to this server. */
    is_myself_nhuri(): boolean;
    /** True if the (possibly rewritten) R-URI points to this server; false for replies. */
    is_myself_ruri(): boolean;
    /** True if the source IP is a local address (any port). */
    is_myself_srcip(): boolean;
    /** True if the source address (as sip:ip:port;transport) is local. */
    is_myself_suri(): boolean;
    /** True if the To URI points to this server. */
    is_myself_turi(): boolean;
    /** True if the receive transport matches a letter: u=UDP t=TCP e=TLS s=SCTP v=WS w=WSS. */
    is_proto(p1: string): boolean;
    /** True if the source port equals p. */
    is_src_port(p1: number): boolean;
    /**
     * True if branch flag f of branch 0 is set.
     * KSR.x.modf reaches it as "isbflagset" (1).
     */
    isbflagset(p1: number): boolean;
    /**
     * True if branch flag f of branch index b is set (false if no such branch).
     * KSR.x.modf reaches it as "isbflagset" (2).
     */
    isbiflagset(p1: number, p2: number): boolean;
    /**
     * True if $du is set and non-empty.
     * KSR.x.modf reaches it as "isdsturiset" (0).
     */
    isdsturiset(): boolean;
    /** True if message flag f is set. */
    isflagset(p1: number): boolean;
    /**
     * True if script flag f is set.
     * KSR.x.modf reaches it as "issflagset" (1).
     */
    issflagset(p1: number): boolean;
    /** Log text at level dbg|info|notice|warn|err|crit (case-insensitive); any other level logs at err. */
    log(p1: string, p2: string): void;
    /** Write the text to the log at level notice (no newline is added). */
    notice(p1: string): void;
    /**
     * Reset branch flag f of branch 0.
     * KSR.x.modf reaches it as "resetbflag" (1).
     */
    resetbflag(p1: number): boolean;
    /**
     * Reset branch flag f of branch index b.
     * KSR.x.modf reaches it as "resetbflag" (2).
     */
    resetbiflag(p1: number, p2: number): boolean;
    /**
     * Clear $du.
     * KSR.x.modf reaches it as "resetdsturi" (0).
     */
    resetdsturi(): boolean;
    /** Reset message flag f (0..31). */
    resetflag(p1: number): boolean;
    /**
     * Reset script flag f.
     * KSR.x.modf reaches it as "resetsflag" (1).
     */
    resetsflag(p1: number): boolean;
    /**
     * Run a native kamailio.cfg route block: there are none here, so always -1 (no such route), as in Kamailio.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    route(p1: string): number;
    /**
     * Address to advertise in the Via/Record-Route added for this message. 1 ok, 0 if longer than 127 chars.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    set_advertised_address(p1: string): number;
    /**
     * Port to advertise in the Via/Record-Route added for this message. 1 ok, 0 if longer than 7 chars.
     * @returns > 0 on success, < 0 on failure (Kamailio's int convention).
     */
    set_advertised_port(p1: string): number;
    /** Mark the message to be dropped when the route ends (execution continues). */
    set_drop(): void;
    /** Close the TCP connection after forwarding this message. */
    set_forward_close(): boolean;
    /** Forward only over an existing TCP connection; never open a new one. */
    set_forward_no_connect(): boolean;
    /** Close the TCP connection after sending the reply to this message. */
    set_reply_close(): boolean;
    /** Send replies only over the existing TCP connection; never open a new one. */
    set_reply_no_connect(): boolean;
    /**
     * Set branch flag f of branch 0 (the R-URI branch).
     * KSR.x.modf reaches it as "setbflag" (1).
     */
    setbflag(p1: number): boolean;
    /**
     * Set branch flag f of branch index b (no effect on a branch that does not exist).
     * KSR.x.modf reaches it as "setbflag" (2).
     */
    setbiflag(p1: number, p2: number): boolean;
    /**
     * Set the destination URI ($du). Returns true even when it cannot be set (Kamailio quirk).
     * KSR.x.modf reaches it as "setdsturi" (1).
     */
    setdsturi(p1: string): boolean;
    /** Set message flag f (0..31). */
    setflag(p1: number): boolean;
    /** Replace the R-URI host part ($rd). */
    sethost(p1: string): boolean;
    /**
     * Set script flag f (script flags are reset at the start of each route run).
     * KSR.x.modf reaches it as "setsflag" (1).
     */
    setsflag(p1: number): boolean;
    /** Replace the whole R-URI ($ru). The text is taken as is, as Kamailio does. */
    seturi(p1: string): boolean;
    /** Replace the R-URI user part ($rU); an empty string removes it. */
    setuser(p1: string): boolean;
    /** True if the next-hop host is an IPv4 address. */
    to_IPv4(): boolean;
    /** True if the next-hop host is an IPv6 address. */
    to_IPv6(): boolean;
    /** True if the next hop ($du, else R-URI; 2nd Via for replies) uses SCTP. */
    to_SCTP(): boolean;
    /** True if the next hop ($du, else R-URI; 2nd Via for replies) uses TCP. */
    to_TCP(): boolean;
    /** True if the next hop ($du, else R-URI; 2nd Via for replies) uses TLS. */
    to_TLS(): boolean;
    /** True if the next hop ($du, else R-URI; 2nd Via for replies) uses UDP. */
    to_UDP(): boolean;
    /** True if the next hop ($du, else R-URI; 2nd Via for replies) uses WS. */
    to_WS(): boolean;
    /** True if the next hop ($du, else R-URI; 2nd Via for replies) uses WSS. */
    to_WSS(): boolean;
    /** True if the next hop ($du, else R-URI; 2nd Via for replies) uses WS or WSS. */
    to_WSX(): boolean;
    /** Write the text to the log at level warn (no newline is added). */
    warn(p1: string): void;
  }

  /** The type of a route function (ksr_request_route and the others). */
  type RouteFunction = () => void;

  /** The type of the function kemi.event_route_callback names. */
  type EventRouteFunction = (evname: string) => void;
}

/** The Kamailio KEMI API, as in app_jsdt. */
declare const KSR: KSRTypes.KSR;
