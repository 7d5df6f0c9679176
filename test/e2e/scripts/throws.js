// Every request makes the route throw from a helper, after nothing was sent.
function ksr_request_route() {
  checkRequest();
}

function checkRequest() {
  throw new Error("route failed on purpose");
}
