// Noisy-neighbour tenant "crash" (npm run bench -- --scenario noisy-neighbour
// --noisy crash): a 256 MB string split into single characters, far beyond
// the isolate's heap limit in one step. V8 does not fail it inside the
// isolate: it aborts the whole process. Only a server that runs
// each tenant in its own process can keep the other tenants serving.
function ksr_request_route() {
	var huge = "ab".repeat(Math.pow(2, 27)).split("");
	KSR.sl.sl_send_reply(200, "allocated " + huge.length);
}
