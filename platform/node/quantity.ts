// Kubernetes resource quantities ("250m", "128Mi", "1G", "1.5", "2e3") as numbers of base units, for the
// downward API's resourceFieldRef and the node's capacity.

const suffixes: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** The quantity in base units (cores, bytes); throws on anything the API server would refuse. */
export function parseQuantity(text: string): number {
  const match = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$/.exec(text.trim());
  if (!match) throw new Error(`invalid quantity ${JSON.stringify(text)}`);
  const number = Number(match[1]);
  if (match[2]) return number * 10 ** Number(match[2].slice(1));
  return number * suffixes[match[3] ?? '']!;
}

/**
 * A resourceFieldRef's value as the kubelet writes it (pkg/api/v1/resource ExtractContainerResourceValue):
 * the quantity divided by the divisor, rounded up, as an integer; CPU compared in millicores.
 */
export function resourceValue(resource: string, quantity: string | undefined, divisor: string | undefined): string {
  const amount = quantity === undefined ? 0 : parseQuantity(quantity);
  const by = parseQuantity(divisor && divisor !== '0' ? divisor : '1');
  if (resource.endsWith('cpu')) return String(Math.ceil(Math.round(amount * 1000) / Math.round(by * 1000)));
  return String(Math.ceil(amount / by));
}
