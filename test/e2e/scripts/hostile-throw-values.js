// Each INFO throws the next of a list of awkward non-Error values.
let next = 0;

function awkwardValue(i) {
  switch (i % 8) {
    case 0: return undefined;
    case 1: return null;
    case 2: return 42;
    case 3: return Symbol("thrown");
    case 4: return { toString() { throw new Error("toString throws too"); } };
    case 5: return Object.create(null);
    case 6: return new Proxy({}, { get() { throw new Error("proxy trap"); }, getPrototypeOf() { throw new Error("proxy trap"); } });
    default: return "~~ksr~exit~~"; // app_jsdt exit marker thrown by hand: a clean exit
  }
}

function ksr_request_route() {
  if (KSR.is_method("INFO")) throw awkwardValue(next++);
  KSR.sl.sl_send_reply(200, "OK");
}
