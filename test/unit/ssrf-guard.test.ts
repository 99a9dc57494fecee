import { describe, expect, it } from 'vitest';
import { checkWebhookUrl } from '../../src/lib/ssrf-guard';

const STRICT = { allowLoopback: false };
const DEV = { allowLoopback: true };

describe('checkWebhookUrl accepts public https endpoints', () => {
  it.each([
    'https://example.com/hooks/herald',
    'https://api.example.co.uk:8443/v1/hooks?token=abc',
    'https://8.8.8.8/hook',
    'https://1.1.1.1/',
    'https://172.32.0.1/', // just outside 172.16/12
    'https://100.128.0.1/', // just outside 100.64/10
    'https://[2606:4700:4700::1111]/hook',
    'https://hooks.slack.com/services/T000/B000/XXXX',
  ])('%s', (url) => {
    const result = checkWebhookUrl(url, STRICT);
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.url.href).toBe(new URL(url).href);
  });
});

describe('checkWebhookUrl rejects', () => {
  it.each([
    ['plain http', 'http://example.com/hook', /https/],
    ['other schemes', 'ftp://example.com/file', /scheme ftp/],
    ['javascript scheme', 'javascript:alert(1)', /scheme javascript/],
    ['file scheme', 'file:///etc/passwd', /scheme file/],
    ['garbage', 'not a url', /not a valid URL/],
    ['credentials', 'https://user:pass@example.com/hook', /credentials/],
    ['username only', 'https://user@example.com/hook', /credentials/],
    ['10/8', 'https://10.0.0.5/', /private/],
    ['172.16/12 low end', 'https://172.16.0.1/', /private/],
    ['172.16/12 high end', 'https://172.31.255.254/', /private/],
    ['192.168/16', 'https://192.168.1.1/', /private/],
    ['loopback 127.0.0.1', 'https://127.0.0.1/', /loopback/],
    ['loopback 127.1.2.3', 'https://127.1.2.3/', /loopback/],
    ['cloud metadata 169.254.169.254', 'https://169.254.169.254/latest/meta-data/', /link-local/],
    ['0.0.0.0', 'https://0.0.0.0/', /this-network/],
    ['0/8', 'https://0.1.2.3/', /this-network/],
    ['CGNAT 100.64/10', 'https://100.64.0.1/', /carrier-grade NAT/],
    ['CGNAT high end', 'https://100.127.255.255/', /carrier-grade NAT/],
    ['multicast', 'https://224.0.0.1/', /multicast/],
    ['reserved 240/4', 'https://240.0.0.1/', /reserved/],
    ['broadcast', 'https://255.255.255.255/', /reserved/],
    ['benchmarking', 'https://198.18.0.1/', /benchmarking/],
    ['documentation', 'https://192.0.2.1/', /documentation/],
    ['decimal IPv4 for 127.0.0.1', 'https://2130706433/', /loopback/],
    ['hex dotted IPv4', 'https://0x7f.1/', /loopback/],
    ['octal IPv4', 'https://0177.0.0.1/', /loopback/],
    ['hex IPv4 metadata', 'https://0xa9fea9fe/', /link-local/],
    ['short form 10.1', 'https://10.1/', /private/],
    ['IPv6 loopback', 'https://[::1]/', /loopback/],
    ['IPv6 unspecified', 'https://[::]/', /unspecified/],
    ['IPv6 unique local fc00::/7', 'https://[fd12:3456::1]/', /unique local/],
    ['IPv6 unique local fc00', 'https://[fc00::1]/', /unique local/],
    ['IPv6 link-local', 'https://[fe80::1]/', /link-local/],
    ['IPv6 link-local upper half', 'https://[febf::1]/', /link-local/],
    ['IPv6 multicast', 'https://[ff02::1]/', /multicast/],
    ['IPv4-mapped dotted', 'https://[::ffff:127.0.0.1]/', /IPv4-mapped/],
    ['IPv4-mapped hex', 'https://[::ffff:7f00:1]/', /IPv4-mapped/],
    ['IPv4-mapped metadata', 'https://[::ffff:169.254.169.254]/', /IPv4-mapped/],
    ['IPv4-compatible', 'https://[::10.0.0.1]/', /IPv4-mapped/],
    ['NAT64', 'https://[64:ff9b::7f00:1]/', /NAT64/],
    ['IPv6 documentation', 'https://[2001:db8::1]/', /documentation/],
    ['localhost', 'https://localhost/', /loopback/],
    ['LOCALHOST uppercase with trailing dot', 'https://LOCALHOST./', /loopback/],
    ['*.localhost', 'https://api.localhost/', /loopback/],
    ['*.local', 'https://printer.local/', /internal host/],
    ['*.internal', 'https://db.corp.internal/', /internal host/],
    ['GCP metadata', 'https://metadata.google.internal/computeMetadata/v1/', /internal host/],
    ['percent-encoded localhost', 'https://%6c%6f%63%61%6c%68%6f%73%74/', /loopback/],
    ['single-label name', 'https://metadata/', /single-label/],
  ])('%s', (_name, url, reason) => {
    const result = checkWebhookUrl(url, STRICT);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });
});

describe('checkWebhookUrl in development', () => {
  it.each([
    'http://localhost:8787/hook',
    'http://127.0.0.1:3000/',
    'http://[::1]:3000/',
    'https://localhost/',
    'http://2130706433:3000/',
  ])('allows loopback %s', (url) => {
    expect(checkWebhookUrl(url, DEV).ok).toBe(true);
  });

  it.each([
    'http://10.0.0.1/',
    'https://192.168.0.10/',
    'http://169.254.169.254/',
    'http://example.com/',
    'http://[::ffff:127.0.0.1]/',
  ])('still rejects %s', (url) => {
    expect(checkWebhookUrl(url, DEV).ok).toBe(false);
  });
});
