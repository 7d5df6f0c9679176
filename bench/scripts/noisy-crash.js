// Noisy-neighbour tenant "crash" (npm run bench -- --scenario noisy-neighbour
// --noisy crash): one allocation of 2^26 doubles (512 MB) far beyond the
// isolate's heap limit. V8 does not fail it inside the isolate: it aborts
// the whole process (fatal "CALL_AND_RETRY_LAST"). Only a server that runs
// each tenant in its own process can keep the other tenants serving.
function ksr_request_route() {
	var huge = new Array(Math.pow(2, 26)).fill(1.5);
	KSR.sl.sl_send_reply(200, "allocated " + huge.length);
}
