// Noisy-neighbour tenant "loop" (npm run bench -- --scenario noisy-neighbour):
// every request spins until the tenant's routeTimeoutMs ends the route, so
// each one costs a full timeout of CPU. The server answers with the
// tenant's onError status.
function ksr_request_route() {
	for (;;) {
		// never leaves: only the route timeout stops it
	}
}
