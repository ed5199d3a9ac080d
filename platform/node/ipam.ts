// Pod IPs from the node's pod CIDR: never-used addresses first, freed ones only when those run out (oldest
// freed first), so an address is not handed to a new pod while clients may still hold it for an old one.

export function parseIp(ip: string): number {
  const match = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  const octets = match ? match.slice(1, 5).map(Number) : [];
  if (!match || octets.some((o) => o > 255)) throw new Error(`invalid IPv4 address ${JSON.stringify(ip)}`);
  return octets.reduce((acc, o) => acc * 256 + o, 0);
}

export function parseCidr(cidr: string): { base: number; prefix: number } {
  const [ip, bits] = cidr.split('/');
  const prefix = Number(bits);
  if (ip === undefined || bits === undefined || !Number.isInteger(prefix) || prefix < 8 || prefix > 30)
    throw new Error(`invalid IPv4 CIDR ${JSON.stringify(cidr)} (prefix 8 to 30)`);
  const address = parseIp(ip);
  const size = 2 ** (32 - prefix);
  return { base: address - (address % size), prefix };
}

export function formatIp(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

export class PodIpam {
  private readonly first: number;
  private readonly last: number;
  private cursor: number;
  private readonly freed: number[] = [];
  private readonly used = new Set<number>();

  constructor(
    readonly cidr: string,
    reserved: readonly string[] = [],
  ) {
    const { base, prefix } = parseCidr(cidr);
    this.first = base + 1;
    this.last = base + 2 ** (32 - prefix) - 2;
    this.cursor = this.first;
    for (const ip of reserved) this.used.add(parseIp(ip));
  }

  allocate(): string {
    while (this.cursor <= this.last) {
      const candidate = this.cursor++;
      if (!this.used.has(candidate)) {
        this.used.add(candidate);
        return formatIp(candidate);
      }
    }
    const reused = this.freed.shift();
    if (reused === undefined) throw new Error(`no free pod IP left in ${this.cidr}`);
    this.used.add(reused);
    return formatIp(reused);
  }

  release(ip: string): void {
    const value = parseIp(ip);
    if (!this.used.delete(value)) return;
    this.freed.push(value);
  }
}
