/**
 * Choosing the response a forking proxy sends upstream when every branch
 * ended without a 2xx (RFC 3261 §16.7 step 6), with Kamailio tm's ranking.
 *
 * Lower rank wins: 6xx (1000+xx) before 3xx (3000+xx) before 4xx before
 * 5xx (5000+xx). Inside 4xx, 401, 407, 415, 420 and 484 come first, as
 * §16.7 step 6 asks ("the proxy SHOULD give preference to ..."), the other
 * 4xx after them (4100+xx). Codes outside 100-699 rank last. On a tie the
 * branch created first wins.
 */

/** Rank of a final status; lower is better. */
export function responseRank(status: number): number {
  const cls = Math.floor(status / 100);
  const xx = status % 100;
  switch (cls) {
    case 2:
      return xx;
    case 3:
      return 3000 + xx;
    case 4:
      return 4000 + (xx === 1 || xx === 7 || xx === 15 || xx === 20 || xx === 84 ? xx : 100 + xx);
    case 5:
      return 5000 + xx;
    case 6:
      return 1000 + xx;
    default:
      return 10_000 + status;
  }
}

/** Index of the best candidate (by status) in `finals`, -1 when empty. */
export function pickBestResponse(finals: readonly { readonly status: number }[]): number {
  let best = -1;
  let bestRank = Infinity;
  finals.forEach((f, i) => {
    const rank = responseRank(f.status);
    if (rank < bestRank) {
      best = i;
      bestRank = rank;
    }
  });
  return best;
}

/**
 * RFC 3261 §16.7 step 6: "If the proxy chooses to forward a 503, it SHOULD
 * instead generate a 500": a 503 from downstream means that element is
 * overloaded, not this proxy. (Kamailio's tm remaps it the same way.)
 */
export function upstreamStatus(status: number): { status: number; remapped: boolean } {
  return status === 503 ? { status: 500, remapped: true } : { status, remapped: false };
}
