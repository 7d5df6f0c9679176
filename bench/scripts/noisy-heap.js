// Noisy-neighbour tenant "heap" (npm run bench -- --scenario noisy-neighbour):
// every request keeps allocating small objects and strings, all reachable,
// until the isolate reaches its heap limit (heapMb). Many small allocations
// is the case the heap limit catches and recovers from (the isolate is
// discarded and created again); a single allocation far beyond the limit is
// the "crash" tenant instead.
function ksr_request_route() {
	var hoard = [];
	for (var i = 0; ; i++) {
		hoard.push({
			index: i,
			label: String(i).padStart(200, "x"),
			values: [i, i + 1, i + 2, i + 3, i + 4, i + 5, i + 6, i + 7],
		});
	}
}
