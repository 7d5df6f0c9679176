// Summarise a V8 .heapsnapshot (as written by bench/profile-relay.mjs
// --heap-snapshot): what the heap holds by constructor, with self and
// retained sizes from the dominator tree, per call when --per says how many
// calls the heap holds; and, for the classes named by --class, what their
// instances retain and what retains them.
//
//   node bench/heap-summary.mjs FILE.heapsnapshot [--top 40] [--per N] [--class Name[,Name...]]
//
// Retained size: the bytes freed if the object went (its dominator subtree).
// A class's retained total counts only instances not retained through
// another instance of the same class (as DevTools' summary does). Weak
// edges are not followed. Snapshots up to a few GB are read without
// JSON.parse of the whole file (the number arrays are scanned in place).
import fs from "node:fs";
import { parseArgs } from "node:util";

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: "string", default: "40" },
    per: { type: "string" },
    class: { type: "string", default: "" },
  },
});
if (positionals.length !== 1) {
  console.error("usage: node bench/heap-summary.mjs FILE.heapsnapshot [--top 40] [--per N] [--class Name,...]");
  process.exit(2);
}
const top = Number(opts.top);
const per = opts.per === undefined ? undefined : Number(opts.per);
if (per !== undefined && !(per > 0)) throw new Error("--per must be a positive number");
const focus = opts.class.split(",").filter(Boolean);

const buf = fs.readFileSync(positionals[0]);
const find = (needle, from = 0) => {
  const at = buf.indexOf(needle, from, "latin1");
  if (at < 0) throw new Error(`${needle} not found: not a heap snapshot?`);
  return at;
};
const nodesAt = find('"nodes":[');
const header = JSON.parse(buf.toString("utf8", 0, nodesAt).replace(/,\s*$/, "") + "}");
const meta = header.snapshot.meta;
const NF = meta.node_fields.length;
const EF = meta.edge_fields.length;
const nodeCount = header.snapshot.node_count;
const edgeCount = header.snapshot.edge_count;

/** Scan a JSON array of non-negative integers starting at buf[start] === '[' into `out`; returns the index after ']'. */
function scanInts(start, out) {
  let i = start + 1;
  let n = 0;
  let v = 0;
  let inNum = false;
  for (;; i++) {
    const c = buf[i];
    if (c >= 48 && c <= 57) {
      v = v * 10 + (c - 48);
      inNum = true;
    } else {
      if (inNum) {
        out[n++] = v;
        v = 0;
        inNum = false;
      }
      if (c === 93) break; // ]
    }
  }
  if (n !== out.length) throw new Error(`expected ${out.length} numbers, read ${n}`);
  return i + 1;
}
const nodes = new Float64Array(nodeCount * NF);
scanInts(nodesAt + '"nodes":'.length, nodes);
const edgesAt = find('"edges":[', nodesAt);
const edges = new Uint32Array(edgeCount * EF);
scanInts(edgesAt + '"edges":'.length, edges);
const stringsAt = find('"strings":[', edgesAt);
const strings = JSON.parse(buf.toString("utf8", stringsAt + '"strings":'.length, buf.lastIndexOf("]") + 1));

const nodeTypes = meta.node_types[0];
const edgeTypes = meta.edge_types[0];
const [N_TYPE, N_NAME, , N_SIZE, N_EDGES] = [0, 1, 2, 3, 4].map((k) => meta.node_fields.indexOf(["type", "name", "id", "self_size", "edge_count"][k]));
const [E_TYPE, E_NAME, E_TO] = ["type", "name_or_index", "to_node"].map((f) => meta.edge_fields.indexOf(f));
const WEAK = edgeTypes.indexOf("weak");
const SHORTCUT = edgeTypes.indexOf("shortcut");
const ELEMENT = edgeTypes.indexOf("element");
const HIDDEN = edgeTypes.indexOf("hidden");

const firstEdge = new Uint32Array(nodeCount + 1);
for (let i = 0; i < nodeCount; i++) firstEdge[i + 1] = firstEdge[i] + nodes[i * NF + N_EDGES];
const typeOf = (n) => nodeTypes[nodes[n * NF + N_TYPE]];
const selfOf = (n) => nodes[n * NF + N_SIZE];
const nameOf = (n) => strings[nodes[n * NF + N_NAME]];

/** The class a node is counted under: constructor name for objects, the kind for strings, arrays, code... */
function classOf(n) {
  const type = typeOf(n);
  switch (type) {
    case "object":
    case "native":
      return nameOf(n);
    case "closure":
      return "(closure)";
    case "string":
    case "concatenated string":
    case "sliced string":
      return `(${type})`;
    case "array":
      return `(array ${nameOf(n)})`;
    case "hidden":
    case "synthetic":
      return `(${type} ${nameOf(n)})`;
    default:
      return `(${type})`;
  }
}
const classIds = new Map();
const classNames = [];
const nodeClass = new Uint32Array(nodeCount);
for (let n = 0; n < nodeCount; n++) {
  const c = classOf(n);
  let id = classIds.get(c);
  if (id === undefined) {
    id = classNames.length;
    classNames.push(c);
    classIds.set(c, id);
  }
  nodeClass[n] = id;
}

// Depth-first post-order from the root over strong edges.
const followed = (e) => {
  const t = edges[e * EF + E_TYPE];
  return t !== WEAK && t !== SHORTCUT;
};
const postorder = new Uint32Array(nodeCount);
const postIndex = new Int32Array(nodeCount).fill(-1);
const visited = new Uint8Array(nodeCount);
{
  const stackNode = new Uint32Array(nodeCount);
  const stackEdge = new Uint32Array(nodeCount);
  let sp = 0;
  let post = 0;
  stackNode[0] = 0;
  stackEdge[0] = firstEdge[0];
  visited[0] = 1;
  sp = 1;
  while (sp > 0) {
    const n = stackNode[sp - 1];
    const e = stackEdge[sp - 1];
    if (e < firstEdge[n + 1]) {
      stackEdge[sp - 1] = e + 1;
      if (!followed(e)) continue;
      const to = edges[e * EF + E_TO] / NF;
      if (visited[to]) continue;
      visited[to] = 1;
      stackNode[sp] = to;
      stackEdge[sp] = firstEdge[to];
      sp++;
    } else {
      postIndex[n] = post;
      postorder[post++] = n;
      sp--;
    }
  }
  var reachable = post;
}

// Retainers (reverse strong edges) of reachable nodes.
const retainerCount = new Uint32Array(nodeCount + 1);
for (let n = 0; n < nodeCount; n++) {
  if (!visited[n]) continue;
  for (let e = firstEdge[n]; e < firstEdge[n + 1]; e++) if (followed(e)) retainerCount[edges[e * EF + E_TO] / NF + 1]++;
}
for (let i = 0; i < nodeCount; i++) retainerCount[i + 1] += retainerCount[i];
const firstRetainer = retainerCount;
const retainers = new Uint32Array(firstRetainer[nodeCount]);
const retainerEdge = new Uint32Array(firstRetainer[nodeCount]);
{
  const fill = firstRetainer.slice(0, nodeCount);
  for (let n = 0; n < nodeCount; n++) {
    if (!visited[n]) continue;
    for (let e = firstEdge[n]; e < firstEdge[n + 1]; e++) {
      if (!followed(e)) continue;
      const to = edges[e * EF + E_TO] / NF;
      retainers[fill[to]] = n;
      retainerEdge[fill[to]++] = e;
    }
  }
}

// Dominators (Cooper, Harvey, Kennedy: iterate over reverse post-order until stable), in post-order numbers.
const idom = new Int32Array(reachable).fill(-1);
const rootPost = postIndex[0];
idom[rootPost] = rootPost;
for (let changed = true, pass = 0; changed && pass < 100; pass++) {
  changed = false;
  for (let p = reachable - 1; p >= 0; p--) {
    if (p === rootPost) continue;
    const n = postorder[p];
    let best = -1;
    for (let r = firstRetainer[n]; r < firstRetainer[n + 1]; r++) {
      const q = postIndex[retainers[r]];
      if (q < 0 || idom[q] === -1) continue;
      if (best === -1) {
        best = q;
        continue;
      }
      let a = q;
      let b = best;
      while (a !== b) {
        while (a < b) a = idom[a];
        while (b < a) b = idom[b];
      }
      best = a;
    }
    if (idom[p] !== best) {
      idom[p] = best;
      changed = true;
    }
  }
}
const retained = new Float64Array(nodeCount);
for (let p = 0; p < reachable; p++) retained[postorder[p]] += selfOf(postorder[p]);
for (let p = 0; p < reachable; p++) {
  if (p === rootPost) continue;
  retained[postorder[idom[p]]] += retained[postorder[p]];
}
const dominatorOf = (n) => postorder[idom[postIndex[n]]];

// Per class: count, self, retained (outermost instances only), and for the
// --class classes what their outermost instances dominate, in one walk of
// the dominator tree.
const classCount = new Float64Array(classNames.length);
const classSelf = new Float64Array(classNames.length);
const classRetained = new Float64Array(classNames.length);
let totalSelf = 0;
for (let p = 0; p < reachable; p++) {
  const n = postorder[p];
  const c = nodeClass[n];
  classCount[c]++;
  classSelf[c] += selfOf(n);
  totalSelf += selfOf(n);
}
const focusIds = focus.map((name) => classIds.get(name));
const focusDominated = focus.map(() => new Map());
{
  const childStart = new Uint32Array(reachable + 1);
  for (let p = 0; p < reachable; p++) if (p !== rootPost) childStart[idom[p] + 1]++;
  for (let p = 0; p < reachable; p++) childStart[p + 1] += childStart[p];
  const children = new Uint32Array(reachable);
  const fill = childStart.slice(0, reachable);
  for (let p = 0; p < reachable; p++) if (p !== rootPost) children[fill[idom[p]]++] = p;
  const onStack = new Int32Array(classNames.length);
  const stack = new Uint32Array(reachable);
  const next = new Uint32Array(reachable);
  let sp = 0;
  const enter = (p) => {
    const n = postorder[p];
    const c = nodeClass[n];
    if (onStack[c] === 0) classRetained[c] += retained[n];
    for (let f = 0; f < focusIds.length; f++) {
      if (focusIds[f] === undefined || c === focusIds[f] || onStack[focusIds[f]] === 0) continue;
      const k = classNames[c];
      const cur = focusDominated[f].get(k) ?? [0, 0];
      cur[0]++;
      cur[1] += selfOf(n);
      focusDominated[f].set(k, cur);
    }
    onStack[c]++;
    stack[sp] = p;
    next[sp] = childStart[p];
    sp++;
  };
  enter(rootPost);
  while (sp > 0) {
    const p = stack[sp - 1];
    if (next[sp - 1] < childStart[p + 1]) {
      enter(children[next[sp - 1]++]);
    } else {
      onStack[nodeClass[postorder[p]]]--;
      sp--;
    }
  }
}

const mb = (b) => (b / 1048576).toFixed(1).padStart(8) + " MB";
const perCall = (b) => (per === undefined ? "" : ((b / per).toFixed(0) + " B/call").padStart(14));
console.log(`${positionals[0]}: ${nodeCount} nodes (${reachable} reachable), ${edgeCount} edges, reachable self size ${mb(totalSelf)}${per ? ` = ${(totalSelf / per).toFixed(0)} B per call over ${per} calls` : ""}`);
const ids = [...classNames.keys()];
const show = (title, key) => {
  console.log(`\n${title}`);
  console.log(`${"count".padStart(10)} ${"self".padStart(11)} ${"retained".padStart(11)}${per ? "  per call (self, retained)" : ""}  class`);
  for (const c of ids.sort((a, b) => key[b] - key[a]).slice(0, top)) {
    console.log(`${String(classCount[c]).padStart(10)} ${mb(classSelf[c])} ${mb(classRetained[c])}${per ? perCall(classSelf[c]) + perCall(classRetained[c]) : ""}  ${classNames[c]}`);
  }
};
show(`top ${top} classes by self size`, classSelf);
show(`top ${top} classes by retained size`, classRetained);

// Strings: how much sliced strings keep alive through their parents.
{
  const SLICED = nodeTypes.indexOf("sliced string");
  let slicedCount = 0;
  const parents = new Set();
  for (let p = 0; p < reachable; p++) {
    const n = postorder[p];
    if (nodes[n * NF + N_TYPE] !== SLICED) continue;
    slicedCount++;
    for (let e = firstEdge[n]; e < firstEdge[n + 1]; e++) {
      if (strings[edges[e * EF + E_NAME]] === "parent") parents.add(edges[e * EF + E_TO] / NF);
    }
  }
  let parentBytes = 0;
  for (const n of parents) parentBytes += selfOf(n);
  console.log(`\nsliced strings: ${slicedCount}, their ${parents.size} distinct parent strings: ${mb(parentBytes)}`);
}

const edgeLabel = (e) => {
  const t = edges[e * EF + E_TYPE];
  const name = edges[e * EF + E_NAME];
  if (t === ELEMENT || t === HIDDEN) return `[${edgeTypes[t]}]`;
  // Numbered slots and WeakMap entries ("part of key ... pair in WeakMap ...") would each be a line of their own.
  const label = String(strings[name]);
  return /^\d+( \/ |$)/.test(label) ? "[slot]" : label.replace(/ \/ part of key .*$/, " (WeakMap entry)");
};
for (const name of focus) {
  const c = classIds.get(name);
  if (c === undefined) {
    console.log(`\nclass ${name}: not in the snapshot`);
    continue;
  }
  const instances = [];
  for (let p = 0; p < reachable; p++) if (nodeClass[postorder[p]] === c) instances.push(postorder[p]);
  const dominated = focusDominated[focus.indexOf(name)];
  const retainedBy = new Map();
  const dominatorClass = new Map();
  for (const n of instances) {
    for (let r = firstRetainer[n]; r < firstRetainer[n + 1]; r++) {
      const k = `${classNames[nodeClass[retainers[r]]]} .${edgeLabel(retainerEdge[r])}`;
      retainedBy.set(k, (retainedBy.get(k) ?? 0) + 1);
    }
    const k = classNames[nodeClass[dominatorOf(n)]];
    dominatorClass.set(k, (dominatorClass.get(k) ?? 0) + 1);
  }
  const total = classRetained[c];
  console.log(`\nclass ${name}: ${instances.length} instances, retained ${mb(total)}${per ? perCall(total) : ""} (nested instances counted in their outer one)`);
  console.log("  what they retain (dominated objects by class: count, self):");
  for (const [k, [count, size]] of [...dominated].sort((a, b) => b[1][1] - a[1][1]).slice(0, top)) {
    console.log(`    ${String(count).padStart(9)} ${mb(size)}${per ? perCall(size) : ""}  ${k}`);
  }
  console.log("  retained by (retainer class .edge: count):");
  for (const [k, count] of [...retainedBy].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`    ${String(count).padStart(9)}  ${k}`);
  console.log("  dominated by (class: count):");
  for (const [k, count] of [...dominatorClass].sort((a, b) => b[1] - a[1]).slice(0, 10)) console.log(`    ${String(count).padStart(9)}  ${k}`);
}
