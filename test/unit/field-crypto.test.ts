import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DecryptError,
  FieldCipher,
  generateKeySpec,
  isEncrypted,
  KeyConfigError,
} from '../../src/lib/field-crypto';

// Fixed test keys. KEY_1 is bytes 0x00..0x1f; BLIND is bytes 100..131.
const KEY_1 = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
const BLIND = 'ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=';
const KEY_A = generateKeySpec('a');
const KEY_B = generateKeySpec('b');
const AAD = 'contacts.email:ct_123';

// Independent helpers (atob/btoa), not the module's.
const fromB64 = (text: string) => {
  const standard = text.replace(/-/g, '+').replace(/_/g, '/');
  return Uint8Array.from(atob(standard.padEnd(Math.ceil(standard.length / 4) * 4, '=')), (c) =>
    c.charCodeAt(0),
  );
};
const toB64Url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');

/** Rewrites the base64url body of an `enc:` value through `edit`. */
function editBody(value: string, edit: (bytes: Uint8Array) => Uint8Array): string {
  const parts = value.split(':');
  return [...parts.slice(0, 3), toB64Url(edit(fromB64(parts[3] ?? '')))].join(':');
}

function flipByte(index: (length: number) => number) {
  return (bytes: Uint8Array) => {
    const copy = bytes.slice();
    const i = index(copy.length);
    copy[i] = (copy[i] ?? 0) ^ 0x01;
    return copy;
  };
}

describe('FieldCipher round trip', () => {
  it('decrypts what it encrypted, with and without aad', async () => {
    const cipher = await FieldCipher.fromSecret(`k1:${KEY_1}`);
    for (const plain of [
      'ada@example.com',
      '+14155550123',
      '',
      'ünïcødé ✓ 🎉',
      'x'.repeat(5000),
      '\uFEFFstarts with a BOM',
    ]) {
      expect(await cipher.decrypt(await cipher.encrypt(plain, AAD), AAD)).toBe(plain);
      expect(await cipher.decrypt(await cipher.encrypt(plain))).toBe(plain);
    }
  });

  it('writes enc:v1:<kid>:<base64url> with a fresh IV every time', async () => {
    const cipher = await FieldCipher.fromSecret(`k1:${KEY_1}`);
    const first = await cipher.encrypt('ada@example.com', AAD);
    const second = await cipher.encrypt('ada@example.com', AAD);
    expect(first).toMatch(/^enc:v1:k1:[A-Za-z0-9_-]+$/);
    expect(first).not.toBe(second);
    expect(fromB64(first.split(':')[3] ?? '').slice(0, 12)).not.toEqual(
      fromB64(second.split(':')[3] ?? '').slice(0, 12),
    );
    // 12-byte IV + 15 bytes of text + 16-byte tag.
    expect(fromB64(first.split(':')[3] ?? '').length).toBe(12 + 15 + 16);
    expect(first).not.toContain('ada');
  });

  it('passes through values written before encryption was turned on', async () => {
    const cipher = await FieldCipher.fromSecret(`k1:${KEY_1}`);
    for (const plain of ['ada@example.com', '+14155550123', 'https://hooks.example/x', '']) {
      expect(await cipher.decrypt(plain, AAD)).toBe(plain);
      expect(isEncrypted(plain)).toBe(false);
    }
  });

  it('round-trips any string (property)', async () => {
    const cipher = await FieldCipher.fromSecret(`k1:${KEY_1}`);
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'grapheme', maxLength: 200 }),
        fc.string({ maxLength: 40 }),
        async (plain, aad) => {
          expect(await cipher.decrypt(await cipher.encrypt(plain, aad), aad)).toBe(plain);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('independent AES-256-GCM checks', () => {
  it('decrypts its output directly with crypto.subtle from the raw key, iv and aad', async () => {
    const cipher = await FieldCipher.fromSecret(`k1:${KEY_1}`);
    const stored = await cipher.encrypt('ada@example.com', AAD);
    const body = fromB64(stored.split(':')[3] ?? '');
    const key = await crypto.subtle.importKey('raw', fromB64(KEY_1), 'AES-GCM', false, ['decrypt']);
    const plain = await crypto.subtle.decrypt(
      {
        name: 'AES-GCM',
        iv: body.slice(0, 12),
        additionalData: new TextEncoder().encode(AAD),
        tagLength: 128,
      },
      key,
      body.slice(12),
    );
    expect(new TextDecoder().decode(plain)).toBe('ada@example.com');
  });

  it('decrypts a value produced by another implementation (Python cryptography AESGCM)', async () => {
    // AESGCM(bytes(range(32))).encrypt(bytes.fromhex('cafebabefacedbaddecaf888'),
    //   'ada@example.com ✓'.encode(), b'contacts.email:ct_123'), iv prepended, base64url.
    const golden = 'enc:v1:k1:yv66vvrO263eyviI68fBZs8CLnY2ZzjzGHLkH--8U3YPYADXubq6hJed-op0V18';
    const cipher = await FieldCipher.fromSecret(`k1:${KEY_1}`);
    expect(await cipher.decrypt(golden, AAD)).toBe('ada@example.com ✓');
    await expect(cipher.decrypt(golden, 'contacts.email:ct_124')).rejects.toThrow(DecryptError);
  });
});

describe('FieldCipher rejects tampering with DecryptError', () => {
  const plain = 'ada@example.com';

  async function expectDecryptError(cipher: FieldCipher, value: string, aad?: string) {
    const error = await cipher.decrypt(value, aad).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DecryptError);
    const message = (error as Error).message;
    expect(message).not.toContain(plain);
    const body = value.split(':')[3] ?? '';
    if (body) expect(message).not.toContain(body);
  }

  it.each([
    ['a ciphertext byte', flipByte(() => 12)],
    ['the last ciphertext byte', flipByte((n) => n - 17)],
    ['a tag byte', flipByte((n) => n - 1)],
    ['the first tag byte', flipByte((n) => n - 16)],
    ['an IV byte', flipByte(() => 0)],
    ['the last IV byte', flipByte(() => 11)],
    ['a truncated tag', (b: Uint8Array) => b.slice(0, -1)],
    ['a dropped IV byte', (b: Uint8Array) => b.slice(1)],
    ['an appended byte', (b: Uint8Array) => Uint8Array.from([...b, 0])],
    ['nothing but an IV', (b: Uint8Array) => b.slice(0, 12)],
    ['empty body', () => new Uint8Array(0)],
  ])('%s', async (_name, edit) => {
    const cipher = await FieldCipher.fromSecret(`k1:${KEY_1}`);
    const stored = await cipher.encrypt(plain, AAD);
    await expectDecryptError(cipher, editBody(stored, edit), AAD);
  });

  it('a changed kid (even to another configured key)', async () => {
    const cipher = await FieldCipher.fromSecret(`${KEY_B},${KEY_A}`);
    const stored = await cipher.encrypt(plain, AAD);
    expect(stored.startsWith('enc:v1:b:')).toBe(true);
    await expectDecryptError(cipher, stored.replace('enc:v1:b:', 'enc:v1:a:'), AAD);
    await expectDecryptError(cipher, stored.replace('enc:v1:b:', 'enc:v1:zz:'), AAD);
  });

  it('a wrong, missing or extra aad', async () => {
    const cipher = await FieldCipher.fromSecret(`k1:${KEY_1}`);
    const stored = await cipher.encrypt(plain, AAD);
    await expectDecryptError(cipher, stored, 'contacts.email:ct_124'); // another row
    await expectDecryptError(cipher, stored, 'contacts.phone:ct_123'); // another column
    await expectDecryptError(cipher, stored);
    await expectDecryptError(cipher, await cipher.encrypt(plain), AAD);
  });

  it('a key that was removed from the secret', async () => {
    const old = await (await FieldCipher.fromSecret(KEY_A)).encrypt(plain, AAD);
    await expectDecryptError(await FieldCipher.fromSecret(KEY_B), old, AAD);
  });

  it.each([
    ['unknown version', 'enc:v2:k1:AAAA'],
    ['too few parts', 'enc:v1:k1'],
    ['too many parts', 'enc:v1:k1:AAAA:BBBB'],
    ['bad base64', 'enc:v1:k1:not*base64'],
    ['standard base64 alphabet', 'enc:v1:k1:ab+/ab+/ab+/ab+/ab+/ab+/ab+/ab+/ab+/'],
    ['just the prefix', 'enc:'],
  ])('malformed: %s', async (_name, value) => {
    const cipher = await FieldCipher.fromSecret(`k1:${KEY_1}`);
    await expect(cipher.decrypt(value, AAD)).rejects.toThrow(DecryptError);
  });
});

describe('key rotation', () => {
  it('decrypts old values after a new key is prepended, and encrypts with the new one', async () => {
    const before = await FieldCipher.fromSecret(KEY_A);
    const old = await before.encrypt('ada@example.com', AAD);
    expect(old.startsWith('enc:v1:a:')).toBe(true);

    const after = await FieldCipher.fromSecret(`${KEY_B},${KEY_A}`);
    expect(await after.decrypt(old, AAD)).toBe('ada@example.com');
    const fresh = await after.encrypt('ada@example.com', AAD);
    expect(fresh.startsWith('enc:v1:b:')).toBe(true);
    // The new key really is B: a cipher that only knows A cannot read it.
    await expect(before.decrypt(fresh, AAD)).rejects.toThrow(DecryptError);
  });

  it('needsRotation is true for plain text, older keys and malformed values only', async () => {
    const before = await FieldCipher.fromSecret(KEY_A);
    const after = await FieldCipher.fromSecret(`${KEY_B},${KEY_A}`);
    const old = await before.encrypt('x');
    const fresh = await after.encrypt('x');
    expect(after.needsRotation(old)).toBe(true);
    expect(after.needsRotation(fresh)).toBe(false);
    expect(after.needsRotation('ada@example.com')).toBe(true);
    expect(after.needsRotation('enc:v2:b:AAAA')).toBe(true);
    expect(after.needsRotation('enc:v1:b')).toBe(true);
    expect(before.needsRotation(old)).toBe(false);
  });
});

describe('blindIndex', () => {
  it('matches HKDF + HMAC computed by another implementation (Python cryptography), fallback key', async () => {
    // okm = HKDF(SHA256, length=32, salt=None, info=b'herald blind index').derive(bytes(range(32)))
    // base64url(hmac(okm, b'email:ada@example.com', sha256))
    const cipher = await FieldCipher.fromSecret(`k1:${KEY_1}`);
    expect(await cipher.blindIndex('email', 'ada@example.com')).toBe(
      'OmkU_ZXIoSoWZQiF0rz0vruPqd695DQkpiaZp6VuEfk',
    );
  });

  it('matches the reference with a dedicated BLIND_INDEX_KEY', async () => {
    // Same derivation from bytes(range(100, 132)), message b'phone:+14155550123'.
    const cipher = await FieldCipher.fromSecret(KEY_A, BLIND);
    expect(await cipher.blindIndex('phone', '+14155550123')).toBe(
      'qh_UUUzPeFJpeanCS0bUMOXnpcc2kGhDdpY5ohA42UM',
    );
  });

  it('recomputes with crypto.subtle HKDF (RFC 5869 empty salt) and HMAC', async () => {
    const ikm = await crypto.subtle.importKey('raw', fromB64(KEY_1), 'HKDF', false, ['deriveBits']);
    const okm = await crypto.subtle.deriveBits(
      {
        name: 'HKDF',
        hash: 'SHA-256',
        salt: new Uint8Array(32),
        info: new TextEncoder().encode('herald blind index'),
      },
      ikm,
      256,
    );
    const hmac = await crypto.subtle.importKey('raw', okm, { name: 'HMAC', hash: 'SHA-256' }, false, [
      'sign',
    ]);
    const mac = await crypto.subtle.sign('HMAC', hmac, new TextEncoder().encode('url:https://x.example/A'));
    const cipher = await FieldCipher.fromSecret(`k1:${KEY_1}`);
    expect(await cipher.blindIndex('url', 'https://x.example/A')).toBe(toB64Url(new Uint8Array(mac)));
  });

  it('normalises emails (trim, lower case) but not phone numbers', async () => {
    const cipher = await FieldCipher.fromSecret(KEY_A);
    const email = await cipher.blindIndex('email', 'ada@example.com');
    expect(await cipher.blindIndex('email', '  Ada@Example.COM ')).toBe(email);
    expect(await cipher.blindIndex('email', 'ada2@example.com')).not.toBe(email);
    expect(await cipher.blindIndex('phone', '+14155550123')).not.toBe(
      await cipher.blindIndex('phone', ' +14155550123'),
    );
  });

  it('differs per kind for the same value', async () => {
    const cipher = await FieldCipher.fromSecret(KEY_A);
    const kinds = ['email', 'phone', 'device', 'url'];
    const indexes = await Promise.all(kinds.map((kind) => cipher.blindIndex(kind, 'same-value')));
    expect(new Set(indexes).size).toBe(kinds.length);
  });

  it('is stable across rotation (new key prepended), with and without BLIND_INDEX_KEY', async () => {
    const before = await FieldCipher.fromSecret(KEY_A);
    const after = await FieldCipher.fromSecret(`${KEY_B},${KEY_A}`);
    expect(await after.blindIndex('email', 'ada@example.com')).toBe(
      await before.blindIndex('email', 'ada@example.com'),
    );

    const dedicatedBefore = await FieldCipher.fromSecret(KEY_A, BLIND);
    const dedicatedAfter = await FieldCipher.fromSecret(`${KEY_B},${KEY_A}`, BLIND);
    const dedicatedLater = await FieldCipher.fromSecret(KEY_B, BLIND); // A retired entirely
    const index = await dedicatedBefore.blindIndex('email', 'ada@example.com');
    expect(await dedicatedAfter.blindIndex('email', 'ada@example.com')).toBe(index);
    expect(await dedicatedLater.blindIndex('email', 'ada@example.com')).toBe(index);
    // A different index root gives different indexes (the key matters).
    expect(index).not.toBe(await before.blindIndex('email', 'ada@example.com'));
  });

  it('rejects a kind outside [a-z0-9_-]', async () => {
    const cipher = await FieldCipher.fromSecret(KEY_A);
    await expect(cipher.blindIndex('Email', 'x')).rejects.toThrow(TypeError);
    await expect(cipher.blindIndex('email:phone', 'x')).rejects.toThrow(TypeError);
    await expect(cipher.blindIndex('', 'x')).rejects.toThrow(TypeError);
  });
});

describe('key configuration', () => {
  const keyBody = KEY_1;
  it.each([
    ['empty', ''],
    ['blank', '   '],
    ['no kid', keyBody],
    ['empty kid', `:${keyBody}`],
    ['kid with a space', `k 1:${keyBody}`],
    ['short key', `k1:${keyBody.slice(0, 20)}`],
    ['long key', `k1:${btoa('x'.repeat(33))}`],
    ['not base64', `k1:${keyBody.replace('A', '*')}`],
    ['duplicate kid', `k1:${keyBody},k1:${keyBody}`],
    ['empty entry', `k1:${keyBody},`],
    ['bad second entry', `k1:${keyBody},k2:${keyBody.slice(3)}`],
  ])('rejects %s without echoing the key', async (_name, secret) => {
    const error = await FieldCipher.fromSecret(secret).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KeyConfigError);
    const message = (error as Error).message;
    expect(message).not.toContain(keyBody.slice(0, 12));
    expect(message).not.toContain(keyBody.slice(3, 15));
  });

  it.each([
    ['too short', btoa('x'.repeat(31))],
    ['not base64', '!!!!'],
  ])('rejects a BLIND_INDEX_KEY that is %s without echoing it', async (_name, blind) => {
    const error = await FieldCipher.fromSecret(KEY_A, blind).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KeyConfigError);
    expect((error as Error).message).not.toContain(blind);
  });

  it('accepts url-safe, unpadded keys and spaces around entries', async () => {
    const urlSafe = toB64Url(fromB64(KEY_1));
    const cipher = await FieldCipher.fromSecret(` k2:${urlSafe} , k1:${KEY_1} `);
    const stored = await cipher.encrypt('x', AAD);
    expect(stored.startsWith('enc:v1:k2:')).toBe(true);
    // Same key bytes under both ids, so k1 reads it when relabelled.
    expect(await cipher.decrypt(stored.replace(':k2:', ':k1:'), AAD)).toBe('x');
  });

  it('generateKeySpec makes distinct 32-byte keys that fromSecret accepts', async () => {
    const spec = generateKeySpec('2026-06');
    const [kid, key] = spec.split(':');
    expect(kid).toBe('2026-06');
    expect(fromB64(key ?? '').length).toBe(32);
    expect(generateKeySpec('2026-06')).not.toBe(spec);
    const cipher = await FieldCipher.fromSecret(spec);
    expect(await cipher.decrypt(await cipher.encrypt('x'))).toBe('x');
    expect(() => generateKeySpec('bad kid')).toThrow(KeyConfigError);
    expect(() => generateKeySpec('')).toThrow(KeyConfigError);
  });
});
