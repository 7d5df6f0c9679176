// Stateless proxy: every request goes to its Request-URI; responses follow
// their Via (no ksr_reply_route, so the core forwards them).
function ksr_request_route() {
  KSR.forward();
}
