// SSRF guard for outbound webhook URLs. Ranges from the IANA special-purpose registries:
// https://www.iana.org/assignments/iana-ipv4-special-registry and iana-ipv6-special-registry

/** Result of checking a URL Herald is asked to POST to. */
export type WebhookUrlCheck = { ok: true; url: URL } | { ok: false; reason: string };

export interface WebhookUrlPolicy {
  /** Allow loopback targets (and plain http to them); only for local development. */
  allowLoopback: boolean;
}

/** [first address as 32-bit number, prefix length, label] */
type Ipv4Range = readonly [number, number, string];

const BLOCKED_IPV4: readonly Ipv4Range[] = [
  [ipv4('0.0.0.0'), 8, 'this-network'],
  [ipv4('10.0.0.0'), 8, 'private'],
  [ipv4('100.64.0.0'), 10, 'carrier-grade NAT'],
  [ipv4('127.0.0.0'), 8, 'loopback'],
  [ipv4('169.254.0.0'), 16, 'link-local'],
  [ipv4('172.16.0.0'), 12, 'private'],
  [ipv4('192.0.0.0'), 24, 'IETF protocol assignments'],
  [ipv4('192.0.2.0'), 24, 'documentation'],
  [ipv4('192.88.99.0'), 24, '6to4 relay'],
  [ipv4('192.168.0.0'), 16, 'private'],
  [ipv4('198.18.0.0'), 15, 'benchmarking'],
  [ipv4('198.51.100.0'), 24, 'documentation'],
  [ipv4('203.0.113.0'), 24, 'documentation'],
  [ipv4('224.0.0.0'), 4, 'multicast'],
  [ipv4('240.0.0.0'), 4, 'reserved'],
];

/** Host names that always point inside a network, never at a public endpoint. */
const BLOCKED_HOST_SUFFIXES = ['.localhost', '.local', '.internal', '.localdomain', '.home.arpa'];
const BLOCKED_HOSTS = new Set(['localhost', 'localhost.localdomain', 'metadata.google.internal']);

/**
 * Checks that a webhook URL points at a public HTTPS endpoint: https only (http only for loopback
 * when `allowLoopback`), no credentials, no private, loopback, link-local (cloud metadata),
 * CGNAT, multicast or reserved addresses, no IPv4-mapped/NAT64 IPv6 forms, no internal names.
 *
 * Pure: it inspects the URL only. A public name that resolves to a private address (DNS
 * rebinding) cannot be seen here; on Workers, fetch reaches only public addresses anyway, so
 * this guard is the layer that stops literal addresses and internal names.
 */
export function checkWebhookUrl(input: string, policy: WebhookUrlPolicy): WebhookUrlCheck {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return { ok: false, reason: 'not a valid URL' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return { ok: false, reason: `scheme ${url.protocol.replace(':', '')} is not allowed` };
  }
  if (url.username !== '' || url.password !== '') {
    return { ok: false, reason: 'credentials in the URL are not allowed' };
  }
  const host = classifyHost(url.hostname);
  if (host.kind === 'blocked') return { ok: false, reason: host.reason };
  if (host.kind === 'loopback') {
    return policy.allowLoopback
      ? { ok: true, url }
      : { ok: false, reason: 'loopback address is not allowed' };
  }
  if (url.protocol !== 'https:') return { ok: false, reason: 'only https URLs are allowed' };
  return { ok: true, url };
}

type HostClass = { kind: 'public' } | { kind: 'loopback' } | { kind: 'blocked'; reason: string };

/** `hostname` as WHATWG URL serializes it: lowercase, IPv4 in dotted decimal, IPv6 in brackets. */
function classifyHost(hostname: string): HostClass {
  if (hostname === '') return { kind: 'blocked', reason: 'URL has no host' };
  if (hostname.startsWith('[')) return classifyIpv6(hostname.slice(1, -1));
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(hostname)) return classifyIpv4(ipv4(hostname));
  return classifyName(hostname.replace(/\.+$/, ''));
}

function classifyName(name: string): HostClass {
  if (name === 'localhost' || name.endsWith('.localhost')) return { kind: 'loopback' };
  if (BLOCKED_HOSTS.has(name) || BLOCKED_HOST_SUFFIXES.some((suffix) => name.endsWith(suffix))) {
    return { kind: 'blocked', reason: 'internal host name is not allowed' };
  }
  // A single-label name (`metadata`, `intranet`) is only meaningful on a private resolver.
  if (!name.includes('.')) return { kind: 'blocked', reason: 'single-label host name is not allowed' };
  return { kind: 'public' };
}

function classifyIpv4(address: number): HostClass {
  for (const [base, prefix, label] of BLOCKED_IPV4) {
    if (inPrefix(address, base, prefix)) {
      return label === 'loopback'
        ? { kind: 'loopback' }
        : { kind: 'blocked', reason: `${label} address is not allowed` };
    }
  }
  return { kind: 'public' };
}

function classifyIpv6(literal: string): HostClass {
  const words = parseIpv6(literal);
  if (!words) return { kind: 'blocked', reason: 'unparseable IPv6 address' };
  const [w0 = 0, w1 = 0, w2 = 0, w3 = 0, w4 = 0, w5 = 0, w6 = 0, w7 = 0] = words;
  const upperZero = w0 === 0 && w1 === 0 && w2 === 0 && w3 === 0 && w4 === 0;
  if (upperZero && w5 === 0 && w6 === 0 && w7 === 1) return { kind: 'loopback' };
  if (upperZero && w5 === 0 && w6 === 0 && w7 === 0) {
    return { kind: 'blocked', reason: 'unspecified address is not allowed' };
  }
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible) reach IPv4 through the IPv6 stack.
  if (upperZero && (w5 === 0xffff || w5 === 0)) {
    return { kind: 'blocked', reason: 'IPv4-mapped IPv6 address is not allowed' };
  }
  const rules: readonly [boolean, string][] = [
    [w0 === 0x64 && w1 === 0xff9b, 'NAT64 address'],
    [(w0 & 0xfe00) === 0xfc00, 'unique local address'],
    [(w0 & 0xffc0) === 0xfe80, 'link-local address'],
    [(w0 & 0xffc0) === 0xfec0, 'site-local address'],
    [(w0 & 0xff00) === 0xff00, 'multicast address'],
    [w0 === 0x2001 && w1 === 0x0db8, 'documentation address'],
    [w0 === 0x2001 && w1 === 0, 'Teredo address'],
    [w0 === 0x2002, '6to4 address'],
    [w0 === 0x0100 && w1 === 0 && w2 === 0 && w3 === 0, 'discard address'],
  ];
  const hit = rules.find(([matches]) => matches);
  return hit ? { kind: 'blocked', reason: `${hit[1]} is not allowed` } : { kind: 'public' };
}

/** Parses an IPv6 literal (with `::` and an optional dotted IPv4 tail) into eight 16-bit words. */
function parseIpv6(literal: string): number[] | undefined {
  let text = literal.toLowerCase();
  const dotted = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text);
  if (dotted?.[1]) {
    const v4 = ipv4(dotted[1]);
    text = `${text.slice(0, dotted.index)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string | undefined) => (part ? part.split(':') : []);
  const head = parse(halves[0]);
  const tail = parse(halves[1]);
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  if (!groups.every((group) => /^[0-9a-f]{1,4}$/.test(group))) return undefined;
  return groups.map((group) => Number.parseInt(group, 16));
}

function ipv4(dotted: string): number {
  return dotted.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

function inPrefix(address: number, base: number, prefix: number): boolean {
  const size = 2 ** (32 - prefix);
  return Math.floor(address / size) === Math.floor(base / size);
}
