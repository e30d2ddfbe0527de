import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../src/index.js';
import { importOptionalPeers } from '../../src/internal.js';

describe('importOptionalPeers', () => {
  it('returns the modules in the order asked', async () => {
    const [zod, lru] = await importOptionalPeers<[typeof import('zod'), typeof import('lru-cache')]>('flagshift/x', [
      'zod',
      'lru-cache',
    ]);
    expect(typeof zod.z.object).toBe('function');
    expect(typeof lru.LRUCache).toBe('function');
  });

  it('names every missing package and the one install command', async () => {
    const failure = importOptionalPeers('flagshift/x', ['zod', 'flagshift-absent-peer-a', 'flagshift-absent-peer-b']);
    await expect(failure).rejects.toBeInstanceOf(ConfigurationError);
    await expect(failure).rejects.toThrow(
      'flagshift/x needs flagshift-absent-peer-a and flagshift-absent-peer-b: npm install flagshift-absent-peer-a flagshift-absent-peer-b',
    );
  });
});
