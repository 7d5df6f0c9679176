// INFO tries to reach the host (process, require, host objects) from inside
// the isolate and answers 200 with a reason naming every probe that found
// something, or "contained".
const HOST_NAMES = ["process", "require", "module", "Buffer", "global", "mainModule", "setTimeout", "setImmediate"];

function leakedHostName(obj) {
  for (const name of HOST_NAMES) {
    try {
      if (obj !== null && (typeof obj === "object" || typeof obj === "function") && obj[name] !== undefined) return name;
    } catch (e) {}
  }
  return undefined;
}

/** Every object reachable from KSR through own properties and prototypes (bounded). */
function reachable(root) {
  const seen = new Set();
  const queue = [root];
  while (queue.length > 0 && seen.size < 5000) {
    const obj = queue.shift();
    if (obj === null || (typeof obj !== "object" && typeof obj !== "function") || seen.has(obj)) continue;
    seen.add(obj);
    let names = [];
    try { names = Reflect.ownKeys(obj); } catch (e) {}
    for (const key of names) {
      try {
        const desc = Object.getOwnPropertyDescriptor(obj, key);
        if (desc && "value" in desc) queue.push(desc.value);
      } catch (e) {}
    }
    try { queue.push(Object.getPrototypeOf(obj)); } catch (e) {}
  }
  return seen;
}

function probes() {
  const found = [];
  const attempts = {
    "constructor.constructor": () => constructor.constructor("return process")(),
    "Function(this)": () => leakedHostName(Function("return this")()),
    "globalThis": () => leakedHostName(globalThis),
    "KSR.constructor": () => KSR.constructor.constructor("return process")(),
    "KSR function constructor": () => KSR.sl.sl_send_reply.constructor("return process")(),
    "KSR function global": () => leakedHostName(KSR.sl.sl_send_reply.constructor("return this")()),
    "KSR.x.modf constructor": () => KSR.x.modf.constructor("return require")(),
    "KSR __proto__": () => leakedHostName(KSR.__proto__),
  };
  for (const name of Object.keys(attempts)) {
    let value;
    try { value = attempts[name](); } catch (e) { value = undefined; }
    if (value !== undefined && value !== null) found.push(name);
  }
  for (const obj of reachable(KSR)) {
    const leak = leakedHostName(obj);
    if (leak !== undefined) { found.push("KSR graph: " + leak); break; }
  }
  // Host-looking values handed back by KSR calls must be plain primitives.
  const returned = [KSR.pv.get("$ci"), KSR.pv.get("$si"), KSR.is_method("INFO")];
  for (const v of returned) {
    if (v !== null && typeof v === "object") found.push("object returned by KSR");
  }
  // Prototype pollution stays inside the isolate (the test checks the host side).
  Object.prototype.pollutedFromScript = "yes";
  return found;
}

function ksr_request_route() {
  if (KSR.is_method("INFO")) {
    const found = probes();
    KSR.sl.sl_send_reply(200, found.length === 0 ? "contained" : "LEAK " + found.join(", "));
    return;
  }
  KSR.sl.sl_send_reply(200, "OK");
}
